"""Vector-quantisation losses shared by the posterior-weighted quantizers (neural gas, fuzzy c-means)."""

from __future__ import annotations

import torch

__all__ = ["posterior_weighted_vq_loss"]


def posterior_weighted_vq_loss(
    flat: torch.Tensor,
    codebook: torch.Tensor,
    weights: torch.Tensor,
    commitment_cost: float = 0.25,
    codebook_cost: float = 1.0,
) -> torch.Tensor:
    """``α·E_w‖z − sg(e)‖² + η·E_w‖sg(z) − e‖²``: the VQ-VAE loss with every code weighted.

    With one-hot ``weights`` on the nearest code this is exactly the VQ-VAE loss of van den Oord
    et al. 2017 (``commitment_cost`` = β); with a neural-gas or fuzzy posterior every code is
    pulled towards the latent in proportion to its weight. ``E_w f = Σ_k w_k f_k`` (weights need
    not sum to 1, e.g. the fuzzy ``u^m``). The weights are treated as constants (detached).

    Computed without an (N, K) tensor that carries gradients:
    ``Σ_k w_k‖z − e_k‖² = s‖z‖² − 2 z·(wE) + w·‖e‖²`` with ``s = Σ_k w_k``.
    Averaged over the N latents and the D channels, like the element-wise mean of the VQ-VAE loss.

    Args:
        flat: (N, D) latents z (float32).
        codebook: (K, D) codes e.
        weights: (N, K) non-negative weights.
        commitment_cost: α, weight of the term that reaches the encoder.
        codebook_cost: η, weight of the term that reaches the codebook.

    Example:
        >>> codebook = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> z = torch.tensor([[1.0, 0.0]])
        >>> float(posterior_weighted_vq_loss(z, codebook, torch.tensor([[0.5, 0.5]]), 1.0, 1.0))
        0.5
    """
    weights = weights.detach().to(flat.dtype)
    codebook = codebook.to(flat.dtype)
    n, d = flat.shape
    mass = weights.sum(1)
    code_sq = (codebook * codebook).sum(1)
    z_sq = (flat * flat).sum(1)
    z_det, cb_det = flat.detach(), codebook.detach()
    commitment = mass * z_sq - 2 * (flat * (weights @ cb_det)).sum(1) + weights @ code_sq.detach()
    codebook_term = mass * z_sq.detach() - 2 * (z_det * (weights @ codebook)).sum(1) + weights @ code_sq
    return (commitment_cost * commitment.sum() + codebook_cost * codebook_term.sum()) / (n * d)
