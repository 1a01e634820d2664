from __future__ import annotations

import torch
import torch.distributed as dist

from monai_genvq.networks.bottlenecks.base import Quantizer, QuantizerOutput

__all__ = ["EMAQuantizer"]


class EMAQuantizer(Quantizer):
    """VQ-VAE quantizer whose codebook follows exponential moving averages of its assigned latents.

    van den Oord et al. 2017 (appendix A.1); the codebook gets no gradient, only the commitment
    loss ``commitment_cost·‖z − sg(e)‖²`` is returned. Cluster sizes use Laplace smoothing so an
    unused code never divides by zero. Under DDP the statistics are all-reduced.

    Every code starts as one pseudo-observation at its initial position (``cluster_size`` 1,
    ``embedding_sum`` = the code), the same statistics a re-seeded code gets, so a code's position
    is always the decayed mean of what was assigned to it. Starting the counts at 0 while the sums
    hold the codes (as this class once did, and some public implementations) divides every code unused
    in the first step by ≈ ``epsilon``: it jumps to ‖e‖/ε ≈ 10⁵·‖e‖, is never selected again, and
    the codebook collapses onto the few codes the first batch used.

    Codebook health: the N(0, 1) initial codes are far from a fresh encoder's small outputs, so
    few codes win the first assignments and the rest stay unused; ``data_init=True`` (codes drawn
    from the first batch's encoder outputs) and ``dead_code_steps`` (re-seed unused codes) keep
    the codebook in use (measured in ``bundles/vq_quantizers/docs/README.md``).

    Args:
        num_embeddings: number of codes K.
        embedding_dim: code dimension D.
        commitment_cost: weight β of the commitment term.
        decay: EMA decay γ in [0, 1) (van den Oord et al.: 0.99); lower follows the latents faster.
        epsilon: Laplace smoothing constant (> 0) of the cluster sizes.
        dead_code_steps: re-seed codes unused for this many training steps (0: off, see :class:`Quantizer`).
        collapse_threshold: warn/flag when batch perplexity falls below this many codes (0: off).
        data_init: seed the codebook from the first training batch (see :class:`Quantizer`).

    Example:
        >>> vq = EMAQuantizer(num_embeddings=512, embedding_dim=64)
        >>> vq(torch.randn(2, 64, 8, 8)).indices.shape
        torch.Size([2, 8, 8])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        commitment_cost: float = 0.25,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        dead_code_steps: int = 0,
        collapse_threshold: float = 0.0,
        data_init: bool = False,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, dead_code_steps, collapse_threshold, data_init)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMAQuantizer decay must be in [0, 1), got {decay}.")
        if epsilon <= 0:
            raise ValueError(f"EMAQuantizer epsilon (Laplace smoothing) must be > 0, got {epsilon}.")
        self.commitment_cost = commitment_cost
        self.decay = decay
        self.epsilon = epsilon
        embedding = torch.randn(num_embeddings, embedding_dim)
        self.register_buffer("embedding", embedding)
        self.register_buffer("cluster_size", torch.ones(num_embeddings))  # one pseudo-observation per code
        self.register_buffer("embedding_sum", embedding.clone())

    @property
    def codebook(self) -> torch.Tensor:
        return self.embedding

    @torch.no_grad()
    def reseed_codes(self, codes: torch.Tensor, vectors: torch.Tensor) -> None:
        """Re-seed codes and restart their EMA statistics as one assigned latent each."""
        self.embedding[codes] = vectors
        self.embedding_sum[codes] = vectors
        self.cluster_size[codes] = 1.0

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        counts = torch.bincount(indices, minlength=self.num_embeddings).float()
        sums = torch.zeros_like(self.embedding_sum).index_add_(0, indices, flat)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embedding_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
        self.embedding.copy_(self.embedding_sum / smoothed.unsqueeze(1))

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat, _ = self.flatten(z)
        self.prepare_codebook(flat)
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = flat.float()
            indices = self.code_scores(flat).argmax(1)
            if self.training:
                self._update(flat.detach(), indices)
            codes = self.embedding[indices]
            loss = self.commitment_cost * (flat - codes).square().mean()
        return self.straight_through(z, flat, codes, indices, loss)
