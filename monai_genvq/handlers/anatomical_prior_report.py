"""Evaluation of the anatomical-prior segmentation: per-label Dice of the model beside k-means and a supervised UNet.

Writes ``<output_dir>/metrics.json`` and ``<output_dir>/results.md`` (Markdown table).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from monai_genvq.metrics.segmentation import kmeans_segmentation, per_label_dice, summarize_dice
from monai_genvq.reporting import atomic_write_text, format_mean_std, markdown_table, write_json

__all__ = ["evaluate_anatomical_prior", "load_module_checkpoint", "train_supervised_unet"]

logger = logging.getLogger(__name__)


def load_module_checkpoint(module: nn.Module, path: str | os.PathLike, key: str = "model") -> nn.Module:
    """Load a checkpoint written by MONAI's ``CheckpointSaver`` (``{key: state}`` or the bare state dict) into ``module``.

    Raises:
        FileNotFoundError: no file at ``path`` (the message says which stage writes it).
        ValueError: the file is not a checkpoint of this module (names the missing / unexpected keys).

    Example:
        >>> prior = load_module_checkpoint(LabelPriorVAE(), "outputs/default/prior/models/model.pt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist; run the previous training stage first (or set its path)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint '{path}' cannot be read ({type(e).__name__}: {e})") from None
    if isinstance(state, dict) and key in state and isinstance(state[key], dict):
        state = state[key]
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # size mismatches
        raise ValueError(
            f"checkpoint '{path}' does not fit {type(module).__name__} (same channels / latent_dim / image_size "
            f"as at training?): {str(e).splitlines()[-1].strip()}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"checkpoint '{path}' does not fit {type(module).__name__}: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]} (same channels / latent_dim / image_size as at training?)"
        )
    return module


def _stack(dataset: Any, key: str) -> torch.Tensor:
    return torch.stack([torch.as_tensor(item[key]) for item in dataset])


def train_supervised_unet(
    dataset: Any, num_labels: int, iterations: int = 300, batch_size: int = 16, lr: float = 1e-3,
    channels: Sequence[int] = (16, 32, 64), device: str | torch.device = "cpu", seed: int = 0,
) -> nn.Module:
    """Upper bound: a small MONAI ``UNet`` trained with Dice + cross-entropy on paired (image, label) slices.

    The paired data are the *prior* subjects (never the stage-2 image subjects or the test set).
    """
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    x, y = _stack(dataset, "image").float(), _stack(dataset, "label").long()
    y = y if y.ndim == x.ndim else y[:, None]
    spatial_dims = x.ndim - 2
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = UNet(spatial_dims, x.shape[1], num_labels, channels=tuple(channels), strides=(2,) * (len(channels) - 1), num_res_units=1).to(device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr)
    net.train()
    for it in range(int(iterations)):
        idx = torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), generator=g)
        opt.zero_grad()
        loss = loss_fn(net(x[idx].to(device)), y[idx].to(device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"supervised UNet baseline: non-finite loss at iteration {it}")
        loss.backward()
        opt.step()
    return net.eval()


def evaluate_anatomical_prior(
    network: nn.Module,
    test_dataset: Any,
    output_dir: str | os.PathLike,
    label_names: Sequence[str] = ("LV", "MYO", "RV"),
    supervised_dataset: Any | None = None,
    unet_iterations: int = 300,
    unet_channels: Sequence[int] = (16, 32, 64),
    device: str | torch.device = "cpu",
    seed: int = 0,
    dataset_name: str = "",
) -> dict[str, Any]:
    """Per-label Dice on ``test_dataset`` of the unsupervised model, intensity k-means and a supervised UNet.

    Args:
        network: a trained :class:`~monai_genvq.networks.ImageSegmentationVAE` (``segment(x)``).
        test_dataset: items with ``image`` (C, *S) and ``label`` (1, *S) in the declared label set.
        output_dir: receives ``metrics.json`` and ``results.md``.
        label_names: names of labels 1..L-1.
        supervised_dataset: paired items for the UNet upper bound (None or ``unet_iterations=0`` skips it).
        unet_iterations, unet_channels: UNet training length and width.
        device: device.
        seed: seed of k-means and the UNet.
        dataset_name: written into the report.

    Returns:
        The metrics dict that was written.
    """
    num_labels = len(label_names) + 1
    x, y = _stack(test_dataset, "image").float(), _stack(test_dataset, "label").long()
    y = y[:, 0] if y.ndim == x.ndim else y
    network = network.to(device).eval()
    with torch.no_grad():
        pred = torch.cat([network.segment(x[i : i + 32].to(device)).cpu() for i in range(0, x.shape[0], 32)])
        atlas = network.decode(torch.zeros(1, network.latent_dim, device=device)).argmax(1).cpu().expand_as(y)
    methods = {"anatomical prior VAE (unsupervised)": per_label_dice(pred, y, num_labels)}
    methods["prior mean shape, z = 0 (ignores the image)"] = per_label_dice(atlas, y, num_labels)
    methods["intensity k-means (lower bound)"] = per_label_dice(
        torch.as_tensor(kmeans_segmentation(x, y, num_labels, seed=seed)), y, num_labels
    )
    if supervised_dataset is not None and unet_iterations > 0:
        unet = train_supervised_unet(supervised_dataset, num_labels, unet_iterations, channels=unet_channels, device=device, seed=seed)
        with torch.no_grad():
            sup = torch.cat([unet(x[i : i + 32].to(device)).argmax(1).cpu() for i in range(0, x.shape[0], 32)])
        methods["supervised UNet (upper bound)"] = per_label_dice(sup, y, num_labels)
    results = {name: summarize_dice(d, label_names) for name, d in methods.items()}
    metrics = {
        "dataset": dataset_name,
        "n_test_images": int(x.shape[0]),
        "label_names": list(label_names),
        "dice": results,
        "notes": "Dice per foreground label, mean ± std over test slices; k-means clusters are matched to labels "
        "per image with the Hungarian algorithm on the ground truth (optimistic for k-means); the prior mean "
        "shape is the frozen decoder at z = 0 for every image (what the location prior and prior alone give).",
    }
    out = Path(output_dir)
    write_json(out / "metrics.json", metrics)
    header = ["method", *label_names, "mean"]
    rows = [[name] + [format_mean_std(r[k]) for k in (*label_names, "mean")] for name, r in results.items()]
    table = markdown_table(header, rows)
    atomic_write_text(out / "results.md", f"# Anatomical-prior segmentation: Dice on {dataset_name or 'test'} ({x.shape[0]} slices)\n\n{table}\n")
    logger.info("anatomical prior evaluation:\n%s", table)
    print(table)
    return metrics
