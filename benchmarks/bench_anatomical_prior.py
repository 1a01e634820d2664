"""Anatomical-prior VAE: training-iteration time and memory of stage 1 (label prior) and stage 2 (image model).

Measures one optimiser step (forward, loss, backward, step) through the real trainers' iteration
code on random inputs of the bundle's default size (batch 16, 64 x 64, 4 labels, latent 16,
channels 16/32/64), plus the 3-D configuration (batch 2, 32^3). Reports median seconds per
iteration, peak resident memory (CPU) or peak allocated GPU memory, parameter counts.

    python benchmarks/bench_anatomical_prior.py [--repeats 10] [--threads 1] [--out benchmarks/results/anatomical_prior.json]
"""

from __future__ import annotations

import argparse
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, peak_rss_mib, reset_peak_rss, time_call, write_results  # noqa: E402

from monai_genvq.apps.anatomical_prior import (  # noqa: E402  # noqa: E402
    ImageModelTrainer,
    ImageSegmentationVAE,
    LabelPriorTrainer,
    LabelPriorVAE,
    refine_latent,
)


def _memory(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else peak_rss_mib()


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak_rss()


def bench(spatial_dims: int, size: int, batch: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    shape = (size,) * spatial_dims
    prior = LabelPriorVAE(spatial_dims, 4, size, (16, 32, 64), 16).to(device)
    labels = {"label": torch.randint(0, 4, (batch, 1, *shape))}
    t1 = LabelPriorTrainer(device, 1, [labels], prior, torch.optim.Adam(prior.parameters(), 1e-3))
    t1.state.device = device
    step1 = lambda: t1._iteration(t1, labels)  # noqa: E731
    _reset(device)
    s1 = time_call(step1, repeats, warmup=2)
    m1 = _memory(device)

    net = ImageSegmentationVAE(prior).to(device)
    images = {"image": torch.rand(batch, 1, *shape)}
    t2 = ImageModelTrainer(
        device, 1, [images], net, torch.optim.Adam(net.trainable_parameters(), 1e-3), init_intensity=False
    )
    t2.state.device, t2.state.iteration = device, 10**6  # past pre-training: the Jensen-bound step
    step2 = lambda: t2._iteration(t2, images)  # noqa: E731
    _reset(device)
    s2 = time_call(step2, repeats, warmup=2)
    m2 = _memory(device)
    t2.state.iteration, t2.pretrain_iterations = 1, 10**6  # the pre-training step (renders from the prior)
    s2p = time_call(lambda: t2._iteration(t2, images), repeats, warmup=1)
    x = images["image"].to(device)
    with torch.no_grad():
        z0 = net.encode(x)[0]
    s_ref = time_call(lambda: refine_latent(net, x, z0, steps=50), max(1, repeats // 5), warmup=0)
    return {
        "spatial_dims": spatial_dims,
        "input": [batch, *shape],
        "prior_parameters": sum(p.numel() for p in prior.parameters()),
        "image_model_trainable_parameters": sum(p.numel() for p in net.trainable_parameters()),
        "stage1_prior_s_per_iter": s1,
        "stage1_peak_mib": m1,
        "stage2_image_s_per_iter": s2,
        "stage2_pretrain_s_per_iter": s2p,
        "stage2_peak_mib": m2,
        "map_refinement_50_steps_s_per_batch": s_ref,
        "memory_kind": "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS (VmHWM)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-3d", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/anatomical_prior.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    runs = [bench(2, 64, 16, args.repeats, device)]
    if not args.skip_3d:
        runs.append(bench(3, 32, 2, max(3, args.repeats // 3), device))
    results = {"benchmark": "anatomical_prior", "machine": machine_info(), "device": str(device), "runs": runs}
    for r in runs:
        print(
            f"{r['spatial_dims']}-D {r['input']}: stage 1 {1e3 * r['stage1_prior_s_per_iter']:.1f} ms/iter "
            f"(peak {r['stage1_peak_mib']:.0f} MiB), stage 2 {1e3 * r['stage2_image_s_per_iter']:.1f} ms/iter "
            f"(pre-training {1e3 * r['stage2_pretrain_s_per_iter']:.1f} ms; peak {r['stage2_peak_mib']:.0f} MiB), "
            f"MAP refinement 50 steps {r['map_refinement_50_steps_s_per_batch']:.2f} s/batch"
        )
    print("wrote", write_results(args.out, results))


if __name__ == "__main__":
    main()
