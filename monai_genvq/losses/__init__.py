"""Losses of the package's methods."""

from .vq import posterior_weighted_vq_loss

__all__ = ["posterior_weighted_vq_loss"]
