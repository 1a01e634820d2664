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
    of the engine output (as :class:`monai_genvq.engines.VAEEvaluator` writes them). The defaults
    are the seed's (Attri-SIVAE via AR-VAE's metric code): k-NN mutual information and SCC's
    p <= 0.05 filter.

    Args:
        metric: ``"interpretability"``, ``"modularity"``, ``"sap"``, ``"scc"`` or ``"mig"``.
        bins: histogram bins (``mi_estimator="histogram"``).
        output_transform: maps ``engine.state.output`` to ``(codes, attributes)``.
        mi_estimator: ``"knn"`` (sklearn ``mutual_info_regression``, as AR-VAE) or ``"histogram"``.
        n_neighbors: k of the k-NN estimator.
        random_state: seed of the k-NN estimator's jitter.
        scc_max_p: SCC counts a correlation only where its p-value is ``<= scc_max_p`` (``None``: all).

    Example:
        >>> DisentanglementHandler("sap").attach(evaluator, "val_sap")  # doctest: +SKIP
    """

    def __init__(
        self,
        metric: str = "interpretability",
        bins: int = 20,
        output_transform: Callable = from_engine(["latent", "attributes"]),
        mi_estimator: str = "knn",
        n_neighbors: int = 3,
        random_state: int | None = 0,
        scc_max_p: float | None = 0.05,
    ) -> None:
        super().__init__(
            metric_fn=DisentanglementMetric(metric, bins, mi_estimator, n_neighbors, random_state, scc_max_p),
            output_transform=output_transform,
            save_details=False,
        )
