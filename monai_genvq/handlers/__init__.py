"""Ignite handlers wrapping the package's metrics, evaluation reports and writers."""

from .buan import BUANHandler
from .prior_report import CodePriorReport, save_nifti_slice
from .quantizer_report import QuantizerEvaluationReport, collect_quantizer_results, quantizer_table
from .streamline_report import StreamlineEvaluationReport, latent_perturbation_buan
from .streamline_writer import StreamlineWriter

__all__ = ["BUANHandler", "StreamlineEvaluationReport", "StreamlineWriter", "latent_perturbation_buan", "QuantizerEvaluationReport",
           "collect_quantizer_results", "quantizer_table", "CodePriorReport", "save_nifti_slice"]
