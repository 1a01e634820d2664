"""Ignite engines (monai.engines subclasses) of the package's methods."""

from .autoencoder import LOSS_TERMS, AutoencoderTrainer, PrepareAutoencoderBatch, ReconstructionInferer, loss_terms
from .prior import CodePriorTrainer, prior_loss_terms

__all__ = ["AutoencoderTrainer", "PrepareAutoencoderBatch", "ReconstructionInferer", "loss_terms", "LOSS_TERMS", "CodePriorTrainer", "prior_loss_terms"]
