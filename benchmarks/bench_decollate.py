"""Per-iteration cost of MONAI's decollation (``decollate=True``) in the streamline VQ-Diff trainer.

Our trainers decollate like :class:`monai.engines.SupervisedTrainer` (so MONAI's handler settings such
as ``--tracking mlflow`` work). This measures (1) the decollation itself on a real iteration's batch and
output (the ``Decollated`` transform MONAI registers on ``MODEL_COMPLETED``) and (2) the training
iteration time with ``decollate=False`` vs ``True``. Target: decollation < 1 % of the iteration.

    python benchmarks/bench_decollate.py [--batch_sizes 16 64] [--out benchmarks/results/decollate.json]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import torch
from monai.transforms import Decollated

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, time_call, write_results  # noqa: E402

from monai_genvq.engines import AutoencoderTrainer, PrepareAutoencoderBatch, loss_terms  # noqa: E402
from monai_genvq.networks import GumbelQuantizer, ResNetAutoencoder  # noqa: E402


def _batch(batch_size: int) -> dict:
    """A collated streamline batch as the bundle's DataLoader yields it (tensor + per-sample metadata)."""
    return {
        "bundle": torch.rand(batch_size, 3, 64, 64) * 2 - 1,
        "name": [f"AF_L_{i}" for i in range(batch_size)],
        "subject": ["sub-1001"] * batch_size,
        "path": [f"/data/sub-1001/tractography/sub-1001__AF_L.trk"] * batch_size,
        "split": ["trainset"] * batch_size,
        "group": torch.arange(batch_size),
    }


def _trainer(batch_size: int, iterations: int, decollate: bool) -> AutoencoderTrainer:
    torch.manual_seed(0)
    net = ResNetAutoencoder(bottleneck=GumbelQuantizer(512, 64))
    data = [_batch(batch_size) for _ in range(iterations)]
    return AutoencoderTrainer("cpu", 1, data, net, torch.optim.Adam(net.parameters(), 1e-4), torch.nn.MSELoss(),
                              prepare_batch=PrepareAutoencoderBatch("bundle"), decollate=decollate)


def measure(batch_size: int, iterations: int, repeats: int) -> dict:
    # (1) the decollation alone, on one real iteration's batch and output (batch-level dict form)
    trainer = _trainer(batch_size, 1, decollate=False)
    trainer.run()
    batch, output = trainer.state.batch, trainer.state.output
    transform = Decollated(keys=None, detach=True)
    decollate_s = time_call(lambda: (transform(copy.copy(batch)), transform(copy.copy(output))), repeats=max(repeats, 20), warmup=3)
    # (2) whole training iterations, decollate off vs on (alternating runs, median per iteration)
    per_iter = {False: [], True: []}
    for _ in range(repeats):
        for flag in (False, True):
            t = _trainer(batch_size, iterations + 1, flag)
            t.run()  # first run warms up allocations; time a second epoch over the same data
            t.state.max_epochs += 1
            t0 = time.perf_counter()
            t.run()
            per_iter[flag].append((time.perf_counter() - t0) / (iterations + 1))
    off, on = (sorted(v)[len(v) // 2] for v in (per_iter[False], per_iter[True]))
    assert isinstance(t.state.output, list) and loss_terms(t.state.output)["loss"] > 0
    return {
        "batch_size": batch_size,
        "decollate_ms": decollate_s * 1e3,
        "iteration_ms_decollate_off": off * 1e3,
        "iteration_ms_decollate_on": on * 1e3,
        "decollate_fraction_of_iteration": decollate_s / off,
        "measured_difference": on / off - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/decollate.json")
    args = parser.parse_args()
    rows = []
    print(f"{'batch':>5} {'decollate ms':>12} {'iter ms off':>11} {'iter ms on':>10} {'decollate/iter':>14} {'on/off-1':>8}")
    for batch_size in args.batch_sizes:
        r = measure(batch_size, args.iterations, args.repeats)
        rows.append(r)
        print(f"{batch_size:>5} {r['decollate_ms']:>12.3f} {r['iteration_ms_decollate_off']:>11.1f} "
              f"{r['iteration_ms_decollate_on']:>10.1f} {100 * r['decollate_fraction_of_iteration']:>13.2f}% "
              f"{100 * r['measured_difference']:>7.1f}%")
    results = {"machine": machine_info(), "rows": rows, "targets": {"decollate_fraction_of_iteration_max": 0.01}}
    print(f"wrote {write_results(args.out, results)}")


if __name__ == "__main__":
    main()
