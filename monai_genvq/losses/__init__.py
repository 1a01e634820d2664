"""Losses: ELBO pieces and attribute regularisation."""

from .attribute import AttributeRegularizationLoss, attribute_regularization
from .elbo import gaussian_kl, reconstruction_error

__all__ = ["AttributeRegularizationLoss", "attribute_regularization", "gaussian_kl", "reconstruction_error"]
