"""Cardiac Attri-SIVAE benchmarks (issue 4).

* Soft-Intro iteration (encoder + decoder step, attribute loss) at batch 16, 128×128: wall time,
  peak RSS and achieved GFLOP/s (FLOPs counted by ``torch.utils.flop_counter``) beside the
  machine's fp32 matmul GFLOP/s measured in the same run, at the paper's width
  (64-128-256-512-512, z = 256; target: fits in 8 GB of RAM) and at the CPU default width.
* Preprocessing throughput: what ``bundles/cardiac_attri_sivae`` runs by default (its ``train.json``
  ``preprocessing`` in its CacheDataset: load, orientation, attributes, alignment + crop, resize), cases
  per second and the seconds of each stage, with a scaling row (1x, 4x, 16x the cases: cases/s and peak
  RSS each) and a row of files stored mirrored (the orientation step at work).
* All disentanglement metrics together on 25,000 codes × 32 dims × 3 attributes: the default (the seed's
  k-NN mutual information; target ≤ 60 s) and the fixed-bin histogram option (target ≤ 0.5 s).

    python benchmarks/bench_cardiac.py [--threads 1] [--repeats 2] [--preprocess_cases 4] [--scales 1 4 16]
        [--widths paper cpu_default] [--out benchmarks/results/cardiac.json]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import (  # noqa: E402
    machine_info,
    matmul_gflops,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    time_call,
    write_results,
)
from monai.transforms import Transform  # noqa: E402

from monai_genvq.engines import SoftIntroTrainer  # noqa: E402
from monai_genvq.losses import AttributeRegularizationLoss  # noqa: E402
from monai_genvq.metrics import compute_disentanglement  # noqa: E402
from monai_genvq.networks import SoftIntroResNetVAE  # noqa: E402

WIDTHS = {
    "paper": {"channels": (64, 128, 256, 512, 512), "latent_dim": 256},
    "cpu_default": {"channels": (16, 32, 64, 128, 128), "latent_dim": 64},
}
METRIC_TARGET_S = 60.0  # the default k-NN MI estimator (issue 19)
HISTOGRAM_METRIC_TARGET_S = 0.5
RAM_TARGET_MIB = 8 * 1024
CARDIAC_CONFIGS = Path(__file__).resolve().parents[1] / "bundles" / "cardiac_attri_sivae" / "configs"
# stage name of each transform of the bundle's preprocessing (LoadCardiacEDd is split into load and orientation)
PREPROCESSING_STAGES = {
    "LoadCardiacEDd": "load_orientation",
    "CardiacAttributesd": "attributes",
    "CardiacAlignmentd": "alignment_crop",
    "Resized": "resize",
    "EnsureTyped": "to_tensor",
}
PREPROCESSING_STAGE_NOTES = {
    "load": "LoadCardiacEDd without orientation: NIfTI read (gz), ED frame, checks, label convention",
    "orientation": "LoadCardiacEDd's reorientation to the canonical axes (monai_genvq.data.cardiac._to_canonical)",
    "attributes": "CardiacAttributesd: LVEDV, MEDV, RVEDV",
    "alignment_crop": "CardiacAlignmentd: slice choice, rotation about the LV barycentre and the crop_size crop "
    "(one resampling), masking and intensity scaling",
    "resize": "Resized to image_size (area)",
    "to_tensor": "EnsureTyped float32",
}
STAGE_ORDER = tuple(PREPROCESSING_STAGE_NOTES)


def bench_soft_intro(width: str, batch: int, size: int, repeats: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    net = SoftIntroResNetVAE(image_size=size, **WIDTHS[width])
    data = {"image": torch.rand(batch, 1, size, size), "attributes": torch.randn(batch, 3)}
    trainer = SoftIntroTrainer(
        "cpu",
        1,
        [data],
        net,
        torch.optim.Adam(net.encoder.parameters(), 2e-4),
        torch.optim.Adam(net.decoder.parameters(), 2e-4),
        beta_neg=256.0,
        attribute_loss=AttributeRegularizationLoss((0, 1, 2)),
    )
    trainer.state.iteration = 1
    step = lambda: trainer._iteration(trainer, data)  # noqa: E731
    gc.collect()
    reset_peak_rss()
    step()  # warm-up (allocations, Adam state)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    seconds = time_call(step, repeats, warmup=0)
    return {
        "width": width,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in WIDTHS[width].items()},
        "batch": batch,
        "image_size": size,
        "parameters_M": sum(p.numel() for p in net.parameters()) / 1e6,
        "seconds_per_iteration": seconds,
        "gflop_per_iteration": flops / 1e9,
        "achieved_gflops": flops / seconds / 1e9,
        "peak_rss_mib": peak_rss_mib(),
        "fits_8GB": peak_rss_mib() < RAM_TARGET_MIB,
    }


def _mirror_x(path: str) -> None:
    """Rewrite a NIfTI file mirrored along x (flipped voxels, x column of the affine negated): the same anatomy."""
    import nibabel as nib

    img = nib.load(path)
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, img.shape[0] - 1
    data = np.asarray(img.dataobj)[::-1].copy()
    nib.save(nib.Nifti1Image(data, img.affine @ flip, header=img.header), path)


class _Timed(Transform):
    """Runs ``fn`` and adds its seconds and one call to ``totals[name]`` (a Transform, so CacheDataset caches it)."""

    def __init__(self, fn: Any, name: str, totals: dict[str, list[float]]) -> None:
        self.fn, self.name, self.totals = fn, name, totals

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        total = self.totals.setdefault(self.name, [0.0, 0])
        total[0] += time.perf_counter() - t0
        total[1] += 1
        return out


def _preprocess(items: list[dict], preprocessing: Any, dataset_kwargs: dict) -> dict:
    """The bundle's ``train#dataset`` (a CacheDataset: the whole preprocessing runs at construction) on ``items``,
    with the seconds of each stage of its ``preprocessing`` and the peak RSS."""
    from unittest import mock

    from monai.data import CacheDataset
    from monai.transforms import Compose

    import monai_genvq.data.cardiac as cardiac_data

    totals: dict[str, list[float]] = {}
    # each transform of the bundle's Compose, timed; the orientation step inside the loader timed on its own
    compose = Compose(
        [
            _Timed(t, PREPROCESSING_STAGES.get(type(t).__name__, type(t).__name__), totals)
            for t in preprocessing.transforms
        ]
    )
    orientation = _Timed(cardiac_data._to_canonical, "orientation", totals)
    gc.collect()
    rss_before = rss_mib()
    reset_peak_rss()
    with mock.patch.object(cardiac_data, "_to_canonical", orientation):
        t0 = time.perf_counter()
        dataset = CacheDataset(items, transform=compose, **dataset_kwargs)
        seconds = time.perf_counter() - t0
    peak = peak_rss_mib()
    names = [t.name for t in compose.transforms] + [orientation.name]
    expected = {name: len(items) * (2 if name == "orientation" else 1) for name in names}  # image and label
    if len(dataset) != len(items) or {name: calls for name, (_, calls) in totals.items()} != expected:
        raise RuntimeError(f"the preprocessing did not run once per item at construction: {totals}")
    stages = {name: total for name, (total, _) in totals.items()}
    stages["load"] = stages.pop("load_orientation") - stages.get("orientation", 0.0)
    cases = len({item["subject"] for item in items})
    return {
        "cases": cases,
        "items": len(items),
        "seconds": seconds,
        "cases_per_second": cases / seconds,
        "items_per_second": len(items) / seconds,
        "stage_seconds": {k: stages.get(k, 0.0) for k in STAGE_ORDER if k in stages},
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak,
    }


def bench_preprocessing(n_cases: int, scales: list[int]) -> dict:
    """Cardiac preprocessing as ``bundles/cardiac_attri_sivae`` runs it by default, at 1x, 4x, 16x... the cases.

    The bundle's ``preprocessing`` (read from ``train.json``) in its ``train#dataset`` (CacheDataset) on
    ACDC-layout phantom cases (``generate_synthetic_acdc``), each case repeated for the bundle's
    ``slice_offsets``. Rows: each scale (cases stored as the generator writes them, RAS: the orientation step
    has nothing to do), and the smallest scale again with the files stored mirrored (LAS), which the
    orientation step reorients.
    """
    import shutil

    from monai.bundle import ConfigParser

    from monai_genvq.data import discover_acdc, expand_slice_offsets, generate_synthetic_acdc

    parser = ConfigParser()
    parser.read_config(str(CARDIAC_CONFIGS / "train.json"))
    preprocessing = parser.get_parsed_content("preprocessing")
    dataset_kwargs = {k: parser[f"train#dataset#{k}"] for k in ("cache_rate", "num_workers", "progress")}
    offsets = list(parser["slice_offsets"])
    scales = sorted(scales)
    with tempfile.TemporaryDirectory() as tmp:
        records = discover_acdc(generate_synthetic_acdc(Path(tmp) / "ras", n_train=n_cases * scales[-1], n_test=0))
        preprocessing(expand_slice_offsets(records[:1], [0])[0])  # warm-up: first-call imports, not measured
        rows = []
        for scale in scales:
            row = _preprocess(expand_slice_offsets(records[: n_cases * scale], offsets), preprocessing, dataset_kwargs)
            rows.append({"scale": scale, "stored": "RAS", **row})
        mirrored = Path(tmp) / "las"
        for r in records[:n_cases]:
            shutil.copytree(Path(r["image"]).parent, mirrored / r["subject"])
        las = [
            {**r, **{k: str(mirrored / r["subject"] / Path(r[k]).name) for k in ("image", "label")}}
            for r in records[:n_cases]
        ]
        for r in las:
            _mirror_x(r["image"])
            _mirror_x(r["label"])
        rows.append(
            {
                "scale": scales[0],
                "stored": "LAS",
                **_preprocess(expand_slice_offsets(las, offsets), preprocessing, dataset_kwargs),
            }
        )
    return {
        "source": "bundles/cardiac_attri_sivae/configs/train.json: preprocessing in train#dataset (CacheDataset)",
        "stages": {k: PREPROCESSING_STAGE_NOTES[k] for k in STAGE_ORDER},
        "slice_offsets": offsets,
        "base_cases": n_cases,
        "scales": scales,
        "data": "ACDC-layout phantom (generate_synthetic_acdc): ED frame 160x160x8 + ground truth, NIfTI gz, "
        "read from the page cache",
        "malloc": "glibc default (the bundle builds its dataset before heap_only_malloc)",
        "rows": rows,
    }


def disentanglement_inputs(n: int = 25000, dims: int = 32, attributes: int = 3, seed: int = 0) -> tuple:
    """Codes (n, dims) and attributes (n, attributes): standard normal, the first codes carrying the attributes."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, attributes))
    z = rng.normal(size=(n, dims))
    z[:, :attributes] += y
    return z, y


