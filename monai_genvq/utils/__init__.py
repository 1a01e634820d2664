"""Utilities every part of the package uses: atomic file writes, Markdown tables, the generated-dataset cache."""

from __future__ import annotations

from monai_genvq.utils.dataset_cache import (
    COMPLETION_MARKER,
    default_cache_root,
    ensure_generated_dataset,
    materialize_dataset,
    params_digest,
)
from monai_genvq.utils.fileio import atomic_path, atomic_write_bytes, atomic_write_text, write_json
from monai_genvq.utils.tables import collect_metrics, format_mean_std, markdown_table, mean_std

__all__ = [
    "COMPLETION_MARKER",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "collect_metrics",
    "default_cache_root",
    "ensure_generated_dataset",
    "format_mean_std",
    "markdown_table",
    "materialize_dataset",
    "mean_std",
    "params_digest",
    "write_json",
]
