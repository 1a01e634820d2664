from __future__ import annotations

import torch

from monai_genvq.networks.bottlenecks.base import Bottleneck, BottleneckOutput

__all__ = ["IdentityBottleneck"]


class IdentityBottleneck(Bottleneck):
    """Plain autoencoder bottleneck: passes the latent through with zero loss.

    Example:
        >>> out = IdentityBottleneck()(torch.randn(2, 64, 16, 16))
        >>> out.latent.shape, float(out.loss)
        (torch.Size([2, 64, 16, 16]), 0.0)
    """

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        return BottleneckOutput(latent=z, loss=z.new_zeros(()))
