"""Forward + backward time and memory of every quantizer: 512 × 64 codebook, batch 32, 16×16 and 32×32 latents.

Each measurement runs ``out = quantizer(z); (out.loss + out.latent.square().mean()).backward()`` on
z ~ N(0, 1) of shape (32, 64, H, W) in training mode (the second term stands in for the decoder's
reconstruction loss, so straight-through and soft paths are both exercised). Reported per
quantizer and latent size:

- ``ms``: median wall time of forward + backward (after one warm-up run);
- ``cpu_ms``: median CPU time of this process for the same call (on a shared, loaded machine
  this is the better measure of the work; with 1 thread it is close to the wall time of an idle one);
- ``saved_mib``: bytes of the tensors autograd saves for backward (device-independent activation
  memory; inputs and parameters excluded);
- ``peak_mib``: CUDA peak allocated memory during the call when on GPU, else the growth of the
  process's peak RSS over its RSS before the call (CPU; coarse, allocator-dependent).

Neural gas is measured early (λ = 10, wide neighbourhood) and late (λ = 0.1) in its schedule,
because λ sets how many ranks are computed.

    python benchmarks/bench_quantizers.py [--repeats 3] [--threads 1] [--device cpu] [--out benchmarks/results/quantizers.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, peak_rss_mib, reset_peak_rss, time_call, write_results  # noqa: E402

from monai_genvq.networks import (  # noqa: E402
    EMAQuantizer,
    FuzzyCMeansQuantizer,
    GumbelQuantizer,
    NeuralGasQuantizer,
    SampledExpectationQuantizer,
    VectorQuantizer,
)

K, D, BATCH = 512, 64, 32
QUANTIZERS = {
    "vanilla": lambda: VectorQuantizer(K, D),
    "ema": lambda: EMAQuantizer(K, D),
    "neural_gas_lambda10": lambda: NeuralGasQuantizer(K, D, lambda_init=10.0),
    "neural_gas_lambda0.1": lambda: NeuralGasQuantizer(K, D, lambda_init=0.1),
    "fcm_original_hard": lambda: FuzzyCMeansQuantizer(K, D, fuzzifier=1.5, loss="original"),
    "fcm_normalised_hard": lambda: FuzzyCMeansQuantizer(K, D, fuzzifier=1.5, loss="normalised"),
    "fcm_posterior_soft": lambda: FuzzyCMeansQuantizer(K, D, fuzzifier=1.5, loss="posterior", output="soft"),
    "sampled_expectation_m10": lambda: SampledExpectationQuantizer(K, D, num_samples=10),
    "gumbel": lambda: GumbelQuantizer(K, D),
}


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def measure(name: str, size: int, device: torch.device, repeats: int) -> dict:
    torch.manual_seed(0)
    quantizer = QUANTIZERS[name]().to(device).train()
    z = torch.randn(BATCH, D, size, size, device=device, requires_grad=True)

    def step() -> None:
        z.grad = None
        quantizer.zero_grad(set_to_none=True)
        out = quantizer(z)
        (out.loss + out.latent.square().mean()).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = time_call(step, repeats, warmup=1)
    cpu = []
    for _ in range(repeats):
        t0 = time.process_time()
        step()
        cpu.append(time.process_time() - t0)
    cpu_seconds = sorted(cpu)[len(cpu) // 2]

    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if t is not z and not isinstance(t, torch.nn.Parameter):
            saved += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = quantizer(z)
        loss = out.loss + out.latent.square().mean()
    loss.backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    else:
        before = _rss_mib()
        reset_peak_rss()
        step()
        peak = peak_rss_mib() - before
    return {
        "ms": seconds * 1e3,
        "cpu_ms": cpu_seconds * 1e3,
        "saved_mib": saved / 2**20,
        "peak_mib": peak,
        "latents": BATCH * size * size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--quantizers", nargs="+", default=list(QUANTIZERS), choices=list(QUANTIZERS))
    parser.add_argument("--out", default="benchmarks/results/quantizers.json")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    results: dict[str, dict] = {}
    print(
        f"quantizer fwd+bwd, codebook {K}x{D}, batch {BATCH}, device {device}, torch threads {torch.get_num_threads()}"
    )
    print(f"{'quantizer':<26} {'latent':>7} {'ms':>9} {'cpu ms':>9} {'saved MiB':>10} {'peak MiB':>9}")
    for name in args.quantizers:
        results[name] = {}
        for size in args.sizes:
            r = measure(name, size, device, args.repeats)
            results[name][f"{size}x{size}"] = r
            print(
                f"{name:<26} {size:>3}x{size:<3} {r['ms']:>9.1f} {r['cpu_ms']:>9.1f} {r['saved_mib']:>10.1f} "
                f"{r['peak_mib']:>9.1f}"
            )
    path = write_results(
        args.out,
        {
            "benchmark": "quantizers_fwd_bwd",
            "codebook": [K, D],
            "batch": BATCH,
            "loss": "out.loss + out.latent.square().mean()",
            "device": str(device),
            "results": results,
            "load_average_1_5_15min": list(os.getloadavg()),
            "machine": machine_info(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
