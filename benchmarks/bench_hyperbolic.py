"""Hyperbolic VAE speed and memory: whole-volume embedding, Poincaré k-means, training step.

Targets (issue 5), on the 2-core CPU: a whole 64³ volume embedded in ≤ 10 s; Poincaré k-means
(Fréchet means, k = 8) on 125,000 points in ≤ 5 s; training-step time and peak memory at a batch
of 128 triplets (384 patches of 10³) are reported, and so is the data side of a step: 32 triplets
sampled inside a brain mask from a volume of the BraTS bundle's size at zoom 3 (288 × 288 × 192).
The network and trainer are the toy bundle's (``HyperbolicVAE()`` and the trainer's defaults are its
settings). The k-means points are real embeddings: the 64³ volume's voxels (262,144) subsampled to
125,000; Euclidean k-means is scikit-learn's. Volume I/O: a 256 × 256 × 128 float32 tomogram (32 MiB)
read as MRC with ``LoadImage`` + ``MRCReader`` (memory-mapped) and written back with ``SaveImage`` +
``MRCWriter``.

    python benchmarks/bench_hyperbolic.py [--threads 1] [--out benchmarks/results/hyperbolic.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from monai.transforms import LoadImage, SaveImage

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, peak_rss_mib, reset_peak_rss, time_call, write_results  # noqa: E402

from monai_genvq.apps.hyperbolic import (  # noqa: E402
    HyperbolicVAE,  # noqa: E402
    HyperbolicVAETrainer,  # noqa: E402
    TripletPatchSamplerd,  # noqa: E402
    euclidean_kmeans,
    poincare_kmeans,
)
from monai_genvq.apps.hyperbolic.synthetic_toy import generate_hierarchy_volume  # noqa: E402
from monai_genvq.data import MRCReader, MRCWriter, write_mrc  # noqa: E402

EMBED_TARGET_S = 10.0
KMEANS_TARGET_S = 5.0
REPO = Path(__file__).resolve().parents[1]


def toy_network() -> HyperbolicVAE:
    """The toy bundle's network: its settings are the defaults (checked by tests/test_hyperbolic_math.py)."""
    return HyperbolicVAE()


def volume_io_seconds(repeats: int) -> tuple[float, float]:
    """Median seconds to read a 256 × 256 × 128 float32 MRC with LoadImage + MRCReader, and to write it back."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_mrc(Path(tmp) / "tomo.mrc", np.random.default_rng(0).random((128, 256, 256), np.float32), 10.0)
        load = LoadImage(reader=MRCReader(), ensure_channel_first=True)
        read_s = time_call(lambda: load(path), repeats)
        img = load(path)
        save = SaveImage(output_ext=".mrc", writer=MRCWriter, separate_folder=False, print_log=False)
        write_s = time_call(lambda: save(img, filename=str(Path(tmp) / "out")), repeats)
    return read_s, write_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--threads", type=int, default=1, help="1 by default: stable when other processes share the CPU"
    )
    parser.add_argument("--batch", type=int, default=128, help="triplets per training step")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/hyperbolic.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = toy_network().eval()
    img, _ = generate_hierarchy_volume(np.random.default_rng(0), size=64)
    vol = torch.from_numpy(img)[None]
    embed_s = time_call(lambda: net.embed_volume(vol), args.repeats)
    # the toy bundle's evaluation cost: a 50³ volume embedded at its default zoom 3 (a 150³ pass)
    toy = torch.from_numpy(generate_hierarchy_volume(np.random.default_rng(1), size=50)[0])[None]
    embed_toy_s = time_call(lambda: net.embed_volume(toy, zoom=3.0), 1, warmup=0)
    emb = net.embed_volume(vol).reshape(net.latent_dim, -1).T
    pts = emb[torch.randperm(emb.shape[0], generator=torch.Generator().manual_seed(0))[:125_000]]
    km_res = {}
    km_s = time_call(lambda: km_res.setdefault("r", poincare_kmeans(pts, 8, c=net.curvature, seed=0)), args.repeats)
    ekm_s = time_call(lambda: euclidean_kmeans(pts, 8, seed=0), args.repeats)

    head = torch.zeros(1, 288, 288, 192)
    head[:, 24:-24, 24:-24, 16:-16] = torch.rand(1, 240, 240, 160)
    sampler = TripletPatchSamplerd(
        "image",
        num_samples=32,
        patch_size=10,
        parent_size=(14, 40),
        mask_fn=lambda v: (v != 0).any(0),
        sampling="ours",  # the BraTS bundle's sampler (train.json triplet_sampling)
    ).set_random_state(0)
    sample_s = time_call(lambda: sampler({"image": head}), args.repeats)
    mrc_read_s, mrc_write_s = volume_io_seconds(args.repeats)

    net.train()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    batch = {k: torch.rand(args.batch, 1, 10, 10, 10) for k in ("parent", "child", "negative")}
    trainer = HyperbolicVAETrainer(torch.device("cpu"), 1, [batch], net, opt)
    trainer.run()  # warm-up; also sets up the engine state that _iteration uses
    reset_peak_rss()
    step_s = time_call(lambda: trainer._iteration(trainer, batch), args.repeats, warmup=0)  # one real optimisation step
    step_mem = peak_rss_mib()

    results = {
        "machine": machine_info(),
        "network": {
            "latent_dim": net.latent_dim,
            "decoder_head": net.decoder_head,
            "distribution": net.distribution,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "embed_64cubed_s": embed_s,
        "embed_target_s": EMBED_TARGET_S,
        "embed_met": embed_s <= EMBED_TARGET_S,
        "embed_toy50_zoom3_s": embed_toy_s,
        "poincare_kmeans_125k_k8_s": km_s,
        "poincare_kmeans_iterations": km_res["r"].iterations,
        "euclidean_kmeans_125k_k8_s": ekm_s,
        "kmeans_target_s": KMEANS_TARGET_S,
        "kmeans_met": km_s <= KMEANS_TARGET_S,
        "triplets32_masked_288x288x192_s": sample_s,
        "mrc_read_256x256x128_s": mrc_read_s,
        "mrc_write_256x256x128_s": mrc_write_s,
        "train_step_batch": args.batch,
        "train_step_patches": 3 * args.batch,
        "train_step_s": step_s,
        "train_step_peak_rss_mib": step_mem,
    }
    print(json.dumps(results, indent=2))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
