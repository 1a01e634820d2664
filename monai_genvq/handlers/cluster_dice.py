"""Ignite handler of the package's Hungarian-matched cluster Dice (:class:`monai_genvq.metrics.ClusterDiceMetric`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.handlers import IgniteMetricHandler

from monai_genvq.metrics.cluster_dice import ClusterDiceMetric

__all__ = ["ClusterDice", "to_label_ids"]


def to_label_ids(x: Any) -> torch.Tensor:
    """(C, *S) one-hot / probabilities with C > 1 -> (1, *S) ids by argmax; id maps pass unchanged.

    Example:
        >>> to_label_ids(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])).tolist()
        [[[0, 1]]]
    """
    t = torch.as_tensor(x)
    return t.argmax(0, keepdim=True) if t.ndim >= 3 and t.shape[0] > 1 else t.long()


class ClusterDice(IgniteMetricHandler):
    """Mean Dice over the labels after Hungarian matching of predicted ids to labels, per image, as an Ignite handler.

    Label-permutation invariant: it scores the partition, not the names of its parts — the score of
    a clustering, and for a method that names its labels (e.g. the anatomical-prior VAE) a check
    that its naming is right (then it equals the plain Dice). Predictions and labels may be one-hot
    (converted by argmax, :func:`to_label_ids`) or id maps. See docs/METRICS.md ("Dice after clustering").

    Args:
        label_ids: labels to score (e.g. the foreground ``[1, 2, 3]``); default those present per image.
        empty_value: Dice of an empty cluster matched to an empty label.
        output_transform: engine output -> ``(y_pred, y)`` (lists of per-image tensors after decollation).
        save_details: keep the per-image scores in ``engine.state.metric_details``.
        unmatched_value: Dice of a label left without a predicted id: 0 by default; ``None`` leaves it
            out of the image's mean (matched pairs only, as the seed's code). See
            :func:`monai_genvq.metrics.hungarian_dice`; ``handler.metric_fn.unmatched`` states the choice
            in words for the evaluation's output.

    Example:
        >>> from monai.handlers import from_engine
        >>> handler = ClusterDice([1, 2, 3], output_transform=from_engine(["pred", "label"]))  # doctest: +SKIP
    """

    def __init__(
        self,
        label_ids: Sequence[int] | None = None,
        empty_value: float = 1.0,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        unmatched_value: float | None = 0.0,
    ) -> None:
        super().__init__(
            metric_fn=ClusterDiceMetric(label_ids, empty_value, unmatched_value=unmatched_value),
            output_transform=output_transform,
            save_details=save_details,
        )

    def update(self, output: Sequence[Any]) -> None:
        if len(output) != 2:
            raise ValueError(f"output must be (y_pred, y); got {len(output)} entries")
        y_pred, y = output
        as_list = lambda v: list(v) if isinstance(v, (list, tuple)) else [t for t in v]  # noqa: E731
        self.metric_fn([to_label_ids(p) for p in as_list(y_pred)], [to_label_ids(t) for t in as_list(y)])
