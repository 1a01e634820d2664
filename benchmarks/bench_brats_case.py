"""Hyperbolic segmentation at BraTS scale: one 240 × 240 × 155 four-modality case, as the bundle runs it (issue 21).

Target: load + embed (whole volume) + cluster + write the segmentation in ≤ 30 s per case on the 2-core CPU.

* The case: written in the BraTS 2021 layout (FLAIR, T1, T1ce, T2 and seg as ``.nii.gz``, 1 mm) by the
  package's synthetic BraTS writer; its generation is timed apart (not part of the target).
* The case run: ``bundles/hyperbolic_brats_seg/configs/inference.json`` as shipped (its ``network_def``, the
  FLAIR channel, percentile normalisation, 4 clusters of Poincaré k-means inside the brain, the segmentation
  and the per-voxel embedding written as NIfTI, figures) through ``HyperbolicSegmentation.run()``; the
  network is untrained (no weights ship), which does not change the embedding's cost; k-means iterations
  depend on the embedding. Stages are timed inside that one run: load, embed, cluster, write segmentation,
  write embedding (``write_embeddings`` is on in inference.json), other (figures, metrics). Peak RSS of the
  run. ``--four-modalities`` adds the same run with the four modalities as channels (``--modalities`` of
  the bundle).
* Convolution backend of the embedding: self CPU time (torch.profiler) of ``aten::slow_conv3d_forward``,
  ``aten::mkldnn_convolution`` (oneDNN), the ELUs and the rest, for the case's FLAIR volume, before (the
  previous code path, reproduced here: contiguous slabs along the first axis, 1×1×1 heads as convolutions,
  out-of-place ELU) and after; and the same at ``bench_hyperbolic.py``'s setting (64³, one thread).
* Scaling (1x, 4x, 16x the work): embed + cluster of centred crops holding 1/16, 1/4 and all of the case's
  voxels (60 × 60 × 155, 120 × 120 × 155, 240 × 240 × 155).
* Data side of training: ``TripletPatchSamplerd`` with train.json's settings (32 triplets per volume, parent
  14–40, patch 10, brain mask) on the loaded case, triplets/s, beside the training step's triplets/s at the
  bundle's batch (1 volume × 32 triplets = 96 patches of 10³; the trainer as train.json builds it).
* ``torch.compile`` of the train step (the trainer's ``compile`` option): step time with and without, the
  first compiled step (compilation, with an empty Inductor cache as on a first run) apart; a failure is
  caught and recorded (``--skip-compile`` skips it).

    python benchmarks/bench_brats_case.py [--threads N] [--skip-compile] [--four-modalities]
        [--out benchmarks/results/brats_case.json]

About 3.5 minutes on the 2-core CPU, 2 of them compiling (``--skip-compile``: under 2 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, peak_rss_mib, reset_peak_rss, time_call, write_results  # noqa: E402

import monai_genvq.apps.hyperbolic.segmentation as segmentation  # noqa: E402
from monai_genvq.apps.hyperbolic import HyperbolicVAE, HyperbolicVAETrainer, generate_synthetic_brats  # noqa: E402
from monai_genvq.apps.hyperbolic.manifold import bound_tangent0, expmap0  # noqa: E402
from monai_genvq.apps.hyperbolic.vae import patch_offsets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "hyperbolic_brats_seg" / "configs"
CASE_SHAPE = (240, 240, 155)
MODALITIES = ("flair", "t1", "t1ce", "t2")
TARGET_S = 30.0
N_CLUSTERS = 4  # inference.json's n_clusters
CROPS = {"1x": (60, 60, 155), "4x": (120, 120, 155), "16x": CASE_SHAPE}


def write_case(root: Path) -> tuple[dict[str, str], float]:
    """One synthetic case in the BraTS 2021 layout at the real size; returns its files and the seconds it took."""
    t0 = time.perf_counter()
    generate_synthetic_brats(root, n_cases=1, shape=CASE_SHAPE, spacing=1.0, layout="2021", seed=0)
    case = next(root.iterdir())
    files = {m: str(case / f"{case.name}_{m}.nii.gz") for m in (*MODALITIES, "seg")}
    return files, time.perf_counter() - t0


def inference_config(bundle_root: Path, image: str | list[str], modalities: list[str]) -> ConfigParser:
    """The bundle's inference.json with only the input, output folder and modalities overridden."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser["bundle_root"] = str(bundle_root)
    parser["modalities"] = modalities
    parser["input_records"] = [{"image": image, "name": "case"}]
    parser["checkpoint"] = None
    return parser


