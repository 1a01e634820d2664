from __future__ import annotations

import torch
from torch import nn

from monai_genvq.networks.bottlenecks.base import Quantizer

__all__ = ["MonaiQuantizerAdapter"]


class MonaiQuantizerAdapter(nn.Module):
    """Lets any package :class:`Quantizer` replace ``monai.networks.nets.VQVAE``'s quantizer.

    MONAI's VQVAE calls ``quantizer(z) -> (loss, quantized)``, ``quantizer.quantize(z) -> indices``
    and ``quantizer.embed(indices)``, and reads ``quantizer.perplexity``; this wrapper provides
    exactly that on top of our :class:`QuantizerOutput`.

    Args:
        quantizer: the package quantizer to expose.

    Example:
        >>> from monai.networks.nets import VQVAE
        >>> from monai_genvq.networks.bottlenecks import GumbelQuantizer
        >>> net = VQVAE(spatial_dims=2, in_channels=1, out_channels=1, channels=(32, 64),
        ...             num_res_channels=(32, 64), num_res_layers=1, embedding_dim=16, num_embeddings=32,
        ...             downsample_parameters=((2, 4, 1, 1),) * 2, upsample_parameters=((2, 4, 1, 1, 0),) * 2)
        >>> net.quantizer = MonaiQuantizerAdapter(GumbelQuantizer(num_embeddings=32, embedding_dim=16))
        >>> reconstruction, loss = net(torch.randn(1, 1, 32, 32))
    """

    def __init__(self, quantizer: Quantizer) -> None:
        super().__init__()
        self.quantizer = quantizer
        self.perplexity = torch.zeros(())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.quantizer(z)
        if out.perplexity is not None:
            self.perplexity = out.perplexity.detach()
        return out.loss, out.latent

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        return self.quantizer.quantize(z)

    def embed(self, embedding_indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.embed(embedding_indices)
