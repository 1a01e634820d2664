from __future__ import annotations

import torch

from monai_genvq.networks.bottlenecks.base import Quantizer, QuantizerOutput

__all__ = ["VectorQuantizer"]


class VectorQuantizer(Quantizer):
    """VQ-VAE quantizer: nearest code (k-means assignment) with a straight-through gradient.

    van den Oord et al., "Neural Discrete Representation Learning", NeurIPS 2017. The loss is
    ``‖sg(z) − e‖² + commitment_cost·‖z − sg(e)‖²`` (means over elements).

    Args:
        num_embeddings: number of codes K.
        embedding_dim: code dimension D (latent channels).
        commitment_cost: weight β of the commitment term (paper: 0.25).
        init_std: standard deviation of the N(0, σ) codebook initialisation; None uses
            uniform(−1/K, 1/K) as the original implementation.
        dead_code_steps: re-seed codes unused for this many training steps (0: off, see :class:`Quantizer`).
        collapse_threshold: warn/flag when batch perplexity falls below this many codes (0: off).
        data_init: seed the codebook from the first training batch (see :class:`Quantizer`).

    Example:
        >>> vq = VectorQuantizer(num_embeddings=512, embedding_dim=64)
        >>> out = vq(torch.randn(2, 64, 16, 16))
        >>> out.quantized.shape, out.indices.shape
        (torch.Size([2, 64, 16, 16]), torch.Size([2, 16, 16]))
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        commitment_cost: float = 0.25,
        init_std: float | None = None,
        dead_code_steps: int = 0,
        collapse_threshold: float = 0.0,
        data_init: bool = False,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, dead_code_steps, collapse_threshold, data_init)
        self.commitment_cost = commitment_cost
        self.init_codebook(init_std)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat, _ = self.flatten(z)
        self.prepare_codebook(flat)
        with torch.autocast(device_type=z.device.type, enabled=False):
            indices = self.code_scores(flat).argmax(1)
            codes = self.embedding(indices)
            flat = flat.float()
            loss = (codes - flat.detach()).square().mean() + self.commitment_cost * (
                flat - codes.detach()
            ).square().mean()
        return self.straight_through(z, flat, codes, indices, loss)
