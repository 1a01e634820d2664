"""Neural-gas vector quantizer: a rank-based soft posterior over the codebook."""

from __future__ import annotations

import math

import torch

from monai_genvq.losses.vq import posterior_weighted_vq_loss
from monai_genvq.networks.bottlenecks.base import Quantizer, QuantizerOutput, codebook_perplexity

__all__ = ["NeuralGasQuantizer", "distance_ranks", "neural_gas_posterior", "neural_gas_lambda"]


def distance_ranks(distances: torch.Tensor) -> torch.Tensor:
    """(N, K) rank of every code by distance: 0 for the nearest, K − 1 for the farthest (ties: lower index first).

    Example:
        >>> distance_ranks(torch.tensor([[4.0, 1.0, 9.0]]))
        tensor([[1, 0, 2]])
    """
    order = distances.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(distances.shape[1], device=distances.device).expand_as(order)
    return ranks.scatter_(1, order, positions)


def neural_gas_posterior(distances: torch.Tensor, lam: float, tolerance: float = 1e-7) -> torch.Tensor:
    """Neural-gas posterior ``q(k | z) = exp(−rank_k(z)/λ) / Σ_j exp(−rank_j(z)/λ)`` (Martinetz et al. 1993).

    Only the ranks of the distances matter, so the weights are the same geometric sequence
    ``(1, e^{−1/λ}, e^{−2/λ}, …)`` re-ordered per latent. λ = 0 gives the hard nearest-code assignment.
    Ranks whose weight relative to the winner is below ``tolerance`` (rank > λ·ln(1/tolerance))
    are set to 0, so only the R nearest codes are ranked (one ``topk`` instead of a full sort
    when λ is small); the kept weights are renormalised.

    Args:
        distances: (N, K) distances (or anything monotone in them) from each latent to each code.
        lam: neighbourhood range λ ≥ 0.
        tolerance: relative weight below which a rank is dropped; 0 keeps every rank.

    Example:
        >>> neural_gas_posterior(torch.tensor([[4.0, 1.0, 9.0]]), lam=1.0)  # ranks 1, 0, 2
        tensor([[0.2447, 0.6652, 0.0900]])
    """
    if lam < 0:
        raise ValueError(f"neural-gas λ must be >= 0, got {lam}.")
    num_codes = distances.shape[1]
    if lam == 0:
        return torch.nn.functional.one_hot(distances.argmin(1), num_codes).to(distances.dtype)
    keep = num_codes if tolerance <= 0 else min(num_codes, int(math.ceil(lam * math.log(1.0 / tolerance))) + 1)
    if keep == num_codes:
        return torch.softmax(distance_ranks(distances).to(distances.dtype) / -lam, dim=1)
    nearest = distances.topk(keep, dim=1, largest=False, sorted=True).indices
    weights = torch.softmax(torch.arange(keep, device=distances.device, dtype=distances.dtype) / -lam, dim=0)
    return torch.zeros_like(distances).scatter_(1, nearest, weights.expand(distances.shape[0], keep))


def neural_gas_lambda(step: int, lambda_init: float, lambda_final: float, decay_steps: int) -> float:
    """Exponential λ schedule of Martinetz et al.: ``λ_t = λ_i (λ_f/λ_i)^{min(t/T, 1)}``; T = 0 keeps λ_i.

    Example:
        >>> round(neural_gas_lambda(50, 10.0, 0.1, 100), 6)
        1.0
    """
    if decay_steps <= 0 or lambda_init == lambda_final:
        return float(lambda_init)
    frac = min(step / decay_steps, 1.0)
    if lambda_final == 0:
        return 0.0 if frac >= 1.0 else float(lambda_init * (1.0 - frac))
    return float(lambda_init * math.exp(frac * math.log(lambda_final / lambda_init)))


