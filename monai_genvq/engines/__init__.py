"""Ignite engines (monai.engines subclasses) of the package's methods."""

from .autoencoder import LOSS_TERMS, AutoencoderTrainer, PrepareAutoencoderBatch, ReconstructionInferer, loss_terms
from .prior import CodePriorTrainer, prior_loss_terms

__all__ = ["AutoencoderTrainer", "PrepareAutoencoderBatch", "ReconstructionInferer", "loss_terms", "LOSS_TERMS"]
from .vae import (
    VAE_LOSS_TERMS,
    PrepareVAEBatch,
    SoftIntroTrainer,
    VAEEvaluator,
    VAEReconstructionInferer,
    VAETrainer,
    vae_loss_terms,
)

__all__ += [
    "PrepareVAEBatch",
    "SoftIntroTrainer",
    "VAEEvaluator",
    "VAEReconstructionInferer",
    "VAETrainer",
    "VAE_LOSS_TERMS",
    "vae_loss_terms",
]
__all__ += ["CodePriorTrainer", "prior_loss_terms"]
from .anatomical_prior import (
    ANATOMICAL_PRIOR_LOSS_TERMS,
    ImageModelTrainer,
    LabelPriorTrainer,
    PrepareImageBatch,
    PrepareLabelBatch,
    anatomical_prior_loss_terms,
    atlas_intensity_init,
    render_from_prior,
)

__all__ += [
    "ANATOMICAL_PRIOR_LOSS_TERMS",
    "ImageModelTrainer",
    "LabelPriorTrainer",
    "PrepareImageBatch",
    "PrepareLabelBatch",
    "anatomical_prior_loss_terms",
    "atlas_intensity_init",
    "render_from_prior",
]
