"""Ignite handlers wrapping the package's metrics, evaluation reports and writers."""

from .buan import BUANHandler
from .streamline_report import StreamlineEvaluationReport, latent_perturbation_buan
from .streamline_writer import StreamlineWriter

__all__ = ["BUANHandler", "StreamlineEvaluationReport", "StreamlineWriter", "latent_perturbation_buan"]
from .disentanglement import DisentanglementHandler

__all__ += ["DisentanglementHandler"]
from .cardiac_report import CardiacEvaluationReport, cardiac_table, collect_cardiac_results
from .ssim import SSIMHandler

__all__ += ["CardiacEvaluationReport", "SSIMHandler", "cardiac_table", "collect_cardiac_results"]
from .anatomical_prior_report import evaluate_anatomical_prior, load_module_checkpoint, train_supervised_unet

__all__ += ["evaluate_anatomical_prior", "load_module_checkpoint", "train_supervised_unet"]
