from .resnet_autoencoder import AutoencoderOutput, ResidualBlock, ResNetAutoencoder

__all__ = ["AutoencoderOutput", "ResidualBlock", "ResNetAutoencoder"]
