"""Networks: the ResNet autoencoder with a pluggable bottleneck, and image VAEs (β-VAE, Soft-Intro ResNet VAE)."""

from __future__ import annotations

from monai_genvq.networks.nets.resnet_autoencoder import (
    AutoencoderOutput,
    InputStatistics,
    ResidualBlock,
    ResNetAutoencoder,
)
from monai_genvq.networks.nets.vae import ConvVAE, FlatLatentVAE, SoftIntroResBlock, SoftIntroResNetVAE, VAEOutput

__all__ = [
    "AutoencoderOutput",
    "ConvVAE",
    "FlatLatentVAE",
    "InputStatistics",
    "ResNetAutoencoder",
    "ResidualBlock",
    "SoftIntroResBlock",
    "SoftIntroResNetVAE",
    "VAEOutput",
]
