"""Utilities every part of the package uses: atomic file writes, Markdown tables, the generated-dataset cache,
the training run guard (one run, one folder) and errors a user can act on."""

from __future__ import annotations

from monai_genvq.utils.allocator import heap_only_malloc
from monai_genvq.utils.dataset_cache import (
    COMPLETION_MARKER,
    default_cache_root,
    ensure_generated_dataset,
    materialize_dataset,
    params_digest,
)
from monai_genvq.utils.errors import OPTION_KINDS, OptionError, check_options, install_excepthook, root_cause
from monai_genvq.utils.fileio import atomic_path, atomic_write_bytes, atomic_write_text, write_json
from monai_genvq.utils.run_folder import (
    RunFolderError,
    check_training_run,
    finish_training_run,
    start_training_run,
    trained_checkpoints,
)
from monai_genvq.utils.tables import collect_metrics, describe_dataset, format_mean_std, markdown_table, mean_std

__all__ = [
    "COMPLETION_MARKER",
    "OPTION_KINDS",
    "OptionError",
    "RunFolderError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_options",
    "check_training_run",
    "collect_metrics",
    "default_cache_root",
    "describe_dataset",
    "ensure_generated_dataset",
    "finish_training_run",
    "format_mean_std",
    "heap_only_malloc",
    "install_excepthook",
    "markdown_table",
    "materialize_dataset",
    "mean_std",
    "params_digest",
    "root_cause",
    "start_training_run",
    "trained_checkpoints",
    "write_json",
]