class NeuralGasQuantizer(Quantizer):
    """VQ-VAE quantizer trained with the neural-gas posterior (soft, rank-based competition).

    Martinetz, Berkovich & Schulten, "Neural-gas network for vector quantization and its
    application to time-series prediction", IEEE Trans. Neural Networks 1993; used as a VQ-VAE
    posterior in "VQ-VAE with Neural Gas and Fuzzy c-Means" (the seed of this package's method).

    - Posterior: ``q(k | z_e) = exp(−rank(z_e, w_k)/λ) / Σ_j exp(−rank(z_e, w_j)/λ)``.
    - Loss: ``α·E_q‖z_e − sg(w)‖² + η·E_q‖sg(z_e) − w‖²`` (:func:`posterior_weighted_vq_loss`),
      so every code, not only the winner, is pulled towards each latent with weight q; this is
      what keeps codes alive (higher perplexity than k-means VQ).
    - Decoder input: the nearest code (rank 0), with the straight-through estimator; the
      reconstruction gradient reaches the encoder, the codebook learns from the loss only.
    - λ decays per training step from ``lambda_init`` to ``lambda_final`` over ``decay_steps``
      (exponential, as Martinetz et al.); the step count is a buffer, saved in checkpoints. As
      λ → 0 the method becomes vanilla VQ-VAE.

    ``probs`` holds q (B, *spatial, K); ``perplexity`` is that of the hard indices (what the
    decoder and a code prior see).

    Args:
        num_embeddings: number of codes K.
        embedding_dim: code dimension D.
        lambda_init: initial neighbourhood range λ_i.
        lambda_final: final λ_f.
        decay_steps: training steps over which λ decays (0: constant λ_i).
        commitment_cost: α.
        codebook_cost: η.
        init_std: std of the N(0, σ) codebook initialisation; None: uniform(−1/K, 1/K) as VQ-VAE.
        dead_code_steps: see :class:`Quantizer` (0: off).
        collapse_threshold: see :class:`Quantizer` (0: off).
        data_init: seed the codebook from the first training batch (see :class:`Quantizer`).

    Example:
        >>> ng = NeuralGasQuantizer(num_embeddings=512, embedding_dim=64, lambda_init=10.0, decay_steps=1000)
        >>> out = ng(torch.randn(2, 64, 16, 16))
        >>> out.quantized.shape, out.probs.shape
        (torch.Size([2, 64, 16, 16]), torch.Size([2, 16, 16, 512]))
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        lambda_init: float = 1.0,
        lambda_final: float = 0.01,
        decay_steps: int = 0,
        commitment_cost: float = 0.25,
        codebook_cost: float = 1.0,
        init_std: float | None = None,
        dead_code_steps: int = 0,
        collapse_threshold: float = 0.0,
        data_init: bool = False,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, dead_code_steps, collapse_threshold, data_init)
        if lambda_init < 0 or lambda_final < 0 or decay_steps < 0:
            raise ValueError(
                f"need lambda_init, lambda_final, decay_steps >= 0, got {lambda_init}, {lambda_final}, {decay_steps}."
            )
        self.lambda_init = float(lambda_init)
        self.lambda_final = float(lambda_final)
        self.decay_steps = int(decay_steps)
        self.commitment_cost = commitment_cost
        self.codebook_cost = codebook_cost
        self.init_codebook(init_std)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def current_lambda(self) -> float:
        """λ at the current training step."""
        return neural_gas_lambda(int(self.step), self.lambda_init, self.lambda_final, self.decay_steps)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat, shape_last = self.flatten(z)
        self.prepare_codebook(flat)
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = flat.float()
            scores = self.code_scores(flat.detach())  # −‖z − w‖² up to a per-row constant: same ranks
            probs = neural_gas_posterior(-scores, self.current_lambda)
            indices = scores.argmax(1)
            loss = posterior_weighted_vq_loss(flat, self.codebook, probs, self.commitment_cost, self.codebook_cost)
            codes = self.embedding(indices)
        if self.training:
            self.step += 1
        quantized = flat + (codes - flat).detach()
        return QuantizerOutput(
            latent=self.unflatten(quantized, shape_last).to(z.dtype),
            loss=loss,
            indices=indices.reshape(shape_last[:-1]),
            probs=probs.reshape(*shape_last[:-1], self.num_embeddings),
            perplexity=codebook_perplexity(self.num_embeddings, indices=indices),
            **self.usage_report(flat, indices),
        )
