from .cardiac_vae import ConvVAE, FlatLatentVAE, SoftIntroResBlock, SoftIntroResNetVAE, VAEOutput
from .resnet_autoencoder import AutoencoderOutput, InputStatistics, ResidualBlock, ResNetAutoencoder

__all__ = ["AutoencoderOutput", "InputStatistics", "ResidualBlock", "ResNetAutoencoder"]
__all__ += ["ConvVAE", "FlatLatentVAE", "SoftIntroResBlock", "SoftIntroResNetVAE", "VAEOutput"]
