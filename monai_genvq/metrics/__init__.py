"""Metrics as MONAI Cumulative metrics (BUAN, ...)."""

from __future__ import annotations

from monai_genvq.metrics.cluster_dice import (
    MATCH_CRITERIA,
    ClusterDiceMetric,
    describe_unmatched,
    dice_matrix,
    hungarian_dice,
    match_clusters,
)
from monai_genvq.metrics.codebook import CodebookUsageMetric
from monai_genvq.metrics.disentanglement import (
    DISENTANGLEMENT_METRICS,
    MI_ESTIMATORS,
    DisentanglementMetric,
    attribute_entropy,
    compute_disentanglement,
    describe_disentanglement_settings,
    describe_mi_estimator,
    discretize,
    entropy_discrete,
    interpretability,
    mig,
    modularity,
    mutual_information_matrix,
    sap_score,
    scc_score,
    spearman_matrix,
)
from monai_genvq.metrics.segmentation import (
    IntensityKMeans,
    hungarian_match,
    kmeans_clusters,
    kmeans_segmentation,
    per_label_dice,
    summarize_dice,
)

__all__ = [
    "ClusterDiceMetric",
    "CodebookUsageMetric",
    "DISENTANGLEMENT_METRICS",
    "DisentanglementMetric",
    "IntensityKMeans",
    "MATCH_CRITERIA",
    "MI_ESTIMATORS",
    "attribute_entropy",
    "compute_disentanglement",
    "describe_disentanglement_settings",
    "describe_mi_estimator",
    "describe_unmatched",
    "dice_matrix",
    "discretize",
    "entropy_discrete",
    "hungarian_dice",
    "hungarian_match",
    "interpretability",
    "kmeans_clusters",
    "kmeans_segmentation",
    "match_clusters",
    "mig",
    "modularity",
    "mutual_information_matrix",
    "per_label_dice",
    "sap_score",
    "scc_score",
    "spearman_matrix",
    "summarize_dice",
]
