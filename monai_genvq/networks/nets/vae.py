"""VAEs with a flat latent for 2-D/3-D images: the β-VAE / Attri-VAE conv net and the Soft-Intro ResNet VAE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.networks.layers.factories import Conv, Norm, Pool
from torch import nn

__all__ = ["ConvVAE", "SoftIntroResNetVAE", "SoftIntroResBlock", "VAEOutput", "FlatLatentVAE"]

_LOGVAR_CLAMP = (-30.0, 20.0)  # the one numerical guard on the posterior variance


@dataclass
class VAEOutput:
    """Output of a flat-latent VAE.

    Attributes:
        reconstruction: decoded image, same shape as the input.
        mu: posterior mean (B, latent_dim).
        logvar: posterior log-variance (B, latent_dim).
        z: latent used for decoding (a sample, or ``mu`` when not sampling).
    """

    reconstruction: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class FlatLatentVAE(nn.Module):
    """Shared VAE logic: ``encode -> (mu, logvar)``, reparameterisation, ``decode``, prior samples.

    Subclasses set ``self.encoder`` (image -> (B, 2·latent_dim)) and ``self.decoder``
    (latent -> image) and ``self.latent_dim``.
    """

    latent_dim: int
    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(*_LOGVAR_CLAMP)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def sample(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I)."""
        device = device or next(self.parameters()).device
        return self.decode(torch.randn(n, self.latent_dim, device=device))

    def forward(self, x: torch.Tensor, sample: bool | None = None) -> VAEOutput:
        """Encode, sample (in training mode, or when ``sample=True``) and decode."""
        mu, logvar = self.encode(x)
        sample = self.training if sample is None else sample
        z = self.reparameterize(mu, logvar) if sample else mu
        return VAEOutput(self.decode(z), mu, logvar, z)


def _final_activation(name: str | None) -> nn.Module:
    if name is None or name == "none":
        return nn.Identity()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"output_activation must be 'sigmoid' or None; got {name!r}")