def bench_metrics(repeats: int) -> dict:
    z, y = disentanglement_inputs()
    seconds = time_call(lambda: compute_disentanglement(z, y), 1, warmup=0)
    histogram = time_call(lambda: compute_disentanglement(z, y, mi_estimator="histogram"), repeats, warmup=1)
    return {
        "n": z.shape[0],
        "dims": z.shape[1],
        "attributes": y.shape[1],
        "metrics": ["interpretability", "modularity", "sap", "scc", "mig"],
        "mi_estimator": "knn (default)",
        "seconds": seconds,
        "target_seconds": METRIC_TARGET_S,
        "meets_target": seconds <= METRIC_TARGET_S,
        "histogram_option": {
            "seconds": histogram,
            "target_seconds": HISTOGRAM_METRIC_TARGET_S,
            "meets_target": histogram <= HISTOGRAM_METRIC_TARGET_S,
        },
    }


def _print_preprocessing(pre: dict) -> None:
    print(
        f"preprocessing ({pre['source']}); each case once per slice offset {pre['slice_offsets']}; "
        "stages in ms per case:"
    )
    stages = [k for k in STAGE_ORDER if k in pre["rows"][0]["stage_seconds"]]
    print(
        f"{'scale':>5} {'stored':>6} {'cases':>5} {'cases/s':>8} {'peak MiB':>8} "
        + " ".join(f"{k:>14}" for k in stages)
    )
    for r in pre["rows"]:
        print(
            f"{r['scale']:>4}x {r['stored']:>6} {r['cases']:>5} {r['cases_per_second']:>8.1f} {r['peak_rss_mib']:>8.0f} "
            + " ".join(f"{1e3 * r['stage_seconds'].get(k, 0.0) / r['cases']:>14.2f}" for k in stages),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--widths", nargs="*", default=list(WIDTHS), help="Soft-Intro widths to time (none: skip)")
    parser.add_argument("--preprocess_cases", type=int, default=4, help="cases of the 1x preprocessing row")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16], help="preprocessing scaling rows")
    parser.add_argument("--out", default="benchmarks/results/cardiac.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"machine": machine_info(), "matmul_fp32_gflops": matmul_gflops()}
    results["metrics_25000x32x3"] = bench_metrics(max(3, args.repeats))
    m = results["metrics_25000x32x3"]
    print(
        f"disentanglement metrics, 25000×32×3: {m['seconds']:.2f} s (default k-NN MI), "
        f"{m['histogram_option']['seconds']:.3f} s (histogram option)",
        flush=True,
    )
    results["preprocessing"] = bench_preprocessing(args.preprocess_cases, args.scales)
    _print_preprocessing(results["preprocessing"])
    results["soft_intro"] = []
    for width in args.widths:
        r = bench_soft_intro(width, args.batch, args.size, args.repeats)
        results["soft_intro"].append(r)
        print(
            f"soft-intro {width}: {r['seconds_per_iteration']:.2f} s/it, {r['achieved_gflops']:.1f} GFLOP/s "
            f"(matmul {results['matmul_fp32_gflops']:.1f}), peak RSS {r['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    print(write_results(args.out, results))


if __name__ == "__main__":
    main()
