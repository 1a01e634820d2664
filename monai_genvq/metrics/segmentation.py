"""Per-label Dice (MONAI DiceMetric) and the intensity k-means baseline with Hungarian label matching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import DiceMetric

__all__ = [
    "IntensityKMeans",
    "hungarian_match",
    "kmeans_clusters",
    "kmeans_segmentation",
    "per_label_dice",
    "summarize_dice",
]


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
        out[name] = {
            "mean": float(v.mean()) if v.numel() else float("nan"),
            "std": float(v.std()) if v.numel() > 1 else 0.0,
            "n": int(v.numel()),
        }
    per_image = torch.nanmean(d, dim=1)
    per_image = per_image[~torch.isnan(per_image)]
    out["mean"] = {
        "mean": float(per_image.mean()),
        "std": float(per_image.std()) if per_image.numel() > 1 else 0.0,
        "n": int(per_image.numel()),
    }
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


def kmeans_clusters(image: Any, num_clusters: int, seed: int = 0, restarts: int = 5) -> np.ndarray:
    """Intensity k-means (``scipy.cluster.vq.kmeans2``, k-means++ start) of each image, no labels: cluster ids.

    Args:
        image: (B, C, *spatial) intensities (channels are the features of a voxel).
        num_clusters: k.
        seed: seed of the first k-means++ start; the best of ``restarts`` runs (lowest distortion) is kept.
        restarts: k-means runs per image.

    Returns:
        (B, *spatial) int64 cluster ids (arbitrary order: match them to labels to score them).

    Example:
        >>> ids = kmeans_clusters(np.array([[[0.0, 0.0, 1.0, 1.0]]]), 2)
        >>> bool(ids[0, 0] == ids[0, 1] != ids[0, 2] == ids[0, 3])
        True
    """
    from scipy.cluster.vq import kmeans2

    img = np.asarray(torch.as_tensor(image).float().detach().cpu())
    if img.ndim < 3:
        raise ValueError(f"kmeans_clusters expects (B, C, *spatial) images; got shape {img.shape}")
    feats = img.reshape(img.shape[0], img.shape[1], -1)
    out = np.zeros((img.shape[0],) + img.shape[2:], np.int64)
    for b in range(img.shape[0]):
        x = feats[b].T.astype(np.float64)
        best, best_cost = None, np.inf
        for r in range(int(restarts)):
            centroids, lab = kmeans2(x, int(num_clusters), minit="++", seed=seed + r)
            cost = float(((x - centroids[lab]) ** 2).sum())
            if cost < best_cost:
                best, best_cost = lab, cost
        out[b] = best.reshape(img.shape[2:])
    return out


def kmeans_segmentation(image: Any, target: Any, num_labels: int, seed: int = 0, restarts: int = 5) -> np.ndarray:
    """Intensity k-means (:func:`kmeans_clusters`, k = num_labels) per image, matched to the labels.

    Args:
        image: (B, C, *spatial) or (B, *spatial) intensities.
        target: (B, *spatial) or (B, 1, *spatial) ground truth, used only for the Hungarian matching
            of cluster ids to labels.
        num_labels: k.
        seed, restarts: as :func:`kmeans_clusters`.

    Returns:
        (B, *spatial) label maps.
    """
    img = np.asarray(torch.as_tensor(image).float().cpu())
    tgt = np.asarray(torch.as_tensor(target).cpu())
    tgt = tgt[:, 0] if tgt.ndim == img.ndim else tgt
    img = img if img.ndim == tgt.ndim + 1 else img[:, None]
    clusters = kmeans_clusters(img, num_labels, seed, restarts)
    return np.stack([hungarian_match(clusters[b], tgt[b], num_labels) for b in range(img.shape[0])])


class IntensityKMeans(torch.nn.Module):
    """The intensity k-means baseline as a parameter-free "network": images -> one-hot cluster maps.

    Lets the baseline run through the same MONAI evaluator (and post-processing) as the learnt
    models. Cluster ids are arbitrary; scoring them needs a matching to the labels (the standard
    Hungarian matching, :class:`monai_genvq.apps.anatomical_prior.HungarianMatchd`), which uses the ground truth.

    Args:
        num_clusters: k.
        seed, restarts: as :func:`kmeans_clusters`.

    Example:
        >>> IntensityKMeans(2)(torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])).shape
        torch.Size([1, 2, 1, 4])
    """

    def __init__(self, num_clusters: int = 4, seed: int = 0, restarts: int = 5) -> None:
        super().__init__()
        self.num_clusters, self.seed, self.restarts = int(num_clusters), int(seed), int(restarts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(kmeans_clusters(x, self.num_clusters, self.seed, self.restarts), device=x.device)
        return torch.nn.functional.one_hot(ids, self.num_clusters).movedim(-1, 1).float()
