"""ELBO pieces shared by the VAE and Soft-Intro VAE engines."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kl", "reconstruction_error"]

_EPS = 1e-6


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(N(μ, diag exp(logvar)) ‖ N(0, I)) in closed form (Kingma & Welling 2014, appendix B).

    The one implementation of the Gaussian KL in the package.

    Args:
        mu: posterior mean (B, ...).
        logvar: posterior log-variance, same shape.
        reduction: ``"elementwise"`` (no reduction, same shape as ``mu``), ``"per_sample"`` (summed
            over all non-batch dims: (B,)) or ``"mean"`` (the batch mean of the per-sample sums).

    Example:
        >>> gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4))
        tensor(0.)
        >>> gaussian_kl(torch.ones(2, 3), torch.zeros(2, 3), "per_sample")
        tensor([1.5000, 1.5000])
    """
    kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)
    if reduction == "elementwise":
        return kl
    if reduction not in ("per_sample", "mean"):
        raise ValueError(f"reduction must be 'elementwise', 'per_sample' or 'mean'; got {reduction!r}")
    kl = kl.flatten(1).sum(1)
    return kl.mean() if reduction == "mean" else kl


def reconstruction_error(
    x: torch.Tensor,
    target: torch.Tensor,
    kind: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "mse",
    reduction: str = "mean",
) -> torch.Tensor:
    """Per-sample reconstruction error summed over voxels (squared error, or Bernoulli BCE).

    Use ``"bce"`` with sigmoid outputs: its gradient w.r.t. the logit is ``p - x`` and does not
    vanish when the sigmoid saturates, while squared error through a sigmoid can get stuck
    predicting an all-black image (most voxels of a masked cardiac slice are 0).

    ``kind`` may also be a callable ``(x, target) -> (B,)`` giving the per-sample error itself, e.g.
    :class:`~monai_genvq.losses.PerceptualReconstructionLoss` (MSE + δ·perceptual, Attri-SIVAE Table 2).

    ``reduction="none"`` returns (B,), ``"mean"`` the batch mean (the Soft-Intro VAE convention).

    Example:
        >>> reconstruction_error(torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), "mse", "none")
        tensor([4., 4.])
        >>> reconstruction_error(torch.ones(2, 3), torch.zeros(2, 3), lambda a, b: (a - b).sum(1))
        tensor(3.)
    """
    if callable(kind):
        err = kind(x, target)
        if err.shape != (x.shape[0],):
            raise ValueError(
                f"a reconstruction callable must return one error per sample {(x.shape[0],)}; got {tuple(err.shape)}"
            )
        return err.mean() if reduction == "mean" else err
    if kind == "mse":
        err = F.mse_loss(x, target, reduction="none")
    elif kind == "bce":  # Bernoulli likelihood of targets in [0, 1]; eps keeps gradients alive near 0 and 1
        err = -(target * torch.log(x + _EPS) + (1 - target) * torch.log(1 - x + _EPS))
    else:
        raise ValueError(f"reconstruction kind must be 'mse' or 'bce'; got {kind!r}")
    err = err.flatten(1).sum(1)
    return err.mean() if reduction == "mean" else err
