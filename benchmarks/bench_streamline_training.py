"""Training-step time, peak memory and achieved GFLOP/s of the streamline autoencoder per bottleneck.

The network is the one ``bundles/streamlines_vqdiff`` ships (``network_def`` of ``train.json`` with the
variant file of each bottleneck; the JSON records its channels: ``channels`` [64, 128], residual blocks
of ``channels[-1] // 2`` = 64 hidden channels, where the VQ-Diff paper's network has 32). Each row is
measured twice, in fresh processes: with glibc's default malloc, and with what a bundle run gets by
default (``heap_only_malloc`` in every ``train.json``'s ``initialize``, applied at run time).

Targets (issue 2): at batch 256 the conv/matmul work runs at >= 60 % of the machine's fp32 matmul
GFLOP/s measured in the same run, and the VQ-Diff bottleneck adds at most 50 % to the AE's step time.

    python benchmarks/bench_streamline_training.py [--batch_sizes 32 256] [--out benchmarks/results/streamline_training.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import (  # noqa: E402
    HEAP_ONLY_MALLOC,
    machine_info,
    matmul_gflops,
    peak_rss_mib,
    reset_peak_rss,
    time_call,
    write_results,
)
from monai.bundle import ConfigParser  # noqa: E402

from monai_genvq.utils import heap_only_malloc  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "bundles" / "streamlines_vqdiff" / "configs"
BOTTLENECKS = ["ae", "vae", "vqvae", "vqema", "vqdiff"]  # vqdiff: train.json alone, the others add <name>.json
MALLOC_MODES = ("glibc_default", "bundle_default")


def bundle_network_def(name: str) -> dict:
    """The bundle's ``network_def`` for one bottleneck, as a plain config (channels resolved)."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json")] + ([str(CONFIGS / f"{name}.json")] if name != "vqdiff" else []))
    parser["bundle_root"] = str(CONFIGS.parent)
    return parser, {
        k: parser.get_parsed_content(f"network_def#{k}") for k in ("channels", "latent_channels", "num_res_blocks")
    }


def measure(name: str, batch_size: int, repeats: int, channels_last: bool) -> dict:
    torch.manual_seed(0)
    parser, _ = bundle_network_def(name)
    net = parser.get_parsed_content("network_def")
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.rand(batch_size, 3, 64, 64) * 2 - 1
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = net(x)
        loss = (out.reconstruction - x).square().mean() + out.bottleneck.loss
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    reset_peak_rss()
    seconds = time_call(step, repeats)
    return {
        "bottleneck": name,
        "batch_size": batch_size,
        "step_ms": seconds * 1e3,
        "samples_per_s": batch_size / seconds,
        "gflop_per_step": flops / 1e9,
        "achieved_gflops": flops / seconds / 1e9,
        "peak_rss_mib": peak_rss_mib(),
    }


def _measure_in_child(name: str, batch_size: int, malloc: str, args: argparse.Namespace) -> dict:
    """One measurement in a fresh process (its own peak memory and allocator state), malloc env vars unset."""
    cmd = [sys.executable, __file__, "--one", name, str(batch_size), "--repeats", str(args.repeats), "--malloc", malloc]
    cmd += ["--channels_last"] * args.channels_last
    env = {k: v for k, v in os.environ.items() if k not in HEAP_ONLY_MALLOC}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--bottlenecks", nargs="+", default=BOTTLENECKS, choices=BOTTLENECKS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--malloc", nargs="+", default=list(MALLOC_MODES), choices=MALLOC_MODES)
    parser.add_argument("--out", default="benchmarks/results/streamline_training.json")
    parser.add_argument("--one", nargs=2, metavar=("BOTTLENECK", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one measurement, JSON on the last line
        applied = heap_only_malloc(args.malloc == ["bundle_default"])
        row = measure(args.one[0], int(args.one[1]), args.repeats, args.channels_last)
        print(json.dumps({**row, "malloc": args.malloc[0], "heap_only_malloc_applied": applied}))
        return

    peak_matmul = matmul_gflops()
    rows = []
    print(f"fp32 matmul (2048²): {peak_matmul:.1f} GFLOP/s; threads {torch.get_num_threads()}")
    _, network = bundle_network_def("vqdiff")
    print(f"network: bundles/streamlines_vqdiff train.json network_def {network} (residual blocks: channels[-1] // 2)")
    print(
        f"{'malloc':>14} {'bottleneck':>10} {'batch':>5} {'step ms':>9} {'samples/s':>9} {'GFLOP/s':>8} {'% matmul':>8} {'peak MiB':>9}"
    )
    for malloc in args.malloc:
        for batch_size in args.batch_sizes:
            for name in args.bottlenecks:
                r = _measure_in_child(name, batch_size, malloc, args)
                r["fraction_of_matmul"] = r["achieved_gflops"] / peak_matmul
                rows.append(r)
                print(
                    f"{malloc:>14} {name:>10} {batch_size:>5} {r['step_ms']:>9.1f} {r['samples_per_s']:>9.1f} "
                    f"{r['achieved_gflops']:>8.1f} {100 * r['fraction_of_matmul']:>7.0f}% {r['peak_rss_mib']:>9.0f}"
                )
    overhead, speedup = {}, {}
    for malloc in args.malloc:
        for batch_size in args.batch_sizes:
            by_name = {r["bottleneck"]: r for r in rows if r["batch_size"] == batch_size and r["malloc"] == malloc}
            if "ae" in by_name and "vqdiff" in by_name:
                key = f"{malloc}/{batch_size}"
                overhead[key] = by_name["vqdiff"]["step_ms"] / by_name["ae"]["step_ms"] - 1
                print(f"VQ-Diff step-time overhead over AE ({key}): {100 * overhead[key]:.0f}% (target <= 50%)")
    for r in rows:
        if r["malloc"] == "bundle_default":
            base = next(
                (
                    b
                    for b in rows
                    if b["malloc"] == "glibc_default"
                    and b["bottleneck"] == r["bottleneck"]
                    and b["batch_size"] == r["batch_size"]
                ),
                None,
            )
            if base:
                speedup[f"{r['bottleneck']}/{r['batch_size']}"] = base["step_ms"] / r["step_ms"]
    if speedup:
        print(
            "bundle default (heap_only_malloc) vs glibc default, step-time ratio: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in speedup.items())
        )
    results = {
        "machine": machine_info(),
        "matmul_gflops_fp32": peak_matmul,
        "channels_last": args.channels_last,
        "network": {"source": "bundles/streamlines_vqdiff/configs/train.json network_def", **network},
        "rows": rows,
        "vqdiff_overhead_vs_ae": overhead,
        "bundle_default_speedup_vs_glibc_default": speedup,
        "targets": {"fraction_of_matmul_at_256": 0.6, "vqdiff_overhead_max": 0.5},
    }
    print(f"wrote {write_results(args.out, results)}")


if __name__ == "__main__":
    main()
