"""Losses: ELBO pieces, attribute regularisation, posterior-weighted VQ losses."""

from .attribute import AttributeRegularizationLoss, attribute_regularization
from .elbo import gaussian_kl, gaussian_kl_per_sample, reconstruction_error
from .vq import posterior_weighted_vq_loss

__all__ = [
    "AttributeRegularizationLoss",
    "attribute_regularization",
    "gaussian_kl",
    "posterior_weighted_vq_loss",
    "reconstruction_error",
]
from .anatomical_prior import (
    AnatomicalPriorTerms,
    ImageModelLoss,
    LabelPriorLoss,
    categorical_nll,
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
from .hyperbolic import hierarchical_triplet_loss, reconstruction_nll  # noqa: E402

__all__ += ["hierarchical_triplet_loss", "reconstruction_nll"]
