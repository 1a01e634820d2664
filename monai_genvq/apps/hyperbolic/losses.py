"""Losses of the hyperbolic VAE (Hsu et al. 2021): hierarchical triplet loss and the ELBO terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from monai_genvq.apps.hyperbolic.manifold import as_curvature, dist
from monai_genvq.utils.precision import float32_region

__all__ = ["hierarchical_triplet_loss", "reconstruction_nll"]


@float32_region
def hierarchical_triplet_loss(
    parent: torch.Tensor,
    child: torch.Tensor,
    negative: torch.Tensor,
    c: float = 1.0,
    margin: float = 0.1,
    squared: bool = False,
) -> torch.Tensor:
    """``mean max(0, d(parent, child) - d(parent, negative) + margin)`` with Poincaré distances.

    A child patch lies inside its parent, the negative elsewhere, so a child must embed closer to
    its parent than an unrelated patch does (Hsu et al. 2021, §3.4). ``c = 0`` uses the flat model.
    ``squared`` compares squared distances (the form in Hsu et al.'s released code).

    Example:
        >>> p = torch.zeros(1, 2); ch = torch.tensor([[0.1, 0.0]]); n = torch.tensor([[0.5, 0.0]])
        >>> float(hierarchical_triplet_loss(p, ch, n, margin=0.0))
        0.0
    """
    k = as_curvature(c, parent)
    d_pos, d_neg = dist(parent, child, k), dist(parent, negative, k)
    if squared:
        d_pos, d_neg = d_pos.square(), d_neg.square()
    return F.relu(d_pos - d_neg + margin).mean()


@float32_region
def reconstruction_nll(
    recon: torch.Tensor, target: torch.Tensor, likelihood: str = "gaussian", scale: float = 0.1
) -> torch.Tensor:
    """Per-sample negative log-likelihood (up to constants), summed over voxels.

    Args:
        recon: decoder output (mean, or logits for "bernoulli").
        target: patches (in [0, 1] for "bernoulli").
        likelihood: "gaussian" (fixed σ = ``scale``) or "bernoulli".
    """
    if likelihood == "gaussian":
        nll = (recon - target).square() / (2 * scale**2)
    elif likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(recon, target.clamp(0, 1), reduction="none")
    else:
        raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
    return nll.flatten(1).sum(1)
