"""Metrics as MONAI Cumulative metrics (BUAN, ...)."""

from .buan import BUANMetric, buan_dipy, bundle_adjacency_batched, resample_streamlines_batched, summarize_buan

__all__ = ["BUANMetric", "buan_dipy", "bundle_adjacency_batched", "resample_streamlines_batched", "summarize_buan"]
from .cluster_dice import ClusterDiceMetric, dice_matrix, hungarian_dice  # noqa: E402

__all__ += ["ClusterDiceMetric", "dice_matrix", "hungarian_dice"]
