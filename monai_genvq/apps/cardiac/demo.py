"""Train and evaluate the four cardiac VAEs of ``bundles/cardiac_attri_sivae`` and print the Table 1 layout.

Usage (from the repository root)::

    python -m monai_genvq.apps.cardiac.demo                                  # embedded ACDC-layout phantom
    python -m monai_genvq.apps.cardiac.demo --max_epochs 30 --bundle_root /tmp/cardiac
    python -m monai_genvq.apps.cardiac.demo --dataset_dir /data/ACDC         # the real ACDC folder
    python -m monai_genvq.apps.cardiac.demo --seed 1 --bundle_root /tmp/cardiac_s1   # another seed
    python -m monai_genvq.apps.cardiac.demo --seeds 0 1 2 --bundle_root /tmp/cardiac  # Table 1 over 3 seeds
    python -m monai_genvq.apps.cardiac.demo --configs mnms.json --cross_domain --variants attri_vae attri_sivae

Each variant runs through ``python -m monai.bundle run`` with the bundle's own configs (train.json +
the variant's override file + ``--configs``, then evaluate.json, and with ``--cross_domain`` also
cross_domain.json), as a user would run them one by one. The combined table of one seed is
``<bundle_root>/outputs/eval_table1.md`` (M&Ms runs: ``outputs/mnms/``). With several ``--seeds``,
seed N runs under ``<bundle_root>/seed_N`` and ``<bundle_root>/table1_seeds_<eval name>.md`` holds the
Table 1 layout with the seed paper's rows first and our mean ± std over every ``seed_N`` folder there
(:func:`~monai_genvq.apps.cardiac.cardiac_seed_table`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from monai_genvq.apps.cardiac.report import SEED_CROSS_DOMAIN, SEED_TABLE1, cardiac_seed_table, collect_cardiac_results
from monai_genvq.utils.fileio import atomic_write_text

VARIANTS = {
    "beta_vae": "beta_vae.json",
    "attri_vae": "attri_vae.json",
    "soft_intro_vae": "soft_intro_vae.json",
    "attri_sivae": None,
}
BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "cardiac_attri_sivae"


def _run(run_id: str, configs: list[Path], bundle_root: Path, overrides: list[str]) -> float:
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        run_id,
        "--config_file",
        str([str(c) for c in configs]),
        "--bundle_root",
        str(bundle_root),
        *overrides,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return time.perf_counter() - t0


def _seed_table(root: Path, outputs: str, eval_name: str, dataset: str) -> str:
    """Write ``<root>/table1_seeds_<eval_name>.md`` from the metrics.json of every ``<root>/seed_N``; return it.

    Every seed folder present counts (runs of earlier ``--seeds`` calls too), so seeds can be added later.
    """
    found = sorted(int(d.name[5:]) for d in root.glob("seed_*") if d.name[5:].isdigit())
    per_seed = {s: collect_cardiac_results(root / f"seed_{s}" / outputs, eval_name) for s in found}
    per_seed = {s: r for s, r in per_seed.items() if r}
    if not per_seed:
        return ""
    seed_rows = (
        SEED_TABLE1.get(dataset) if eval_name == "eval" else SEED_CROSS_DOMAIN if eval_name == "eval_acdc" else None
    )
    any_run = next(iter(next(iter(per_seed.values())).values()))
    terms = sorted({m.get("perceptual_term", "unknown") for r in per_seed.values() for m in r.values()})
    text = (
        f"# Cardiac VAEs over seeds {', '.join(map(str, per_seed))} ({eval_name}: {any_run.get('dataset', '')})\n\n"
        f"Ours: mean ± population std over the training seeds; codes μ; "
        f"{any_run.get('mi_description') or any_run.get('mi_estimator', '')}; perceptual term: {', '.join(terms)}. "
        + (
            "Seed paper rows: its section 4.3 (trained on M&Ms, tested on ACDC; no SCC, Mod, SAP there).\n\n"
            if eval_name == "eval_acdc"
            else "Seed paper rows: its Table 1 (5 seeds, AR-VAE's metric code; no MIG or SSIM there).\n\n"
        )
        + cardiac_seed_table(per_seed, seed_rows, seed_rows_seeds="not stated" if eval_name == "eval_acdc" else "5")
        + "\n"
    )
    atomic_write_text(root / f"table1_seeds_{eval_name}.md", text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle_root", default=str(BUNDLE))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--dataset_dir", default="")
    parser.add_argument("--eval_dataset_dir", default="", help="ACDC folder for --cross_domain (default: phantom)")
    parser.add_argument("--max_epochs", type=int, default=None)
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the split and the training (default: the bundle's, 0)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="several seeds: seed N under <bundle_root>/seed_N"
    )
    parser.add_argument(
        "--configs", nargs="*", default=[], help="override files of the bundle's configs/ added to every run"
    )
    parser.add_argument("--cross_domain", action="store_true", help="also evaluate with cross_domain.json")
    parser.add_argument("--extra", nargs="*", default=[], help="further --key value overrides for every run")
    args = parser.parse_args(argv)
    if args.seed is not None and args.seeds is not None:
        parser.error("give --seed or --seeds, not both")
    configs = BUNDLE / "configs"
    for name in args.configs:
        if not (configs / name).is_file():
            parser.error(f"--configs: {configs / name} does not exist")
    root = Path(args.bundle_root)
    base = list(args.extra)
    if args.dataset_dir:
        base += ["--dataset_dir", args.dataset_dir]
    if args.max_epochs is not None:
        base += ["--max_epochs", str(args.max_epochs), "--val_interval", str(args.max_epochs)]
    seeds = args.seeds if args.seeds is not None else [args.seed]
    mnms = any(json.loads((configs / n).read_text()).get("dataset") == "mnms" for n in args.configs)
    outputs = "outputs/mnms" if mnms else "outputs"
    for seed in seeds:
        seed_root = root if args.seeds is None else root / f"seed_{seed}"
        overrides = base + ([] if seed is None else ["--seed", str(seed)])
        for variant in args.variants:
            files = [configs / "train.json"] + ([configs / VARIANTS[variant]] if VARIANTS[variant] else [])
            files += [configs / n for n in args.configs]
            t_train = _run("training", files, seed_root, overrides + ["--overwrite", "true"])  # retrain from scratch
            t_eval = _run("evaluating", files + [configs / "evaluate.json"], seed_root, overrides)
            line = f"seed {seed}, {variant}: trained in {t_train:.0f} s, evaluated in {t_eval:.0f} s"
            if args.cross_domain:
                cross = ["--eval_dataset_dir", args.eval_dataset_dir] if args.eval_dataset_dir else []
                t_cross = _run(
                    "evaluating",
                    files + [configs / "evaluate.json", configs / "cross_domain.json"],
                    seed_root,
                    overrides + cross,
                )
                line += f", cross-domain in {t_cross:.0f} s"
            print(line, flush=True)
        if args.seeds is None:
            for table in sorted((seed_root / outputs).glob("eval*_table1.md")):
                print(table.read_text())
    if args.seeds is not None:
        dataset = "mnms" if mnms else "acdc"
        for eval_name in ["eval"] + (["eval_acdc"] if args.cross_domain else []):
            print(_seed_table(root, outputs, eval_name, dataset))


if __name__ == "__main__":
    main()
