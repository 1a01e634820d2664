"""Dice after clustering: Hungarian matching of cluster ids to ground-truth labels (METRICS.md).

:func:`match_clusters` is the package's one Hungarian matching: it builds the clusters × labels
score matrix (Dice by default, or voxel overlap) and solves the one-to-one assignment with
``scipy.optimize.linear_sum_assignment`` on its negative. :func:`hungarian_dice` scores a
clustering with it (the mean Dice over the labels; Hsu et al. 2021 evaluate their unsupervised
segmentations this way, per hierarchy level and for the BraTS whole tumour);
:func:`monai_genvq.metrics.hungarian_match` relabels a cluster map with it.

With fewer clusters than labels some labels get no cluster. ``unmatched_value`` says how they
count: 0 (the default here: a label the clustering cannot separate scores 0) or ``None`` (left out,
so the mean runs over matched pairs only, as the seed's code averages). Every number should be
stated with it: :func:`describe_unmatched` gives the sentence evaluations write next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import Cumulative
from scipy.optimize import linear_sum_assignment

__all__ = [
    "MATCH_CRITERIA",
    "ClusterDiceMetric",
    "describe_unmatched",
    "dice_matrix",
    "hungarian_dice",
    "match_clusters",
]

#: Scores :func:`match_clusters` can maximise: the pairs' Dice, or their overlap (voxel count).
MATCH_CRITERIA = ("dice", "overlap")


def describe_unmatched(unmatched_value: float | None = 0.0) -> str:
    """How a Hungarian-matched Dice counts labels left without a cluster, for ``metrics.json`` and tables.

    Example:
        >>> describe_unmatched(0.0)
        'a label left without a cluster (fewer clusters than labels) counts as Dice 0'
        >>> describe_unmatched(None)
        'a label left without a cluster (fewer clusters than labels) is left out of the mean (matched pairs only)'
    """
    head = "a label left without a cluster (fewer clusters than labels)"
    if unmatched_value is None:
        return f"{head} is left out of the mean (matched pairs only)"
    return f"{head} counts as Dice {float(unmatched_value):g}"


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)


def _pair_counts(
    pred: np.ndarray, label: np.ndarray, pred_ids: Sequence[int], label_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlap (len(pred_ids), len(label_ids)) and the sizes of each cluster (column) and label (row);
    voxels whose cluster or label is not among the ids are left out."""
    pred, label = np.asarray(pred).ravel(), np.asarray(label).ravel()
    if pred.shape != label.shape:
        raise ValueError(f"prediction and label have different sizes ({pred.size} vs {label.size})")
    pred_ids, label_ids = np.asarray(pred_ids), np.asarray(label_ids)
    pi = np.searchsorted(pred_ids, pred)
    li = np.searchsorted(label_ids, label)
    valid = (pi < len(pred_ids)) & (li < len(label_ids))
    valid &= pred_ids[np.minimum(pi, len(pred_ids) - 1)] == pred
    valid &= label_ids[np.minimum(li, len(label_ids) - 1)] == label
    inter = np.zeros((len(pred_ids), len(label_ids)))
    np.add.at(inter, (pi[valid], li[valid]), 1)
    p_sum = np.bincount(pi[valid], minlength=len(pred_ids))[:, None].astype(float)
    l_sum = np.bincount(li[valid], minlength=len(label_ids))[None, :].astype(float)
    return inter, p_sum, l_sum


def dice_matrix(
    pred: np.ndarray, label: np.ndarray, pred_ids: Sequence[int], label_ids: Sequence[int], empty_value: float = 1.0
) -> np.ndarray:
    """Dice of every (cluster, label) pair; a pair where both are empty scores ``empty_value``.

    Args:
        pred, label: cluster ids and labels per voxel (same size).
        pred_ids, label_ids: sorted ids of the rows and columns; other values are ignored.
        empty_value: Dice of an empty cluster paired with an empty label.

    Example:
        >>> dice_matrix(np.array([0, 0, 1]), np.array([1, 1, 1]), [0, 1], [0, 1]).round(3).tolist()
        [[0.0, 0.8], [0.0, 0.5]]
    """
    inter, p_sum, l_sum = _pair_counts(pred, label, pred_ids, label_ids)
    denom = p_sum + l_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denom > 0, 2 * inter / denom, empty_value)
    return dice


