"""Ignite handlers wrapping the package's metrics, evaluation reports and writers."""

from .buan import BUANHandler
from .prior_report import CodePriorReport, save_nifti_slice
from .quantizer_report import QuantizerEvaluationReport, collect_quantizer_results, quantizer_table
from .streamline_report import StreamlineEvaluationReport, latent_perturbation_buan
from .streamline_writer import StreamlineWriter

__all__ = ["BUANHandler", "StreamlineEvaluationReport", "StreamlineWriter", "latent_perturbation_buan"]
from .disentanglement import DisentanglementHandler

__all__ += ["DisentanglementHandler"]
from .cardiac_report import CardiacEvaluationReport, cardiac_table, collect_cardiac_results
from .ssim import SSIMHandler

__all__ += ["CardiacEvaluationReport", "SSIMHandler", "cardiac_table", "collect_cardiac_results"]
__all__ += ["QuantizerEvaluationReport", "collect_quantizer_results", "quantizer_table", "CodePriorReport", "save_nifti_slice"]
from .anatomical_prior_report import SegmentationReport, load_module_checkpoint, train_supervised_unet

__all__ += ["SegmentationReport", "load_module_checkpoint", "train_supervised_unet"]
from .streamline_prior_report import SAMPLE_STATISTICS, ReferenceStatistics, StreamlinePriorReport, choose_sample_statistics

__all__ += ["SAMPLE_STATISTICS", "ReferenceStatistics", "StreamlinePriorReport", "choose_sample_statistics"]
from .inference import LatentCodeWriter, resolve_checkpoint  # noqa: E402

__all__ += ["LatentCodeWriter", "resolve_checkpoint"]
from .resume import AtomicCheckpointSaver, CorruptCheckpointError, ResumeFromLatest, latest_checkpoint

__all__ += ["AtomicCheckpointSaver", "CorruptCheckpointError", "ResumeFromLatest", "latest_checkpoint"]
from .cluster_dice import ClusterDice, to_label_ids  # noqa: E402

__all__ += ["ClusterDice", "to_label_ids"]
