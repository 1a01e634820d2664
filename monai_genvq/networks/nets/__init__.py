from .resnet_autoencoder import AutoencoderOutput, ResidualBlock, ResNetAutoencoder

__all__ = ["AutoencoderOutput", "ResidualBlock", "ResNetAutoencoder"]
from .cardiac_vae import ConvVAE, FlatLatentVAE, SoftIntroResBlock, SoftIntroResNetVAE, VAEOutput

__all__ += ["ConvVAE", "FlatLatentVAE", "SoftIntroResBlock", "SoftIntroResNetVAE", "VAEOutput"]
