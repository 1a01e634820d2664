"""Utilities every part of the package uses: atomic file writes, Markdown tables, the generated-dataset cache,
the training run guard (one run, one folder), errors a user can act on, and the device and mixed-precision
helpers (:func:`resolve_device`, :func:`cuda_option`, :func:`float32_region`)."""

from __future__ import annotations

from monai_genvq.utils.allocator import heap_only_malloc
from monai_genvq.utils.compile import CompiledForward
from monai_genvq.utils.dataset_cache import (
    COMPLETION_MARKER,
    default_cache_root,
    ensure_generated_dataset,
    materialize_dataset,
    params_digest,
)
from monai_genvq.utils.device import AUTO, cuda_option, on_cuda, resolve_device, to_device
from monai_genvq.utils.errors import OPTION_KINDS, OptionError, check_options, install_excepthook, root_cause
from monai_genvq.utils.fileio import atomic_path, atomic_write_bytes, atomic_write_text, write_json
from monai_genvq.utils.precision import autocast_active, float32_region, to_float32
from monai_genvq.utils.run_folder import (
    RunFolderError,
    check_training_run,
    finish_training_run,
    start_training_run,
    trained_checkpoints,
)
from monai_genvq.utils.tables import collect_metrics, describe_dataset, format_mean_std, markdown_table, mean_std

__all__ = [
    "AUTO",
    "COMPLETION_MARKER",
    "CompiledForward",
    "OPTION_KINDS",
    "OptionError",
    "RunFolderError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "autocast_active",
    "check_options",
    "check_training_run",
    "collect_metrics",
    "cuda_option",
    "default_cache_root",
    "describe_dataset",
    "ensure_generated_dataset",
    "finish_training_run",
    "float32_region",
    "format_mean_std",
    "heap_only_malloc",
    "install_excepthook",
    "markdown_table",
    "materialize_dataset",
    "mean_std",
    "on_cuda",
    "params_digest",
    "resolve_device",
    "root_cause",
    "start_training_run",
    "to_device",
    "to_float32",
    "trained_checkpoints",
    "write_json",
]
