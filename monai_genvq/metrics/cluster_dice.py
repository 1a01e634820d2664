"""Dice after clustering: Hungarian matching of cluster ids to ground-truth labels (METRICS.md).

The clusters × labels Dice matrix is matched with ``scipy.optimize.linear_sum_assignment`` on its
negative; the score is the mean Dice over matched pairs (Hsu et al. 2021 evaluate their
unsupervised segmentations this way, per hierarchy level and for the BraTS whole tumour).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import Cumulative
from scipy.optimize import linear_sum_assignment

__all__ = ["dice_matrix", "hungarian_dice", "ClusterDiceMetric"]


def dice_matrix(
    pred: np.ndarray, label: np.ndarray, pred_ids: Sequence[int], label_ids: Sequence[int], empty_value: float = 1.0
) -> np.ndarray:
    """Dice of every (cluster, label) pair; a pair where both are empty scores ``empty_value``."""
    pred, label = np.asarray(pred).ravel(), np.asarray(label).ravel()
    if pred.shape != label.shape:
        raise ValueError(f"prediction and label have different sizes ({pred.size} vs {label.size})")
    pi = np.searchsorted(np.asarray(pred_ids), pred)
    li = np.searchsorted(np.asarray(label_ids), label)
    valid = (pi < len(pred_ids)) & (li < len(label_ids))
    valid &= np.asarray(pred_ids)[np.minimum(pi, len(pred_ids) - 1)] == pred
    valid &= np.asarray(label_ids)[np.minimum(li, len(label_ids) - 1)] == label
    inter = np.zeros((len(pred_ids), len(label_ids)))
    np.add.at(inter, (pi[valid], li[valid]), 1)
    p_sum = np.bincount(pi[valid], minlength=len(pred_ids))[:, None].astype(float)
    l_sum = np.bincount(li[valid], minlength=len(label_ids))[None, :].astype(float)
    denom = p_sum + l_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denom > 0, 2 * inter / denom, empty_value)
    return dice


def hungarian_dice(
    pred: np.ndarray | torch.Tensor,
    label: np.ndarray | torch.Tensor,
    label_ids: Sequence[int] | None = None,
    pred_ids: Sequence[int] | None = None,
    empty_value: float = 1.0,
) -> tuple[float, dict[int, int], np.ndarray]:
    """Mean Dice over Hungarian-matched (cluster, label) pairs.

    Args:
        pred: cluster ids per voxel.
        label: ground-truth labels per voxel (same shape).
        label_ids: the labels to score (default: those present); a label absent from ``label`` still
            counts (its Dice is ``empty_value`` if its matched cluster is empty too, else 0).
        pred_ids: the cluster ids (default: those present).
        empty_value: Dice of an empty cluster matched to an empty label.

    Returns:
        ``(mean matched Dice, {label: cluster}, per-label Dice in label_ids order)``.

    Raises:
        ValueError: shapes differ or the label map is empty (no labels to score).

    Example:
        >>> hungarian_dice(np.array([2, 2, 0, 0]), np.array([0, 0, 1, 1]))[0]
        1.0
    """
    pred = np.asarray(pred.detach().cpu() if isinstance(pred, torch.Tensor) else pred)
    label = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    if label.size == 0:
        raise ValueError("empty label map: nothing to score")
    label_ids = sorted(int(v) for v in (np.unique(label) if label_ids is None else label_ids))
    pred_ids = sorted(int(v) for v in (np.unique(pred) if pred_ids is None else pred_ids))
    if not label_ids:
        raise ValueError("empty label map: no label ids to score")
    dice = dice_matrix(pred, label, pred_ids, label_ids, empty_value)
    rows, cols = linear_sum_assignment(-dice)
    per_label = np.zeros(len(label_ids))
    mapping = {}
    for r, c_ in zip(rows, cols):
        per_label[c_] = dice[r, c_]
        mapping[label_ids[c_]] = pred_ids[r]
    return float(per_label.mean()), mapping, per_label


class ClusterDiceMetric(Cumulative):
    """Cumulative Hungarian-matched Dice of cluster maps against label maps (one score per volume).

    ``metric(y_pred, y)`` takes (B, 1, *spatial) or (B, *spatial) cluster ids and labels (or lists of
    such arrays); :meth:`aggregate` returns the mean over volumes (or all scores with
    ``reduction="none"``).

    Args:
        label_ids: labels to score (default: those present in each volume).
        empty_value: Dice of an empty cluster matched to an empty label.
        reduction: "mean" or "none".

    Example:
        >>> m = ClusterDiceMetric()
        >>> m(torch.tensor([[1, 1, 0, 0]]), torch.tensor([[0, 0, 1, 1]]))
        >>> float(m.aggregate())
        1.0
    """

    def __init__(
        self, label_ids: Sequence[int] | None = None, empty_value: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.label_ids, self.empty_value, self.reduction = label_ids, empty_value, reduction

    def __call__(self, y_pred, y) -> None:  # type: ignore[override]
        preds = list(y_pred) if isinstance(y_pred, (list, tuple)) else [p for p in y_pred]
        labels = list(y) if isinstance(y, (list, tuple)) else [t for t in y]
        if len(preds) != len(labels):
            raise ValueError(f"{len(preds)} predictions for {len(labels)} label maps")
        scores = [hungarian_dice(p, t, self.label_ids, empty_value=self.empty_value)[0] for p, t in zip(preds, labels)]
        self.extend(torch.tensor(scores, dtype=torch.float64))

    def aggregate(self):  # type: ignore[override]
        data = self.get_buffer()
        if data is None or (isinstance(data, torch.Tensor) and data.numel() == 0):
            raise ValueError("ClusterDiceMetric has no scores; call it on some volumes first")
        return data.mean() if self.reduction == "mean" else data
