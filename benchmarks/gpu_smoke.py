"""GPU smoke benchmark (issue 21): training iterations/s and peak device memory of every bundle, with AMP.

For each bundle (and the variants that use another trainer) the network, optimiser(s) and trainer are built
from the bundle's own ``configs/train.json`` (+ variant) with ``monai.bundle.ConfigParser``, exactly as
``python -m monai.bundle run training`` builds them, so this script cannot drift from the bundles: the same
``device``/``amp``/``pin_memory``/``channels_last`` options, the same AMP regions and float32 losses. Only the
handlers (checkpoints, validation, logging) are dropped and the data loader is replaced by one synthetic
batch of the bundle's input shape, repeated (pinned on CUDA). Each case runs ``--warmup`` + ``--iterations``
iterations through the trainer and reports:

* ``iterations_per_s`` over the timed iterations (CUDA synchronised at both ends);
* ``peak_memory_mib``: ``torch.cuda.max_memory_allocated`` over the timed iterations on CUDA, the process's
  peak RSS while the case ran on CPU (``peak_memory_kind`` says which);
* ``amp`` (on/off as the bundle resolved it), ``autocast_dtype``, ``channels_last``, ``pin_memory``, the
  batch size and the last loss;
* ``error`` for a case that failed; the others still run, and the script exits with status 1.

``--tiny`` shrinks every network and batch and runs a handful of iterations: CI runs it on CPU (with
``--amp true``, so the bfloat16 autocast path runs too) so that the script cannot rot. On a GPU run it with
the defaults (the bundles' own sizes, a few hundred iterations)::

    python benchmarks/gpu_smoke.py                       # device auto: CUDA when there is one
    python benchmarks/gpu_smoke.py --device cuda --channels_last false   # the NCHW comparison
    python benchmarks/gpu_smoke.py --tiny --device cpu --amp true --threads 1 --out /tmp/gpu_smoke.json  # CI
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, peak_rss_mib, reset_peak_rss, write_results  # noqa: E402
from ignite.engine import Events  # noqa: E402
from monai.bundle import ConfigParser  # noqa: E402

from monai_genvq.utils import resolve_device  # noqa: E402

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


@dataclass
class Case:
    """One training setup of a bundle: its config stack, the trainer id, a synthetic batch, size overrides."""

    name: str
    bundle: str
    configs: tuple[str, ...]
    batch: Callable[[ConfigParser], dict[str, torch.Tensor]]
    trainer_id: str = "train#trainer"
    overrides: dict[str, Any] = field(default_factory=dict)  # always (what a benchmark run cannot have)
    tiny: dict[str, Any] = field(default_factory=dict)  # --tiny only


def _int(parser: ConfigParser, key: str) -> int:
    return int(parser.get_parsed_content(key))


def _images_2d(parser: ConfigParser) -> dict[str, torch.Tensor]:
    size = parser.get_parsed_content("image_size")
    size = [int(size)] * 2 if isinstance(size, (int, float)) else [int(s) for s in size]
    return {"image": torch.rand(_int(parser, "batch_size"), 1, *size)}


def _cardiac(parser: ConfigParser) -> dict[str, torch.Tensor]:
    batch = _images_2d(parser)
    batch["attributes"] = torch.randn(batch["image"].shape[0], len(parser.get_parsed_content("attribute_names")))
    return batch


def _streamlines(parser: ConfigParser) -> dict[str, torch.Tensor]:
    shape = (_int(parser, "batch_size"), 3, _int(parser, "group_size"), _int(parser, "n_points"))
    return {"bundle": torch.rand(shape) * 2 - 1}


def _labels(parser: ConfigParser) -> dict[str, torch.Tensor]:
    size, dims = _int(parser, "image_size"), _int(parser, "prior_def#spatial_dims")
    return {"label": torch.randint(0, _int(parser, "num_labels"), (_int(parser, "batch_size"), 1, *[size] * dims))}


def _triplets(parser: ConfigParser) -> dict[str, torch.Tensor]:
    n = _int(parser, "triplets_per_volume") * _int(parser, "volumes_per_batch")
    channels, patch = _int(parser, "network_def#in_channels"), _int(parser, "patch_size")
    return {k: torch.rand(n, channels, patch, patch, patch) for k in ("parent", "child", "negative")}


_VQ_TINY = {"image_size": [16, 16], "channels": [8, 16], "latent_channels": 8, "num_res_blocks": 1, "batch_size": 2}
_HYPERBOLIC_TINY = {"channels": [4, 4, 4, 4], "gyro_channels": 2, "triplets_per_volume": 2, "volumes_per_batch": 1}
_PRIOR_TINY = {"image_size": 16, "channels": [4, 8], "latent_dim": 2, "batch_size": 2}
CASES = [
    Case("vq_quantizers", "vq_quantizers", ("train.json",), _images_2d, tiny={**_VQ_TINY, "num_embeddings": 16}),
    Case(
        "vq_quantizers/prior",
        "vq_quantizers",
        ("train.json", "prior.json"),
        _images_2d,
        trainer_id="prior_train#trainer",
        overrides={"stage1_checkpoint": None, "prior_train#handlers": []},
        tiny={**_VQ_TINY, "num_embeddings": 16, "prior_def#channels": 8, "prior_def#num_layers": 2},
    ),
    Case(
        "streamlines_vqdiff",
        "streamlines_vqdiff",
        ("train.json",),
        _streamlines,
        tiny={
            "n_points": 16,
            "group_size": 16,
            "latent_channels": 8,
            "num_embeddings": 16,
            "network_def#channels": [8, 16],
            "batch_size": 2,
        },
    ),
    Case(
        "cardiac_attri_sivae",
        "cardiac_attri_sivae",
        ("train.json",),
        _cardiac,
        tiny={"image_size": 32, "channels": [8, 16], "latent_dim": 8, "batch_size": 2},
    ),
    Case(
        "cardiac_attri_sivae/attri_vae",
        "cardiac_attri_sivae",
        ("train.json", "attri_vae.json"),
        _cardiac,
        tiny={
            "image_size": 32,
            "network_def#channels": [8, 8],
            "network_def#hidden": 16,
            "latent_dim": 8,
            "batch_size": 2,
        },
    ),
    *[
        Case(b, b, ("train.json",), _triplets, tiny=_HYPERBOLIC_TINY)
        for b in ("hyperbolic_toy_seg", "hyperbolic_brats_seg", "hyperbolic_cryoet_seg")
    ],
    Case(
        "anatomical_prior_seg",
        "anatomical_prior_seg",
        ("train.json",),
        _labels,
        overrides={"location_prior": None},
        tiny=_PRIOR_TINY,
    ),
    Case(
        "anatomical_prior_seg/image",
        "anatomical_prior_seg",
        ("train.json", "train_image.json"),
        lambda p: {"image": torch.rand(_int(p, "batch_size"), 1, *[_int(p, "image_size")] * 2)},
        overrides={"prior": "@prior_def"},  # an untrained prior: the step costs the same
        tiny={**_PRIOR_TINY, "pretrain_iterations": 1},
    ),
]


class RepeatLoader:
    """The same batch ``length`` times (a stand-in for the bundle's DataLoader: no data loading is timed)."""

    def __init__(self, batch: dict[str, torch.Tensor], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return (self.batch for _ in range(self.length))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _last_loss(output: Any) -> float | None:
    item = output[0] if isinstance(output, list) and output else output
    loss = item.get("loss") if isinstance(item, dict) else None
    return None if loss is None else float(loss)


def run_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Build ``case`` from its bundle's configs and time its training iterations; returns the result row."""
    t_build = time.perf_counter()
    parser = ConfigParser()
    parser.read_config([str(BUNDLES / case.bundle / "configs" / c) for c in case.configs])
    parser["bundle_root"] = str(BUNDLES / case.bundle)
    for key, value in {**case.overrides, **(case.tiny if args.tiny else {})}.items():
        parser[key] = value
    options = {"device": args.device, "amp": args.amp, "max_epochs": 1, "prior_max_epochs": 1, "epoch_length": None}
    if "channels_last" in parser:  # the 2-D bundles
        options["channels_last"] = args.channels_last
    parser.update(options)
    parser["train#handlers"] = []
    device = resolve_device(parser.get_parsed_content("device"))
    runtime = parser.get_parsed_content("runtime")
    batch = case.batch(parser)
    if runtime.get("pin_memory"):
        batch = {k: v.pin_memory() for k, v in batch.items()}
    total = args.warmup + args.iterations
    parser["train#dataloader"] = RepeatLoader(batch, total)
    trainer = parser.get_parsed_content(case.trainer_id)
    build_seconds = time.perf_counter() - t_build

    timing: dict[str, float] = {}

    def start_clock(engine: Any) -> None:
        if engine.state.iteration == args.warmup:
            _sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            timing["t0"] = time.perf_counter()

    def stop_clock(engine: Any) -> None:
        _sync(device)
        timing["t1"] = time.perf_counter()

    trainer.add_event_handler(Events.ITERATION_COMPLETED, start_clock)
    trainer.add_event_handler(Events.COMPLETED, stop_clock)
    if args.warmup == 0:
        trainer.add_event_handler(Events.STARTED, lambda e: timing.update(t0=time.perf_counter()))
    trainer.run()
    seconds = timing["t1"] - timing["t0"]
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_memory_allocated"
    else:
        peak, kind = peak_rss_mib(), "process_peak_rss"
    amp = bool(trainer.amp)
    return {
        "case": case.name,
        "bundle": case.bundle,
        "configs": list(case.configs),
        "trainer": type(trainer).__name__,
        "device": str(device),
        "amp": amp,
        "autocast_dtype": str(torch.get_autocast_dtype(device.type)).replace("torch.", "") if amp else None,
        "channels_last": bool(runtime.get("channels_last", False)),
        "pin_memory": bool(runtime.get("pin_memory", False)),
        "batch": {k: list(v.shape) for k, v in batch.items()},
        "build_seconds": build_seconds,
        "iterations": args.iterations,
        "seconds": seconds,
        "iterations_per_s": args.iterations / seconds if seconds > 0 else math.inf,
        "peak_memory_mib": peak,
        "peak_memory_kind": kind,
        "loss": _last_loss(trainer.state.output),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N")
    ap.add_argument("--amp", default="auto", help="auto (the bundles' default: on CUDA), true or false")
    ap.add_argument("--channels_last", default="auto", help="auto (on CUDA), true or false (2-D bundles)")
    ap.add_argument("--iterations", type=int, default=None, help="timed iterations (default 300; 3 with --tiny)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed iterations first (default 20; 1 with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="tiny networks and batches (the CI check on CPU)")
    ap.add_argument("--cases", nargs="*", default=None, help=f"a subset of: {' '.join(c.name for c in CASES)}")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", default="benchmarks/results/gpu_smoke.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.iterations = args.iterations if args.iterations is not None else (3 if args.tiny else 300)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 20)
    try:
        device = resolve_device(args.device)
    except ValueError as e:  # e.g. --device cuda on a machine without a GPU
        ap.error(str(e))
    cases = [c for c in CASES if args.cases is None or c.name in args.cases]
    unknown = set(args.cases or []) - {c.name for c in CASES}
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}")
    if device.type != "cuda":
        print(f"gpu_smoke: no GPU used (device {device}; torch.cuda.is_available() = {torch.cuda.is_available()})")
    rows, failed = [], []
    for case in cases:
        reset_peak_rss()
        try:
            row = run_case(case, args)
        except Exception as e:  # one broken bundle must not hide the others' numbers
            traceback.print_exc()
            row = {"case": case.name, "bundle": case.bundle, "error": f"{type(e).__name__}: {e}"}
            failed.append(case.name)
        rows.append(row)
        if "error" in row:
            print(f"{case.name:32s} FAILED {row['error']}")
        else:
            print(
                f"{case.name:32s} {row['iterations_per_s']:9.2f} it/s  peak {row['peak_memory_mib']:9.1f} MiB  "
                f"amp={'on (' + row['autocast_dtype'] + ')' if row['amp'] else 'off'}  "
                f"channels_last={row['channels_last']}  loss={row['loss']}"
            )
        if device.type == "cuda":
            torch.cuda.empty_cache()
    results = {
        "benchmark": "gpu_smoke",
        "machine": machine_info(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "tiny": args.tiny,
        "options": {"amp": args.amp, "channels_last": args.channels_last},
        "warmup": args.warmup,
        "iterations": args.iterations,
        "cases": rows,
        "failed": failed,
    }
    print(f"wrote {write_results(args.out, results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
