"""Fuzzy c-means vector quantizer: membership posterior with fuzzifier m and three selectable losses."""

from __future__ import annotations

import torch

from monai_genvq.losses.vq import posterior_weighted_vq_loss
from monai_genvq.networks.bottlenecks.base import Quantizer, QuantizerOutput, codebook_perplexity

__all__ = ["FuzzyCMeansQuantizer", "fuzzy_memberships", "fuzzy_loss_weights", "FCM_LOSSES", "FCM_OUTPUTS"]

FCM_LOSSES = ("original", "posterior", "normalised")
FCM_OUTPUTS = ("hard", "soft")
_MIN_SQ_DISTANCE = 1e-12  # the one numerical guard: squared distances below this count as "on the prototype"


def fuzzy_memberships(sq_distances: torch.Tensor, fuzzifier: float) -> torch.Tensor:
    """Fuzzy c-means memberships ``u_k = (Σ_c (d_k/d_c)^{2/(m−1)})^{−1}`` (Bezdek 1981), in log space.

    With squared distances ``D = d²`` this is ``u = softmax(−log D / (m − 1))`` over codes, which is
    finite for every m > 1 (large logits are handled by the softmax's max-shift) and tends to the
    hard nearest-code assignment as m → 1; ``fuzzifier == 1`` returns that limit exactly. A latent
    sitting on a prototype (D = 0) gets membership 1 there: D is floored at 1e-12, which also keeps
    the gradient finite (zero inside the floor).

    Args:
        sq_distances: (N, K) squared distances ``‖z − w_k‖²``.
        fuzzifier: m ≥ 1.

    Example:
        >>> fuzzy_memberships(torch.tensor([[1.0, 4.0]]), fuzzifier=2.0)  # u ∝ 1/D: (4/5, 1/5)
        tensor([[0.8000, 0.2000]])
    """
    if fuzzifier < 1:
        raise ValueError(f"the fuzzifier m must be >= 1, got {fuzzifier}.")
    if fuzzifier == 1:
        return torch.nn.functional.one_hot(sq_distances.argmin(1), sq_distances.shape[1]).to(sq_distances.dtype)
    logits = sq_distances.clamp_min(_MIN_SQ_DISTANCE).log() / -(fuzzifier - 1.0)
    return torch.softmax(logits, dim=1)


def fuzzy_loss_weights(memberships: torch.Tensor, fuzzifier: float, loss: str) -> torch.Tensor:
    """Per-code weights of the three fuzzy losses.

    - ``"original"``: ``u^m`` — Bezdek's objective ``J_m = Σ_k u_k^m ‖z − w_k‖²``;
    - ``"posterior"``: ``u`` — the expected distance under the membership posterior;
    - ``"normalised"``: ``u^m / Σ_c u_c^m`` — the m-power posterior renormalised to sum to 1.

    Example:
        >>> fuzzy_loss_weights(torch.tensor([[0.8, 0.2]]), 2.0, "normalised")
        tensor([[0.9412, 0.0588]])
    """
    if loss not in FCM_LOSSES:
        raise ValueError(f"fuzzy c-means loss must be one of {FCM_LOSSES}, got {loss!r}.")
    if loss == "posterior":
        return memberships
    powered = memberships.pow(fuzzifier)
    if loss == "original":
        return powered
    return powered / powered.sum(1, keepdim=True)  # sum >= K^(1-m) > 0, no guard needed


