"""Ignite handler for the BUAN bundle shape similarity (Chandio et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.handlers.utils import from_engine
from monai.utils import MetricReduction

from monai_genvq.apps.streamlines.buan import BUANMetric

__all__ = ["BUANHandler"]


class BUANHandler(IgniteMetricHandler):
    """Average BUAN shape similarity of reconstructed bundles over an epoch.

    Wraps :class:`monai_genvq.apps.streamlines.BUANMetric` (dipy's ``bundle_shape_similarity``; Chandio
    et al. 2020, bundle adjacency of Garyfallidis et al. 2012). By default it reads the
    reconstruction from ``"pred"`` and the input bundle from ``"label"`` of the engine output,
    both (B, 3, S, P) or lists of (3, S, P).

    Args:
        threshold: MDF threshold in coordinate units (0.05 in normalised [-1, 1] space as in the
            VQ-Diff paper; 6 for millimetres, dipy's default).
        clust_thr: QuickBundlesX thresholds; ``(0,)`` means no clustering (exact batched path).
        implementation: ``"auto"``, ``"batched"`` or ``"dipy"`` (see :class:`BUANMetric`).
        seed: seed of dipy's random generator.
        space: label of the coordinate space (``"normalised"`` or ``"mm"``), kept for reports.
        reduction: MONAI reduction of the per-sample scores, ``"mean"`` by default.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``.
        save_details: store the per-sample scores in ``engine.state.metric_details[name]``.

    Raises:
        ValueError: invalid threshold, clustering thresholds or implementation.

    Example:
        >>> handler = BUANHandler(threshold=0.05, space="normalised")
        >>> handler.attach(evaluator, "val_buan")  # doctest: +SKIP
    """

    def __init__(
        self,
        threshold: float = 0.05,
        clust_thr: Sequence[float] = (0,),
        implementation: str = "auto",
        seed: int = 0,
        space: str = "normalised",
        reduction: MetricReduction | str = MetricReduction.MEAN,
        output_transform: Callable = from_engine(["pred", "label"]),
        save_details: bool = True,
    ) -> None:
        metric_fn = BUANMetric(
            threshold=threshold,
            clust_thr=clust_thr,
            implementation=implementation,
            seed=seed,
            space=space,
            reduction=reduction,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)
