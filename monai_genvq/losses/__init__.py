"""Losses: ELBO pieces, attribute regularisation, perceptual reconstruction term, posterior-weighted VQ losses."""

from __future__ import annotations

from monai_genvq.losses.attribute import AttributeRegularizationLoss, attribute_regularization
from monai_genvq.losses.elbo import gaussian_kl, reconstruction_error
from monai_genvq.losses.perceptual import (
    VGG_LAYERS,
    PerceptualReconstructionLoss,
    VGGPerceptualLoss,
    load_vgg_features_state_dict,
    reconstruction_objective,
)
from monai_genvq.losses.vq import posterior_weighted_vq_loss

__all__ = [
    "AttributeRegularizationLoss",
    "PerceptualReconstructionLoss",
    "VGGPerceptualLoss",
    "VGG_LAYERS",
    "attribute_regularization",
    "gaussian_kl",
    "load_vgg_features_state_dict",
    "posterior_weighted_vq_loss",
    "reconstruction_error",
    "reconstruction_objective",
]
