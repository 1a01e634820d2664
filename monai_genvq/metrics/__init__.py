"""Metrics as MONAI Cumulative metrics (BUAN, ...)."""

from .buan import BUANMetric, buan_dipy, bundle_adjacency_batched, resample_streamlines_batched, summarize_buan
from .codebook import CodebookUsageMetric

__all__ = ["BUANMetric", "buan_dipy", "bundle_adjacency_batched", "resample_streamlines_batched", "summarize_buan"]
from .disentanglement import (
    DISENTANGLEMENT_METRICS,
    DisentanglementMetric,
    compute_disentanglement,
    interpretability,
    mig,
    modularity,
    mutual_information_matrix,
    sap_score,
    scc_score,
)

__all__ += [
    "DISENTANGLEMENT_METRICS",
    "DisentanglementMetric",
    "compute_disentanglement",
    "interpretability",
    "mig",
    "modularity",
    "mutual_information_matrix",
    "sap_score",
    "scc_score",
]
__all__ += ["CodebookUsageMetric"]
from .segmentation import IntensityKMeans, hungarian_match, kmeans_clusters, kmeans_segmentation, per_label_dice, summarize_dice

__all__ += ["IntensityKMeans", "hungarian_match", "kmeans_clusters", "kmeans_segmentation", "per_label_dice", "summarize_dice"]
from .cluster_dice import ClusterDiceMetric, dice_matrix, hungarian_dice  # noqa: E402

__all__ += ["ClusterDiceMetric", "dice_matrix", "hungarian_dice"]
