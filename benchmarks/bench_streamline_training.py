"""Training-step time, peak memory and achieved GFLOP/s of the streamline autoencoder per bottleneck.

Targets (issue 2): at batch 256 the conv/matmul work runs at >= 60 % of the machine's fp32 matmul
GFLOP/s measured in the same run, and the VQ-Diff bottleneck adds at most 50 % to the AE's step time.

    python benchmarks/bench_streamline_training.py [--batch_sizes 32 256] [--out benchmarks/results/streamline_training.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import (  # noqa: E402
    machine_info,
    matmul_gflops,
    peak_rss_mib,
    reexec_with_heap_only_malloc,
    reset_peak_rss,
    time_call,
    write_results,
)

from monai_genvq.networks import (  # noqa: E402
    EMAQuantizer,
    GaussianBottleneck,
    GumbelQuantizer,
    IdentityBottleneck,
    ResNetAutoencoder,
    VectorQuantizer,
)

BOTTLENECKS = {
    "ae": lambda: IdentityBottleneck(),
    "vae": lambda: GaussianBottleneck(2, 64),
    "vqvae": lambda: VectorQuantizer(512, 64),
    "vqema": lambda: EMAQuantizer(512, 64),
    "vqdiff": lambda: GumbelQuantizer(512, 64),
}


def measure(name: str, batch_size: int, repeats: int, channels_last: bool) -> dict:
    torch.manual_seed(0)
    net = ResNetAutoencoder(bottleneck=BOTTLENECKS[name]())
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


def _measure_in_child(name: str, batch_size: int, args: argparse.Namespace) -> dict:
    """One measurement in a fresh process, so peak memory is that configuration's alone."""
    cmd = [sys.executable, __file__, "--one", name, str(batch_size), "--repeats", str(args.repeats)]
    cmd += ["--channels_last"] * args.channels_last + ["--default_malloc"] * args.default_malloc
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--bottlenecks", nargs="+", default=list(BOTTLENECKS), choices=list(BOTTLENECKS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--default_malloc", action="store_true", help="keep glibc's default mmap/trim behaviour")
    parser.add_argument("--out", default="benchmarks/results/streamline_training.json")
    parser.add_argument("--one", nargs=2, metavar=("BOTTLENECK", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.default_malloc:
        reexec_with_heap_only_malloc()
    if args.one:  # child process: one measurement, JSON on the last line
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.repeats, args.channels_last)))
        return

    peak_matmul = matmul_gflops()
    rows = []
    print(f"fp32 matmul (2048²): {peak_matmul:.1f} GFLOP/s; threads {torch.get_num_threads()}")
    print(
        f"{'bottleneck':>10} {'batch':>5} {'step ms':>9} {'samples/s':>9} {'GFLOP/s':>8} {'% matmul':>8} {'peak MiB':>9}"
    )
    for batch_size in args.batch_sizes:
        for name in args.bottlenecks:
            r = _measure_in_child(name, batch_size, args)
            r["fraction_of_matmul"] = r["achieved_gflops"] / peak_matmul
            rows.append(r)
            print(
                f"{name:>10} {batch_size:>5} {r['step_ms']:>9.1f} {r['samples_per_s']:>9.1f} "
                f"{r['achieved_gflops']:>8.1f} {100 * r['fraction_of_matmul']:>7.0f}% {r['peak_rss_mib']:>9.0f}"
            )
    overhead = {}
    for batch_size in args.batch_sizes:
        by_name = {r["bottleneck"]: r for r in rows if r["batch_size"] == batch_size}
        if "ae" in by_name and "vqdiff" in by_name:
            overhead[str(batch_size)] = by_name["vqdiff"]["step_ms"] / by_name["ae"]["step_ms"] - 1
            print(
                f"VQ-Diff step-time overhead over AE at batch {batch_size}: {100 * overhead[str(batch_size)]:.0f}% (target <= 50%)"
            )
    results = {
        "machine": machine_info(),
        "matmul_gflops_fp32": peak_matmul,
        "channels_last": args.channels_last,
        "rows": rows,
        "vqdiff_overhead_vs_ae": overhead,
        "targets": {"fraction_of_matmul_at_256": 0.6, "vqdiff_overhead_max": 0.5},
    }
    print(f"wrote {write_results(args.out, results)}")


if __name__ == "__main__":
    main()
