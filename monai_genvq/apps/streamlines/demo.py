"""Train and evaluate every bottleneck of ``bundles/streamlines_vqdiff`` and print one BUAN table.

The variants: VQ-Diff, AE, our per-position VAE, the paper's global 20-d VAE (``vae_seed.json``), VQ-VAE
and VQ-EMA; ``--variants`` picks some.

Usage (from the repository root; ``make demo`` runs the first line)::

    python -m monai_genvq.apps.streamlines.demo                      # embedded synthetic TractoInferno
    python -m monai_genvq.apps.streamlines.demo --dataset dipy       # dipy's real bundles, sub-05 held out
    python -m monai_genvq.apps.streamlines.demo --dataset_dir /data/TractoInferno --max_epochs 100

Every run goes through ``monai.bundle`` with the bundle's own configs (train.json + the variant's
override file, then evaluate.json), exactly as a user would run them one by one. Training runs with
``--overwrite true``: a second demo replaces the first one's models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from monai.bundle import run as bundle_run

from monai_genvq.utils.fileio import atomic_write_text
from monai_genvq.utils.tables import format_mean_std, markdown_table

VARIANTS = {
    "vqdiff": None,
    "ae": "ae.json",
    "vae": "vae.json",
    "vae_seed": "vae_seed.json",
    "vqvae": "vqvae.json",
    "vqema": "vqema.json",
}
LABELS = {
    "vqdiff": "VQ-Diff",
    "ae": "AE",
    "vae": "VAE (per position)",
    "vae_seed": "VAE (global 20-d, paper)",
    "vqvae": "VQ-VAE",
    "vqema": "VQ-EMA",
}


def _configs(bundle_dir: Path, variant: str, dataset: str, evaluate: bool) -> list[str]:
    configs = [bundle_dir / "configs" / "train.json"]
    if VARIANTS[variant]:
        configs.append(bundle_dir / "configs" / VARIANTS[variant])
    if dataset == "dipy":
        configs.append(bundle_dir / "configs" / "dipy_holdout.json")
    if evaluate:
        configs.append(bundle_dir / "configs" / "evaluate.json")
    return [str(c) for c in configs]


def buan_table(results: dict[str, dict]) -> str:
    """One Markdown table: methods × bundles, BUAN in normalised space (mean ± std over groups)."""
    first = next(iter(results.values()))["buan_normalised"]
    names = sorted(k for k, v in first.items() if isinstance(v, dict) and "mean" in v and k != "all")
    header = ["method", *names, "all", "all (mm, thr 6)", "perplexity"]
    rows = []
    for variant, res in results.items():
        norm = res["buan_normalised"]
        perplexity = res.get("codebook", {}).get("perplexity")
        rows.append(
            [
                LABELS.get(variant, variant),
                *[format_mean_std(norm.get(n), 3) for n in names],
                f"**{format_mean_std(norm['all'], 3)}**",
                format_mean_std(res["buan_mm"]["all"], 3),
                "–" if perplexity is None else f"{perplexity:.1f}",
            ]
        )
    caption = (
        f"BUAN (clust_thr=[0]) of reconstructions vs inputs, normalised [-1, 1] space, threshold "
        f"{first['threshold']} (≈ {first['threshold_mm_equivalent']:.2f} mm); data: {first_dataset(results)}; "
        f"mean ± std over {first['all']['n']} groups of streamlines.\n\n"
    )
    return caption + markdown_table(header, rows)


def first_dataset(results: dict[str, dict]) -> str:
    return next(iter(results.values())).get("dataset", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle_dir", default="bundles/streamlines_vqdiff")
    parser.add_argument("--dataset", default="synthetic", choices=["synthetic", "dipy", "tractoinferno"])
    parser.add_argument(
        "--dataset_dir", default="", help="a TractoInferno-layout folder (implies --dataset tractoinferno)"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--max_epochs", type=int, default=None, help="override train.json's max_epochs")
    args = parser.parse_args(argv)

    bundle_dir = Path(args.bundle_dir).resolve()
    if not (bundle_dir / "configs" / "train.json").is_file():
        parser.error(f"no configs/train.json under {bundle_dir}; run from the repository root or pass --bundle_dir.")
    dataset = "tractoinferno" if args.dataset_dir else args.dataset
    overrides: dict = {"bundle_root": str(bundle_dir), "logging_file": str(bundle_dir / "configs" / "logging.conf")}
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
        val_interval = json.loads((bundle_dir / "configs" / "train.json").read_text())["val_interval"]
        if args.max_epochs < val_interval:  # validate (and save the best model.pt) at least once
            overrides["val_interval"] = args.max_epochs
    if args.dataset_dir:
        overrides.update(dataset="tractoinferno", dataset_dir=args.dataset_dir)

    results: dict[str, dict] = {}
    start = time.perf_counter()
    for variant in args.variants:
        t0 = time.perf_counter()
        print(f"== {LABELS[variant]}: training", flush=True)
        # a demo retrains from scratch: replace the models of an earlier demo run (the bundle refuses otherwise)
        bundle_run("training", config_file=_configs(bundle_dir, variant, dataset, False), overwrite=True, **overrides)
        print(f"== {LABELS[variant]}: evaluating", flush=True)
        bundle_run("evaluating", config_file=_configs(bundle_dir, variant, dataset, True), **overrides)
        prefix = "dipy_" if dataset == "dipy" else ""
        metrics_file = bundle_dir / "outputs" / f"{prefix}{variant}" / "eval" / "metrics.json"
        results[variant] = json.loads(metrics_file.read_text())
        print(f"== {LABELS[variant]}: done in {time.perf_counter() - t0:.0f} s", flush=True)

    table = buan_table(results)
    summary = bundle_dir / "outputs" / f"buan_table_{dataset}.md"
    atomic_write_text(summary, table)
    print("\n" + table)
    print(f"total {time.perf_counter() - start:.0f} s; table written to {summary}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