class ConvVAE(FlatLatentVAE):
    """β-VAE / Attri-VAE convolutional VAE (Higgins et al. 2017; Cetin et al. 2023).

    Encoder: 4×4 stride-2 convolutions with ``channels`` (32, 32, 32, 32 in the paper) and ReLU,
    flatten, a fully connected layer of ``hidden`` (256) units, and a linear map to (μ, log σ²) of
    ``latent_dim`` (32). The decoder mirrors it with transposed convolutions.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        image_size: input side (divisible by ``2 ** len(channels)``).
        channels: encoder channels per stage.
        hidden: fully connected width.
        latent_dim: latent dimension.
        output_activation: ``"sigmoid"`` (images in [0, 1]) or None.

    Example:
        >>> net = ConvVAE(spatial_dims=2, image_size=128)
        >>> out = net(torch.rand(2, 1, 128, 128))
        >>> out.reconstruction.shape, out.mu.shape
        (torch.Size([2, 1, 128, 128]), torch.Size([2, 32]))
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        image_size: int = 128,
        channels: Sequence[int] = (32, 32, 32, 32),
        hidden: int = 256,
        latent_dim: int = 32,
        output_activation: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        factor = 2 ** len(channels)
        if image_size % factor:
            raise ValueError(f"image_size {image_size} must be divisible by 2**len(channels) = {factor}")
        self.latent_dim = latent_dim
        conv, convt = Conv[Conv.CONV, spatial_dims], Conv[Conv.CONVTRANS, spatial_dims]
        side = image_size // factor
        self.bottom_shape = (channels[-1],) + (side,) * spatial_dims
        flat = channels[-1] * side**spatial_dims
        enc: list[nn.Module] = []
        cin = in_channels
        for c in channels:
            enc += [conv(cin, c, 4, stride=2, padding=1), nn.ReLU()]
            cin = c
        enc += [nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, flat), nn.ReLU()]
        dec.append(nn.Unflatten(1, self.bottom_shape))
        rev = list(channels[::-1]) + [in_channels]
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            dec.append(convt(a, b, 4, stride=2, padding=1))
            if i < len(rev) - 2:
                dec.append(nn.ReLU())
        dec.append(_final_activation(output_activation))
        self.decoder = nn.Sequential(*dec)


class SoftIntroResBlock(nn.Module):
    """Residual block of the Soft-Intro VAE: conv3-BN-LeakyReLU-conv3-BN + (1×1 conv) skip, LeakyReLU."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        conv, norm = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        self.skip = nn.Identity() if in_channels == out_channels else conv(in_channels, out_channels, 1, bias=False)
        self.body = nn.Sequential(
            conv(in_channels, out_channels, 3, padding=1, bias=False),
            norm(out_channels),
            nn.LeakyReLU(0.2),
            conv(out_channels, out_channels, 3, padding=1, bias=False),
            norm(out_channels),
        )
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class SoftIntroResNetVAE(FlatLatentVAE):
    """ResNet VAE of the Soft-Intro VAE (Daniel & Tamar, "Soft-IntroVAE: Analyzing and Improving the
    Introspective Variational Autoencoder", CVPR 2021), as used by Attri-SIVAE.

    Encoder: 5×5 conv to ``channels[0]`` + BN + LeakyReLU + 2× average pooling, then per further
    channel count a residual block and 2× pooling, a last residual block and a linear map to
    (μ, log σ²). Decoder mirrors it with nearest upsampling.

    The Python defaults are the paper's network for 128 × 128 images (``channels=(64, 128, 256, 512,
    512)``, ``latent_dim=256``). The ``cardiac_attri_sivae`` bundle departs from them for CPU runs:
    ``image_size=64``, ``channels=(16, 32, 64, 128)``, ``latent_dim=64`` (its ``train.json``).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        image_size: input side (divisible by ``2 ** len(channels)``).
        channels: widths per resolution.
        latent_dim: latent dimension.
        output_activation: ``"sigmoid"`` or None.

    Example:
        >>> net = SoftIntroResNetVAE(image_size=64, channels=(8, 16, 32), latent_dim=16)
        >>> net(torch.rand(2, 1, 64, 64)).reconstruction.shape
        torch.Size([2, 1, 64, 64])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        image_size: int = 128,
        channels: Sequence[int] = (64, 128, 256, 512, 512),
        latent_dim: int = 256,
        output_activation: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        factor = 2 ** len(channels)
        if image_size % factor:
            raise ValueError(f"image_size {image_size} must be divisible by 2**len(channels) = {factor}")
        self.latent_dim = latent_dim
        conv, norm, pool = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims], Pool[Pool.AVG, spatial_dims]
        side = image_size // factor
        top = channels[-1]
        self.bottom_shape = (top,) + (side,) * spatial_dims
        flat = top * side**spatial_dims
        enc: list[nn.Module] = [
            conv(in_channels, channels[0], 5, padding=2, bias=False),
            norm(channels[0]),
            nn.LeakyReLU(0.2),
            pool(2),
        ]
        for a, b in zip(channels[:-1], channels[1:]):
            enc += [SoftIntroResBlock(spatial_dims, a, b), pool(2)]
        enc += [SoftIntroResBlock(spatial_dims, top, top), nn.Flatten(), nn.Linear(flat, 2 * latent_dim)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Linear(latent_dim, flat), nn.ReLU(), nn.Unflatten(1, self.bottom_shape)]
        rev = list(channels[::-1])
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [SoftIntroResBlock(spatial_dims, a, b), nn.Upsample(scale_factor=2, mode="nearest")]
        dec += [
            SoftIntroResBlock(spatial_dims, rev[-1], rev[-1]),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(rev[-1], in_channels, 5, padding=2),
            _final_activation(output_activation),
        ]
        self.decoder = nn.Sequential(*dec)
