"""Ignite handlers wrapping the package's metrics, evaluation reports and writers."""

from __future__ import annotations

from monai_genvq.handlers.cluster_dice import ClusterDice, to_label_ids
from monai_genvq.handlers.disentanglement import DisentanglementHandler
from monai_genvq.handlers.inference import (
    CheckedCheckpointLoader,
    LatentCodeWriter,
    checked_checkpoint,
    load_checkpoint_file,
    resolve_checkpoint,
)
from monai_genvq.handlers.prior_report import CodePriorReport, save_nifti_slice
from monai_genvq.handlers.progress import (
    CaseProgress,
    EvaluationProgress,
    case_dice,
    case_mse,
    case_names,
    progress_bar_handlers,
)
from monai_genvq.handlers.quantizer_report import QuantizerEvaluationReport, collect_quantizer_results, quantizer_table
from monai_genvq.handlers.resume import (
    AtomicCheckpointSaver,
    CorruptCheckpointError,
    ResumeFromLatest,
    latest_checkpoint,
)
from monai_genvq.handlers.ssim import SSIMHandler

__all__ = [
    "AtomicCheckpointSaver",
    "CaseProgress",
    "CheckedCheckpointLoader",
    "ClusterDice",
    "CodePriorReport",
    "CorruptCheckpointError",
    "DisentanglementHandler",
    "EvaluationProgress",
    "LatentCodeWriter",
    "QuantizerEvaluationReport",
    "ResumeFromLatest",
    "SSIMHandler",
    "case_dice",
    "case_mse",
    "case_names",
    "checked_checkpoint",
    "collect_quantizer_results",
    "latest_checkpoint",
    "load_checkpoint_file",
    "progress_bar_handlers",
    "quantizer_table",
    "resolve_checkpoint",
    "save_nifti_slice",
    "to_label_ids",
]
