"""Ignite handlers wrapping the package's metrics, evaluation reports and writers."""

from .buan import BUANHandler
from .streamline_report import StreamlineEvaluationReport, latent_perturbation_buan
from .streamline_writer import StreamlineWriter

__all__ = ["BUANHandler", "StreamlineEvaluationReport", "StreamlineWriter", "latent_perturbation_buan"]
from .disentanglement import DisentanglementHandler

__all__ += ["DisentanglementHandler"]