def match_clusters(
    pred: np.ndarray | torch.Tensor,
    label: np.ndarray | torch.Tensor,
    label_ids: Sequence[int] | None = None,
    pred_ids: Sequence[int] | None = None,
    criterion: str = "dice",
    empty_value: float = 1.0,
) -> tuple[dict[int, int], np.ndarray]:
    """One-to-one matching of cluster ids to labels by the Hungarian algorithm (the package's one matching).

    The clusters × labels matrix of ``criterion`` (:func:`dice_matrix`, or the voxel counts each
    pair shares) is maximised with ``scipy.optimize.linear_sum_assignment`` on its negative. With fewer clusters
    than labels some labels stay unmatched (and vice versa). It uses the ground truth: an oracle
    naming of the clusters.

    Args:
        pred: cluster ids per voxel.
        label: ground-truth labels per voxel (same shape).
        label_ids: the labels to match (default: those present in ``label``).
        pred_ids: the cluster ids to match (default: those present in ``pred``).
        criterion: ``"dice"`` (maximise the sum of matched pairs' Dice, METRICS.md) or ``"overlap"``
            (maximise the matched voxels, i.e. the accuracy after relabelling).
        empty_value: Dice of an empty cluster paired with an empty label (``"dice"`` only).

    Returns:
        ``({label: cluster} for the matched pairs, the score matrix)``; the matrix rows follow the
        sorted ``pred_ids`` and its columns the sorted ``label_ids``.

    Raises:
        ValueError: shapes differ, an unknown ``criterion``, or no ids to match.

    Example:
        >>> match_clusters(np.array([2, 2, 0, 1]), np.array([1, 1, 0, 2]))[0]
        {0: 0, 2: 1, 1: 2}
    """
    if criterion not in MATCH_CRITERIA:
        raise ValueError(f"criterion must be one of {MATCH_CRITERIA}; got {criterion!r}")
    pred, label = _as_numpy(pred), _as_numpy(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    label_ids = sorted(int(v) for v in (np.unique(label) if label_ids is None else label_ids))
    pred_ids = sorted(int(v) for v in (np.unique(pred) if pred_ids is None else pred_ids))
    if not label_ids or not pred_ids:
        raise ValueError("nothing to match: no label ids or no cluster ids")
    if criterion == "dice":
        scores = dice_matrix(pred, label, pred_ids, label_ids, empty_value)
    else:
        scores = _pair_counts(pred, label, pred_ids, label_ids)[0]
    rows, cols = linear_sum_assignment(-scores)
    return {label_ids[c]: pred_ids[r] for r, c in zip(rows, cols)}, scores


def hungarian_dice(
    pred: np.ndarray | torch.Tensor,
    label: np.ndarray | torch.Tensor,
    label_ids: Sequence[int] | None = None,
    pred_ids: Sequence[int] | None = None,
    empty_value: float = 1.0,
    unmatched_value: float | None = 0.0,
) -> tuple[float, dict[int, int], np.ndarray]:
    """Mean Dice over the labels after Hungarian matching (:func:`match_clusters`, ``criterion="dice"``).

    Each label's Dice is that of its matched cluster; a label without a cluster (fewer clusters than
    labels) scores ``unmatched_value`` (0 by default) or, with ``None``, is left out so the mean runs
    over matched pairs only. State which with the number (:func:`describe_unmatched`).

    Args:
        pred: cluster ids per voxel.
        label: ground-truth labels per voxel (same shape).
        label_ids: the labels to score (default: those present); a label absent from ``label`` still
            counts (its Dice is ``empty_value`` if its matched cluster is empty too, else 0).
        pred_ids: the cluster ids (default: those present).
        empty_value: Dice of an empty cluster matched to an empty label.
        unmatched_value: Dice of a label left without a cluster (fewer clusters than labels): 0 by
            default; ``None`` leaves such labels out of the mean (NaN in the per-label Dice), which
            averages matched pairs only as the seed's code does. State which with the number.

    Returns:
        ``(mean Dice over the labels, {label: cluster}, per-label Dice in label_ids order)``.

    Raises:
        ValueError: shapes differ or the label map is empty (no labels to score).

    Example:
        >>> hungarian_dice(np.array([2, 2, 0, 0]), np.array([0, 0, 1, 1]))[0]
        1.0
        >>> hungarian_dice(np.zeros(4, int), np.array([0, 0, 1, 1]))[0]  # label 1 unmatched: (2/3 + 0) / 2
        0.3333333333333333
        >>> hungarian_dice(np.zeros(4, int), np.array([0, 0, 1, 1]), unmatched_value=None)[2].round(3).tolist()
        [0.667, nan]
    """
    pred, label = _as_numpy(pred), _as_numpy(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    if label.size == 0:
        raise ValueError("empty label map: nothing to score")
    label_ids = sorted(int(v) for v in (np.unique(label) if label_ids is None else label_ids))
    pred_ids = sorted(int(v) for v in (np.unique(pred) if pred_ids is None else pred_ids))
    if not label_ids:
        raise ValueError("empty label map: no label ids to score")
    mapping, dice = match_clusters(pred, label, label_ids, pred_ids, "dice", empty_value)
    row = {c: r for r, c in enumerate(pred_ids)}
    fill = np.nan if unmatched_value is None else float(unmatched_value)
    per_label = np.array([dice[row[mapping[lab]], j] if lab in mapping else fill for j, lab in enumerate(label_ids)])
    score = float(np.nanmean(per_label)) if unmatched_value is None else float(per_label.mean())
    return score, mapping, per_label


class ClusterDiceMetric(Cumulative):
    """Cumulative Hungarian-matched Dice of cluster maps against label maps (one score per volume).

    ``metric(y_pred, y)`` takes (B, 1, *spatial) or (B, *spatial) cluster ids and labels (or lists of
    such arrays); :meth:`aggregate` returns the mean over volumes (or all scores with
    ``reduction="none"``).

    Args:
        label_ids: labels to score (default: those present in each volume).
        empty_value: Dice of an empty cluster matched to an empty label.
        reduction: "mean" or "none".
        unmatched_value: Dice of a label left without a cluster (0 by default; ``None``: left out of
            the mean, matched pairs only, as the seed's code); see :func:`hungarian_dice`.
            :attr:`unmatched` states the choice (:func:`describe_unmatched`).

    Example:
        >>> m = ClusterDiceMetric()
        >>> m(torch.tensor([[1, 1, 0, 0]]), torch.tensor([[0, 0, 1, 1]]))
        >>> float(m.aggregate())
        1.0
    """

    def __init__(
        self,
        label_ids: Sequence[int] | None = None,
        empty_value: float = 1.0,
        reduction: str = "mean",
        unmatched_value: float | None = 0.0,
    ) -> None:
        super().__init__()
        self.label_ids, self.empty_value, self.reduction = label_ids, empty_value, reduction
        self.unmatched_value = unmatched_value
        self.unmatched = describe_unmatched(unmatched_value)

    def __call__(self, y_pred, y) -> None:  # type: ignore[override]
        preds = list(y_pred) if isinstance(y_pred, (list, tuple)) else [p for p in y_pred]
        labels = list(y) if isinstance(y, (list, tuple)) else [t for t in y]
        if len(preds) != len(labels):
            raise ValueError(f"{len(preds)} predictions for {len(labels)} label maps")
        scores = [
            hungarian_dice(p, t, self.label_ids, empty_value=self.empty_value, unmatched_value=self.unmatched_value)[0]
            for p, t in zip(preds, labels)
        ]
        self.extend(torch.tensor(scores, dtype=torch.float64))

    def aggregate(self):  # type: ignore[override]
        data = self.get_buffer()
        if data is None or (isinstance(data, torch.Tensor) and data.numel() == 0):
            raise ValueError("ClusterDiceMetric has no scores; call it on some volumes first")
        return data.mean() if self.reduction == "mean" else data
