from .resnet_autoencoder import AutoencoderOutput, InputStatistics, ResidualBlock, ResNetAutoencoder

__all__ = ["AutoencoderOutput", "InputStatistics", "ResidualBlock", "ResNetAutoencoder"]
