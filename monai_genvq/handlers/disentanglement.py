"""Ignite handler for the disentanglement metrics (Interpretability, Modularity, SAP, SCC, MIG)."""

from __future__ import annotations

from collections.abc import Callable

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.handlers.utils import from_engine

from monai_genvq.metrics.disentanglement import DisentanglementMetric

__all__ = ["DisentanglementHandler"]


class DisentanglementHandler(IgniteMetricHandler):
    """One disentanglement metric of the latent codes over an epoch (see :mod:`monai_genvq.metrics.disentanglement`).

    By default reads the posterior mean from ``"latent"`` and the attributes from ``"attributes"``
    of the engine output (as :class:`monai_genvq.engines.VAEEvaluator` writes them).

    Args:
        metric: ``"interpretability"``, ``"modularity"``, ``"sap"``, ``"scc"`` or ``"mig"``.
        bins: histogram bins of the mutual-information estimator.
        output_transform: maps ``engine.state.output`` to ``(codes, attributes)``.

    Example:
        >>> DisentanglementHandler("sap").attach(evaluator, "val_sap")  # doctest: +SKIP
    """

    def __init__(
        self,
        metric: str = "interpretability",
        bins: int = 20,
        output_transform: Callable = from_engine(["latent", "attributes"]),
    ) -> None:
        super().__init__(
            metric_fn=DisentanglementMetric(metric, bins), output_transform=output_transform, save_details=False
        )
