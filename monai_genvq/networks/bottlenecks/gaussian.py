from __future__ import annotations

import torch
from torch import nn

from monai_genvq.losses.elbo import gaussian_kl
from monai_genvq.networks.bottlenecks.base import Bottleneck, BottleneckOutput

__all__ = ["GaussianBottleneck"]


class GaussianBottleneck(Bottleneck):
    """VAE bottleneck: a 1×1 convolution gives a diagonal Gaussian posterior per latent position.

    Training samples ``z = mean + exp(logvar / 2)·ε``; evaluation returns the posterior mean so
    reconstructions and metrics are deterministic. The loss is ``kl_weight`` times the KL to
    N(0, I) averaged over latent elements (so its scale does not depend on the latent size).

    Args:
        spatial_dims: number of spatial dimensions of the latent (1, 2 or 3).
        channels: latent channels C (input and output).
        kl_weight: weight β of the KL term.
        logvar_clamp: log-variance is clamped to ±this for numerical safety.

    Example:
        >>> bottleneck = GaussianBottleneck(spatial_dims=2, channels=64).eval()
        >>> bottleneck(torch.randn(2, 64, 16, 16)).latent.shape
        torch.Size([2, 64, 16, 16])
    """

    def __init__(self, spatial_dims: int, channels: int, kl_weight: float = 1e-3, logvar_clamp: float = 10.0) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
        self.to_posterior = conv(channels, 2 * channels, kernel_size=1)
        self.kl_weight = kl_weight
        self.logvar_clamp = logvar_clamp

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        mean, logvar = self.to_posterior(z).chunk(2, dim=1)
        logvar = logvar.clamp(-self.logvar_clamp, self.logvar_clamp)
        latent = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
        loss = self.kl_weight * gaussian_kl(mean.float(), logvar.float(), "elementwise").mean()  # float32 under AMP
        return BottleneckOutput(latent=latent, loss=loss, mean=mean, logvar=logvar)
