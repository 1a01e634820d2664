"""Ignite engines (monai.engines subclasses) of the package's methods."""

from .autoencoder import LOSS_TERMS, AutoencoderTrainer, PrepareAutoencoderBatch, ReconstructionInferer, loss_terms

__all__ = ["AutoencoderTrainer", "PrepareAutoencoderBatch", "ReconstructionInferer", "loss_terms", "LOSS_TERMS"]
from .hyperbolic import HYPERBOLIC_LOSS_TERMS, HyperbolicVAETrainer, hyperbolic_loss_terms  # noqa: E402
from .hyperbolic_segmentation import HyperbolicSegmentation, write_comparison_table  # noqa: E402

__all__ += ["HYPERBOLIC_LOSS_TERMS", "HyperbolicVAETrainer", "hyperbolic_loss_terms", "HyperbolicSegmentation", "write_comparison_table"]
