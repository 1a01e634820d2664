"""Losses: ELBO pieces, attribute regularisation, posterior-weighted VQ losses."""

from __future__ import annotations

from monai_genvq.losses.attribute import AttributeRegularizationLoss, attribute_regularization
from monai_genvq.losses.elbo import gaussian_kl, reconstruction_error
from monai_genvq.losses.vq import posterior_weighted_vq_loss

__all__ = [
    "AttributeRegularizationLoss",
    "attribute_regularization",
    "gaussian_kl",
    "posterior_weighted_vq_loss",
    "reconstruction_error",
]
