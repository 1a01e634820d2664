"""Per-label Dice (MONAI DiceMetric) and the intensity k-means baseline with Hungarian label matching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import DiceMetric

__all__ = ["hungarian_match", "kmeans_segmentation", "per_label_dice", "summarize_dice"]


def _onehot(lab: torch.Tensor, num_labels: int) -> torch.Tensor:
    lab = torch.as_tensor(lab).long()
    lab = lab[:, 0] if lab.ndim >= 3 and lab.shape[1] == 1 else lab
    return torch.nn.functional.one_hot(lab, num_labels).movedim(-1, 1).float()


def per_label_dice(pred: Any, target: Any, num_labels: int) -> torch.Tensor:
    """Dice of each foreground label per image: (B, num_labels - 1), via :class:`monai.metrics.DiceMetric`.

    Args:
        pred, target: integer label maps (B, *spatial) or (B, 1, *spatial).
        num_labels: L including background (label 0, excluded from the output).

    A label absent from both maps of an image scores NaN (``ignore_empty``), so means skip it.

    Example:
        >>> p = torch.tensor([[[0, 1], [1, 1]]]); t = torch.tensor([[[0, 1], [1, 0]]])
        >>> per_label_dice(p, t, 2)
        tensor([[0.8000]])
    """
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    return metric(_onehot(pred, num_labels), _onehot(target, num_labels))


def summarize_dice(dice: torch.Tensor, label_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{label: {"mean", "std", "n"}, "mean": {...}}`` over images (NaN entries skipped; "mean" = mean over labels per image)."""
    d = torch.as_tensor(dice, dtype=torch.float64)
    out = {}
    for j, name in enumerate(label_names):
        v = d[:, j][~torch.isnan(d[:, j])]
        out[name] = {"mean": float(v.mean()) if v.numel() else float("nan"), "std": float(v.std()) if v.numel() > 1 else 0.0, "n": int(v.numel())}
    per_image = torch.nanmean(d, dim=1)
    per_image = per_image[~torch.isnan(per_image)]
    out["mean"] = {"mean": float(per_image.mean()), "std": float(per_image.std()) if per_image.numel() > 1 else 0.0, "n": int(per_image.numel())}
    return out


def hungarian_match(clusters: np.ndarray, target: np.ndarray, num_labels: int) -> np.ndarray:
    """Relabel cluster ids to the labels they overlap most (one-to-one, Hungarian algorithm on the overlap).

    This uses the ground truth (an oracle matching), which makes the k-means baseline optimistic.

    Example:
        >>> hungarian_match(np.array([2, 2, 0, 1]), np.array([1, 1, 0, 2]), 3).tolist()
        [1, 1, 0, 2]
    """
    from scipy.optimize import linear_sum_assignment

    k = int(max(num_labels, clusters.max() + 1))
    overlap = np.zeros((k, num_labels))
    np.add.at(overlap, (clusters.ravel(), target.ravel().astype(np.int64)), 1)
    rows, cols = linear_sum_assignment(-overlap)
    lut = np.zeros(k, np.int64)
    lut[rows] = cols
    return lut[clusters]


def kmeans_segmentation(image: Any, target: Any, num_labels: int, seed: int = 0, restarts: int = 5) -> np.ndarray:
    """Intensity k-means (``scipy.cluster.vq.kmeans2``, k = num_labels) per image, matched to the labels.

    Args:
        image: (B, C, *spatial) or (B, *spatial) intensities.
        target: (B, *spatial) or (B, 1, *spatial) ground truth, used only for the Hungarian matching
            of cluster ids to labels.
        num_labels: k.
        seed: seed of the k-means++ initialisation; the best of ``restarts`` runs (lowest distortion) is kept.

    Returns:
        (B, *spatial) label maps.
    """
    from scipy.cluster.vq import kmeans2

    img = np.asarray(torch.as_tensor(image).float().cpu())
    tgt = np.asarray(torch.as_tensor(target).cpu())
    tgt = tgt[:, 0] if tgt.ndim == img.ndim else tgt
    feats = img.reshape(img.shape[0], img.shape[1], -1) if img.ndim == tgt.ndim + 1 else img.reshape(img.shape[0], 1, -1)
    out = np.zeros(tgt.shape, np.int64)
    for b in range(img.shape[0]):
        x = feats[b].T.astype(np.float64)
        best, best_cost = None, np.inf
        for r in range(restarts):
            centroids, lab = kmeans2(x, num_labels, minit="++", seed=seed + r)
            cost = float(((x - centroids[lab]) ** 2).sum())
            if cost < best_cost:
                best, best_cost = lab, cost
        out[b] = hungarian_match(best.reshape(tgt.shape[1:]), tgt[b], num_labels)
    return out
