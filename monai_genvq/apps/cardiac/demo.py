"""Train and evaluate the four cardiac VAEs of ``bundles/cardiac_attri_sivae`` and print the Table 1 layout.

Usage (from the repository root)::

    python -m monai_genvq.apps.cardiac.demo                                  # embedded ACDC-layout phantom
    python -m monai_genvq.apps.cardiac.demo --max_epochs 30 --bundle_root /tmp/cardiac
    python -m monai_genvq.apps.cardiac.demo --dataset_dir /data/ACDC         # the real ACDC folder
    python -m monai_genvq.apps.cardiac.demo --seed 1 --bundle_root /tmp/cardiac_s1   # another seed

Each variant runs through ``python -m monai.bundle run`` with the bundle's own configs (train.json +
the variant's override file, then evaluate.json), as a user would run them one by one. The combined
table is ``<bundle_root>/outputs/eval_table1.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle_root", default=str(BUNDLE))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--dataset_dir", default="")
    parser.add_argument("--max_epochs", type=int, default=None)
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the split and the training (default: the bundle's, 0)"
    )
    parser.add_argument("--extra", nargs="*", default=[], help="further --key value overrides for every run")
    args = parser.parse_args(argv)
    configs = BUNDLE / "configs"
    root = Path(args.bundle_root)
    overrides = list(args.extra)
    if args.dataset_dir:
        overrides += ["--dataset_dir", args.dataset_dir]
    if args.seed is not None:
        overrides += ["--seed", str(args.seed)]
    if args.max_epochs is not None:
        overrides += ["--max_epochs", str(args.max_epochs), "--val_interval", str(args.max_epochs)]
    for variant in args.variants:
        files = [configs / "train.json"] + ([configs / VARIANTS[variant]] if VARIANTS[variant] else [])
        t_train = _run("training", files, root, overrides + ["--overwrite", "true"])  # a demo retrains from scratch
        t_eval = _run("evaluating", files + [configs / "evaluate.json"], root, overrides)
        print(f"{variant}: trained in {t_train:.0f} s, evaluated in {t_eval:.0f} s", flush=True)
    print((root / "outputs" / "eval_table1.md").read_text())


if __name__ == "__main__":
    main()
