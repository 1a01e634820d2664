"""BUAN throughput: dipy's bundle_shape_similarity per pair vs the exact batched clust_thr=[0] path.

Targets (issue 2): on groups of 64 streamlines x 64 points (the VQ-Diff sample), the batched path
is >= 20x faster than dipy and gives identical values (max |difference| <= 1e-6).
Scenarios: "unique" (groups cut from large bundles) and "padded" (50 streamlines padded to 64 by
drawing streamlines again, as small bundles are grouped; dipy merges those copies).

Timed with 1 torch thread by default: dipy runs on one core, so this is the per-core speed-up, and
one thread stays stable when other processes share the CPU (OpenMP threads then spin-wait).

    python benchmarks/bench_buan.py [--pairs 256] [--threads 1] [--out benchmarks/results/buan.json]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, time_call, write_results  # noqa: E402

from monai_genvq.apps.streamlines import buan_dipy, bundle_adjacency_batched  # noqa: E402

THRESHOLD = 0.05  # normalised [-1, 1] space, as in the VQ-Diff paper
SPEEDUP_TARGET = 20.0
DIFF_TARGET = 1e-6


def make_pairs(n: int, padded: bool, seed: int = 0, s: int = 64, p: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (input, reconstruction) bundle groups shaped (n, 3, s, p), float32, normalised space.

    Each group is a fan of smooth curves ~100 mm long and ~10 mm wide in a 180 mm brain box,
    divided by 90 mm (the [-1, 1] space); the reconstruction adds a smooth error of ~2 mm.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, p)[:, None]
    targets = np.empty((n, s, p, 3))
    for g in range(n):
        start = rng.uniform(-60, 60, 3)
        ctrl = start + rng.normal(scale=40, size=(3, 3))
        n_unique = 50 if padded else s
        offsets = rng.normal(scale=4.0, size=(n_unique, 3, 3))  # smooth per-streamline deviation
        curves = [
            (1 - t) ** 3 * (start + o[0])
            + 3 * (1 - t) ** 2 * t * (ctrl[0] + o[1])
            + 3 * (1 - t) * t**2 * ctrl[1]
            + t**3 * (ctrl[2] + o[2])
            for o in offsets
        ]
        order = np.arange(n_unique)
        if padded:
            order = rng.permutation(np.concatenate([order, rng.integers(0, n_unique, s - n_unique)]))
        targets[g] = np.stack(curves)[order]
    targets /= 90.0
    error = rng.normal(scale=2.0 / 90.0, size=(n, s, 3, 3))
    recon = targets + error[:, :, None, 0] + t * error[:, :, None, 1] + t**2 * error[:, :, None, 2]

    def batch(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2).contiguous()

    return batch(targets), batch(recon)


def measure(name: str, pairs: int, repeats: int) -> dict:
    target, recon = make_pairs(pairs, padded=name == "padded")
    as_numpy = [(r.permute(1, 2, 0).numpy(), g.permute(1, 2, 0).numpy()) for r, g in zip(recon, target)]

    start = time.perf_counter()
    reference = np.array([buan_dipy(r, g, threshold=THRESHOLD, clust_thr=(0,), seed=0) for r, g in as_numpy])
    dipy_seconds = time.perf_counter() - start

    batched = bundle_adjacency_batched(recon, target, threshold=THRESHOLD).numpy()
    batched_seconds = time_call(lambda: bundle_adjacency_batched(recon, target, threshold=THRESHOLD), repeats)
    return {
        "pairs": pairs,
        "dipy_pairs_per_s": pairs / dipy_seconds,
        "batched_pairs_per_s": pairs / batched_seconds,
        "speedup": dipy_seconds / batched_seconds,
        "max_abs_diff": float(np.abs(batched - reference).max()),
        "mean_buan": float(reference.mean()),
        "std_buan": float(reference.std()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=256, help="bundle pairs per scenario")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the batched path (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: leave torch's default)")
    parser.add_argument("--scenarios", nargs="+", default=["unique", "padded"], choices=["unique", "padded"])
    parser.add_argument("--out", default="benchmarks/results/buan.json")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    results = {name: measure(name, args.pairs, args.repeats) for name in args.scenarios}
    print(
        f"BUAN, threshold {THRESHOLD} in normalised [-1, 1] space, clust_thr=[0], groups 64 x 64, "
        f"torch threads {torch.get_num_threads()}"
    )
    header = ("scenario", "pairs", "dipy pairs/s", "batched pairs/s", "speed-up", "max |diff|", "mean BUAN")
    print("{:<9} {:>5} {:>13} {:>16} {:>9} {:>11} {:>10}".format(*header))
    for name, r in results.items():
        print(
            f"{name:<9} {r['pairs']:>5} {r['dipy_pairs_per_s']:>13.1f} {r['batched_pairs_per_s']:>16.1f} "
            f"{r['speedup']:>8.1f}x {r['max_abs_diff']:>11.1e} {r['mean_buan']:>10.3f}"
        )
    passed = all(r["speedup"] >= SPEEDUP_TARGET and r["max_abs_diff"] <= DIFF_TARGET for r in results.values())
    path = write_results(
        args.out,
        {
            "benchmark": "buan",
            "space": "normalised",
            "threshold": THRESHOLD,
            "clust_thr": [0],
            "group": {"streamlines": 64, "points": 64},
            "targets": {"speedup": SPEEDUP_TARGET, "max_abs_diff": DIFF_TARGET},
            "scenarios": results,
            "passed": passed,
            "machine": machine_info(),
        },
    )
    verdict = "met" if passed else "NOT met"
    print(f"targets (>= {SPEEDUP_TARGET:.0f}x, max |diff| <= {DIFF_TARGET:g}) {verdict}; wrote {path}")


if __name__ == "__main__":
    main()
