"""Losses: ELBO pieces and attribute regularisation."""

from .attribute import AttributeRegularizationLoss, attribute_regularization
from .elbo import gaussian_kl, reconstruction_error

__all__ = ["AttributeRegularizationLoss", "attribute_regularization", "gaussian_kl", "reconstruction_error"]
from .anatomical_prior import (
    AnatomicalPriorTerms,
    ImageModelLoss,
    LabelPriorLoss,
    categorical_nll,
    gaussian_kl_per_sample,
    gaussian_nll_latent,
    jensen_intensity_log_likelihood,
    label_intensity_log_likelihood,
)

__all__ += [
    "AnatomicalPriorTerms",
    "ImageModelLoss",
    "LabelPriorLoss",
    "categorical_nll",
    "gaussian_kl_per_sample",
    "gaussian_nll_latent",
    "jensen_intensity_log_likelihood",
    "label_intensity_log_likelihood",
]