class FuzzyCMeansQuantizer(Quantizer):
    """VQ-VAE quantizer with a fuzzy c-means membership posterior.

    Bezdek, "Pattern Recognition with Fuzzy Objective Function Algorithms", 1981 (fuzzy c-means);
    used as a VQ-VAE posterior in "VQ-VAE with Neural Gas and Fuzzy c-Means" (the seed of this
    package's method).

    - Posterior: memberships ``u_k(z) = (Σ_c (‖z − w_k‖/‖z − w_c‖)^{2/(m−1)})^{−1}``
      (:func:`fuzzy_memberships`, computed in log space; safe at a prototype and as m → 1).
    - Loss: ``α·Σ_k ω_k‖z − sg(w_k)‖² + η·Σ_k ω_k‖sg(z) − w_k‖²`` with ω from ``loss``: the
      original ``u^m``, the posterior ``u`` or the normalised ``u^m/Σu^m`` (:func:`fuzzy_loss_weights`).
    - Decoder input (``output``): ``"hard"`` (default) — the code of highest membership (the
      nearest code) with the straight-through estimator, memberships only weigh the loss;
      ``"soft"`` — the membership-weighted mean ``Σ_k u_k w_k``, differentiable in z and in every
      code (no straight-through), also in evaluation.

    Args:
        num_embeddings: number of codes K.
        embedding_dim: code dimension D.
        fuzzifier: m > 1 (m → 1: hard k-means; large m: uniform memberships).
        loss: "original", "posterior" or "normalised".
        output: "hard" or "soft", what the decoder consumes.
        commitment_cost: α.
        codebook_cost: η.
        init_std: std of the N(0, σ) codebook initialisation; None: uniform(−1/K, 1/K) as VQ-VAE.
        dead_code_steps: see :class:`Quantizer` (0: off).
        collapse_threshold: see :class:`Quantizer` (0: off).
        data_init: seed the codebook from the first training batch (see :class:`Quantizer`); on by
            default: with the VQ-VAE's tiny uniform(−1/K, 1/K) codebook every latent is nearly
            equidistant from all codes, memberships are uniform, every code gets the same update
            and the codes never separate.

    Example:
        >>> fcm = FuzzyCMeansQuantizer(num_embeddings=512, embedding_dim=64, fuzzifier=1.5, loss="normalised")
        >>> out = fcm(torch.randn(2, 64, 16, 16))
        >>> out.probs.sum(-1).allclose(torch.ones(2, 16, 16))
        True
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        fuzzifier: float = 1.5,
        loss: str = "original",
        output: str = "hard",
        commitment_cost: float = 0.25,
        codebook_cost: float = 1.0,
        init_std: float | None = None,
        dead_code_steps: int = 0,
        collapse_threshold: float = 0.0,
        data_init: bool = True,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, dead_code_steps, collapse_threshold, data_init)
        if fuzzifier < 1:
            raise ValueError(f"the fuzzifier m must be >= 1, got {fuzzifier}.")
        if loss not in FCM_LOSSES:
            raise ValueError(f"loss must be one of {FCM_LOSSES}, got {loss!r}.")
        if output not in FCM_OUTPUTS:
            raise ValueError(f"output must be one of {FCM_OUTPUTS}, got {output!r}.")
        self.fuzzifier = float(fuzzifier)
        self.loss_type = loss
        self.output = output
        self.commitment_cost = commitment_cost
        self.codebook_cost = codebook_cost
        self.init_codebook(init_std)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat, shape_last = self.flatten(z)
        self.prepare_codebook(flat)
        soft = self.output == "soft"
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = flat.float()
            # the soft output needs memberships differentiable in z and w; the hard one does not
            sq_distances = self.squared_distances(flat if soft else flat.detach())
            if not soft:
                sq_distances = sq_distances.detach()
            memberships = fuzzy_memberships(sq_distances, self.fuzzifier)
            weights = fuzzy_loss_weights(memberships, self.fuzzifier, self.loss_type)
            loss = posterior_weighted_vq_loss(flat, self.codebook, weights, self.commitment_cost, self.codebook_cost)
            indices = memberships.detach().argmax(1)
            if soft:
                quantized = memberships @ self.codebook.float()
            else:
                quantized = flat + (self.embedding(indices) - flat).detach()
        probs = memberships.detach()
        return QuantizerOutput(
            latent=self.unflatten(quantized, shape_last).to(z.dtype),
            loss=loss,
            indices=indices.reshape(shape_last[:-1]),
            probs=probs.reshape(*shape_last[:-1], self.num_embeddings),
            perplexity=codebook_perplexity(self.num_embeddings, indices=indices),
            **self.usage_report(flat, indices),
        )