@contextlib.contextmanager
def timed_stages(seg: segmentation.HyperbolicSegmentation, times: dict[str, float]) -> Iterator[None]:
    """Accumulate the seconds of ``seg``'s load / embed / segment and of each file write into ``times``."""

    def wrap(fn: Callable[..., Any], stage: Callable[..., str]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                key = stage(*args, **kwargs)
                times[key] = times.get(key, 0.0) + time.perf_counter() - t0

        return timed

    save = segmentation._save_like
    seg.load = wrap(seg.load, lambda *a, **k: "load")
    seg.embed = wrap(seg.embed, lambda *a, **k: "embed")
    seg.segment = wrap(seg.segment, lambda *a, **k: "cluster")
    segmentation._save_like = wrap(
        save, lambda data, ref, path, *a, **k: "write_embedding" if "embeddings" in str(path) else "write_segmentation"
    )
    try:
        yield
    finally:
        segmentation._save_like = save
        for name in ("load", "embed", "segment"):
            delattr(seg, name)


def run_case(bundle_root: Path, image: str | list[str], modalities: list[str]) -> dict[str, Any]:
    """The bundle's inference on the case, end to end, with its stages timed inside the run."""
    parser = inference_config(bundle_root, image, modalities)
    torch.manual_seed(0)
    seg = parser.get_parsed_content("inference")
    times: dict[str, float] = {}
    reset_peak_rss()
    t0 = time.perf_counter()
    with timed_stages(seg, times):
        seg.run()
    total = time.perf_counter() - t0
    target_stages = ("load", "embed", "cluster", "write_segmentation")
    return {
        "modalities": modalities,
        "stages_s": {k: round(v, 3) for k, v in times.items()},
        "other_s (figures, metrics)": round(total - sum(times.values()), 3),
        "load_embed_cluster_write_s": round(sum(times.get(k, 0.0) for k in target_stages), 3),
        "total_run_s": round(total, 3),
        "target_s": TARGET_S,
        "met (load+embed+cluster+write segmentation)": sum(times.get(k, 0.0) for k in target_stages) <= TARGET_S,
        "met (whole run)": total <= TARGET_S,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "network": parser.get_parsed_content("network"),
        "segmentation": seg,
    }


@torch.no_grad()
def embed_before(net: HyperbolicVAE, volume: torch.Tensor, slab: int = 16) -> torch.Tensor:
    """The embedding as computed before issue 21: contiguous slabs along the first axis, 1×1×1 convolutions."""
    v = volume[None].float()
    lo, hi = patch_offsets(net.patch_size)
    padded = F.pad(v, (lo, hi, lo, hi, lo, hi), mode="replicate")
    outs = []
    for s in range(0, v.shape[2], slab):
        h = padded[:, :, s : min(s + slab, v.shape[2]) + net.patch_size - 1]
        for layer in net.encoder:
            h = F.elu(h) if isinstance(layer, torch.nn.ELU) else layer(h)
        mu_t = net.to_mu(h).movedim(1, -1)
        F.softplus(net.to_sigma(h).movedim(1, -1))  # the posterior scales were computed too, then dropped
        mu_t = bound_tangent0(mu_t, net.max_radius) if net.max_radius is not None else mu_t
        outs.append(expmap0(mu_t, net._k(mu_t)).movedim(-1, 1))
    return torch.cat(outs, dim=2)[0]


def conv_backends(fn: Callable[[], Any]) -> dict[str, float]:
    """Wall seconds of ``fn()`` and the self CPU seconds of each convolution backend in it (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    totals = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    everything = sum(totals.values()) or 1.0
    groups = {
        "slow_conv3d_forward": totals.get("aten::slow_conv3d_forward", 0.0),
        "mkldnn_convolution": totals.get("aten::mkldnn_convolution", 0.0),
        "elu": totals.get("aten::elu", 0.0) + totals.get("aten::elu_", 0.0),
    }
    groups["other"] = everything - sum(groups.values())
    out = {"wall_s": round(wall, 3), "profiled_cpu_s": round(everything, 3)}
    for key, value in groups.items():
        out[f"{key}_s"], out[f"{key}_share"] = round(value, 3), round(value / everything, 3)
    return out


def small_volume_backends(net: HyperbolicVAE) -> dict[str, Any]:
    """The same before/after profile at bench_hyperbolic.py's setting: a 64³ volume on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        vol = torch.rand(1, 64, 64, 64)
        embed_before(net, vol), net.embed_volume(vol)  # warm-up
        return {
            "before": conv_backends(lambda: embed_before(net, vol)),
            "after": conv_backends(lambda: net.embed_volume(vol)),
        }
    finally:
        torch.set_num_threads(threads)


def scaling(
    seg: segmentation.HyperbolicSegmentation, volume: np.ndarray, full: dict[str, float], n_clusters: int
) -> dict[str, Any]:
    """Embed + cluster of centred crops with 1/16, 1/4 and all of the voxels (the last from the case run)."""
    rows = {}
    for name, shape in CROPS.items():
        starts = [(s - c) // 2 for s, c in zip(volume.shape[1:], shape)]
        crop = np.ascontiguousarray(
            volume[:, starts[0] :, starts[1] :, starts[2] :][:, : shape[0], : shape[1], : shape[2]]
        )
        if shape == CASE_SHAPE:
            embed_s, cluster_s = full["embed"], full["cluster"]
        else:
            t0 = time.perf_counter()
            emb = seg.embed(crop)
            embed_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            seg.segment(crop, n_clusters, emb)
            cluster_s = time.perf_counter() - t0
        voxels = int(np.prod(shape))
        rows[name] = {
            "shape": list(shape),
            "voxels": voxels,
            "brain_voxels": int((crop != 0).any(0).sum()),
            "embed_s": round(embed_s, 3),
            "cluster_s": round(cluster_s, 3),
            "embed_s_per_mvoxel": round(embed_s / voxels * 1e6, 3),
        }
    return rows


def train_side(files: dict[str, str], steps: int, compile_step: bool) -> dict[str, Any]:
    """Triplets/s of the bundle's sampler on the case vs of its train step at the bundle's batch; compile on/off."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser["bundle_root"] = tempfile.mkdtemp()
    preprocessing = parser.get_parsed_content("train#preprocessing")
    *prepare, sampler = preprocessing.transforms
    data = {"image": [files["flair"]]}
    for t in prepare:
        data = t(data)
    sampler.set_random_state(0)
    per_volume = int(parser.get_parsed_content("triplets_per_volume"))
    batch_triplets = per_volume * int(parser.get_parsed_content("volumes_per_batch"))
    items: list = []
    sample_s = time_call(lambda: items.__setitem__(slice(None), sampler(data)), 3)
    batch = {k: torch.stack([it[k] for it in items]) for k in ("parent", "child", "negative")}

    def trainer(compile_on: bool) -> tuple[HyperbolicVAETrainer, float]:
        """The bundle's network and trainer settings on this batch, after one real step (returns its seconds)."""
        torch.manual_seed(0)
        net = parser.get_parsed_content("network_def", lazy=False)
        opt = torch.optim.Adam(net.parameters(), float(parser.get_parsed_content("learning_rate")))
        kw = {k: parser.get_parsed_content(k) for k in ("kl_weight", "triplet_weight", "margin", "likelihood_scale")}
        tr = HyperbolicVAETrainer(torch.device("cpu"), 1, [batch], net, opt, compile=compile_on, **kw)
        t0 = time.perf_counter()
        tr.run()  # one step; sets up the engine state that _iteration uses (and compiles, when on)
        return tr, time.perf_counter() - t0

    eager, _ = trainer(False)
    step_s = time_call(lambda: eager._iteration(eager, batch), steps, warmup=0)
    out: dict[str, Any] = {
        "sampler": "TripletPatchSamplerd (train.json: patch 10, parent 14-40, brain mask, zoom 1)",
        "volume": list(data["image"].shape),
        "sampler_call_s (one volume, incl. its brain mask)": round(sample_s, 4),
        "sampler_triplets_per_s": round(per_volume / sample_s, 1),
        "train_step_batch_triplets": batch_triplets,
        "train_step_s": round(step_s, 4),
        "train_step_triplets_per_s": round(batch_triplets / step_s, 1),
        "sampler_over_step_throughput": round((per_volume / sample_s) / (batch_triplets / step_s), 2),
    }
    if compile_step:
        # after the eager steps: once compiled kernels have run, their OpenMP threads slow eager steps of the
        # same process; a fresh Inductor cache, so the compile time is a first run's (a warm cache cuts it)
        with warnings.catch_warnings(record=True) as caught, tempfile.TemporaryDirectory() as cache:
            warnings.simplefilter("always")
            previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            try:
                comp, first = trainer(True)
                comp_s = time_call(lambda: comp._iteration(comp, batch), steps)
            finally:
                if previous is None:
                    os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
                else:
                    os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous
        out["compile"] = {
            "compiled": comp.forward_network.compiled,
            "error": comp.forward_network.error,
            "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)][:3],
            "first_step_incl_compile_s (cold Inductor cache)": round(first, 2),
            "step_s": round(comp_s, 4),
            "speedup_vs_eager": round(step_s / comp_s, 3),
            "steps_to_repay_compile": round((first - comp_s) / (step_s - comp_s)) if step_s > comp_s else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, what a user gets)")
    parser.add_argument("--steps", type=int, default=3, help="timed train steps per setting (median)")
    parser.add_argument("--skip-compile", action="store_true", help="do not measure torch.compile (it takes minutes)")
    parser.add_argument("--four-modalities", action="store_true", help="also run with the four modalities as channels")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/brats_case.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"machine": machine_info()}
    with tempfile.TemporaryDirectory() as tmp:
        files, gen_s = write_case(Path(tmp) / "data")
        results["case"] = {"shape": list(CASE_SHAPE), "modalities": list(MODALITIES), "layout": "2021"}
        results["case"]["generate_s"] = round(gen_s, 2)
        default = run_case(Path(tmp) / "flair", files["flair"], ["flair"])
        seg, net = default.pop("segmentation"), default.pop("network")
        results["bundle_default_flair"] = default
        print(json.dumps(default, indent=2), flush=True)
        if args.four_modalities:
            four = run_case(Path(tmp) / "four", [files[m] for m in MODALITIES], list(MODALITIES))
            four.pop("segmentation"), four.pop("network")
            results["four_modalities"] = four
            print(json.dumps(four, indent=2), flush=True)

        volume = seg.load(files["flair"]).as_tensor()
        net.eval()
        before = conv_backends(lambda: embed_before(net, volume))
        after = conv_backends(lambda: net.embed_volume(volume))
        same = torch.allclose(
            embed_before(net, volume[:, :, :, :24]), net.embed_volume(volume[:, :, :, :24]), atol=1e-5
        )
        results["embed_conv_backends"] = {"before": before, "after": after, "embeddings_allclose_1e-5": same}
        results["embed_conv_backends_64cubed_1thread"] = small_volume_backends(net)
        print(json.dumps(results["embed_conv_backends"], indent=2), flush=True)
        results["scaling_embed_cluster"] = scaling(seg, volume.numpy(), default["stages_s"], N_CLUSTERS)
        print(json.dumps(results["scaling_embed_cluster"], indent=2), flush=True)
        results["training_data_side"] = train_side(files, args.steps, not args.skip_compile)
        print(json.dumps(results["training_data_side"], indent=2), flush=True)
    write_results(args.out, results)


if __name__ == "__main__":
    main()
