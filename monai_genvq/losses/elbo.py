"""ELBO pieces shared by the VAE and Soft-Intro VAE engines."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from monai_genvq.networks.bottlenecks.gaussian import gaussian_kl as elementwise_gaussian_kl

__all__ = ["gaussian_kl", "gaussian_kl_per_sample", "reconstruction_error"]

_EPS = 1e-6


def gaussian_kl_per_sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) in closed form, summed over all non-batch dims: (B,)."""
    return elementwise_gaussian_kl(mu, logvar).flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over latent dims: per sample (``"none"``) or its batch mean.

    Example:
        >>> gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4))
        tensor(0.)
    """
    kl = gaussian_kl_per_sample(mu, logvar)
    return kl.mean() if reduction == "mean" else kl


def reconstruction_error(x: torch.Tensor, target: torch.Tensor, kind: str = "mse", reduction: str = "mean") -> torch.Tensor:
    """Per-sample reconstruction error summed over voxels (squared error, or Bernoulli BCE).

    Use ``"bce"`` with sigmoid outputs: its gradient w.r.t. the logit is ``p - x`` and does not
    vanish when the sigmoid saturates, while squared error through a sigmoid can get stuck
    predicting an all-black image (most voxels of a masked cardiac slice are 0).

    ``reduction="none"`` returns (B,), ``"mean"`` the batch mean (the Soft-Intro VAE convention).
    """
    if kind == "mse":
        err = F.mse_loss(x, target, reduction="none")
    elif kind == "bce":  # Bernoulli likelihood of targets in [0, 1]; eps keeps gradients alive near 0 and 1
        err = -(target * torch.log(x + _EPS) + (1 - target) * torch.log(1 - x + _EPS))
    else:
        raise ValueError(f"reconstruction kind must be 'mse' or 'bce'; got {kind!r}")
    err = err.flatten(1).sum(1)
    return err.mean() if reduction == "mean" else err
