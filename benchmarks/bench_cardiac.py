"""Cardiac Attri-SIVAE benchmarks (issue 4).

* Soft-Intro iteration (encoder + decoder step, attribute loss) at batch 16, 128×128: wall time,
  peak RSS and achieved GFLOP/s (FLOPs counted by ``torch.utils.flop_counter``) beside the
  machine's fp32 matmul GFLOP/s measured in the same run, at the paper's width
  (64-128-256-512-512, z = 256; target: fits in 8 GB of RAM) and at the CPU default width.
* Preprocessing throughput: ED loading + attributes + alignment, cases per second.
* All disentanglement metrics together on 25,000 codes × 32 dims × 3 attributes (target ≤ 0.5 s).

    python benchmarks/bench_cardiac.py [--threads 1] [--repeats 2] [--out benchmarks/results/cardiac.json]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, matmul_gflops, peak_rss_mib, reset_peak_rss, time_call, write_results  # noqa: E402

from monai_genvq.engines import SoftIntroTrainer  # noqa: E402
from monai_genvq.losses import AttributeRegularizationLoss  # noqa: E402
from monai_genvq.metrics import compute_disentanglement  # noqa: E402
from monai_genvq.networks import SoftIntroResNetVAE  # noqa: E402

WIDTHS = {
    "paper": {"channels": (64, 128, 256, 512, 512), "latent_dim": 256},
    "cpu_default": {"channels": (16, 32, 64, 128, 128), "latent_dim": 64},
}
METRIC_TARGET_S = 0.5
RAM_TARGET_MIB = 8 * 1024


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


def bench_preprocessing(n_cases: int) -> dict:
    from monai.transforms import Compose

    from monai_genvq.apps.cardiac import CardiacAttributesd
    from monai_genvq.data import discover_acdc, generate_synthetic_acdc
    from monai_genvq.transforms import CardiacAlignmentd, LoadCardiacEDd

    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthetic_acdc(tmp, n_train=n_cases, n_test=0)
        records = discover_acdc(root)
        tf = Compose([LoadCardiacEDd(), CardiacAttributesd(), CardiacAlignmentd(keys=("image", "label"), size=128)])
        t0 = time.perf_counter()
        for r in records:
            tf(r)
        seconds = time.perf_counter() - t0
    return {
        "cases": n_cases,
        "volume": "160×160×8 ED frame (+ gt), NIfTI gz",
        "seconds": seconds,
        "cases_per_second": n_cases / seconds,
    }


def bench_metrics(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(25000, 3))
    z = rng.normal(size=(25000, 32))
    z[:, :3] += y
    seconds = time_call(lambda: compute_disentanglement(z, y), repeats, warmup=1)
    return {
        "n": 25000,
        "dims": 32,
        "attributes": 3,
        "metrics": ["interpretability", "modularity", "sap", "scc", "mig"],
        "seconds": seconds,
        "target_seconds": METRIC_TARGET_S,
        "meets_target": seconds <= METRIC_TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--widths", nargs="*", default=list(WIDTHS), help="Soft-Intro widths to time (none: skip)")
    parser.add_argument("--preprocess_cases", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/cardiac.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"machine": machine_info(), "matmul_fp32_gflops": matmul_gflops()}
    results["metrics_25000x32x3"] = bench_metrics(max(3, args.repeats))
    print(f"disentanglement metrics, 25000×32×3: {results['metrics_25000x32x3']['seconds']:.3f} s", flush=True)
    results["preprocessing"] = bench_preprocessing(args.preprocess_cases)
    print(f"preprocessing: {results['preprocessing']['cases_per_second']:.1f} cases/s", flush=True)
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
