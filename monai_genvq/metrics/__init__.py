"""Metrics as MONAI Cumulative metrics (BUAN, ...)."""

from .buan import BUANMetric, buan_dipy, bundle_adjacency_batched, resample_streamlines_batched, summarize_buan
from .codebook import CodebookUsageMetric

__all__ = ["BUANMetric", "buan_dipy", "bundle_adjacency_batched", "resample_streamlines_batched", "summarize_buan", "CodebookUsageMetric"]
