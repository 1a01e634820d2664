from .cardiac_vae import ConvVAE, FlatLatentVAE, SoftIntroResBlock, SoftIntroResNetVAE, VAEOutput
from .resnet_autoencoder import AutoencoderOutput, InputStatistics, ResidualBlock, ResNetAutoencoder

__all__ = ["AutoencoderOutput", "InputStatistics", "ResidualBlock", "ResNetAutoencoder"]
__all__ += ["ConvVAE", "FlatLatentVAE", "SoftIntroResBlock", "SoftIntroResNetVAE", "VAEOutput"]
from .anatomical_prior import (
    ImageSegmentationOutput,
    ImageSegmentationVAE,
    LabelPriorOutput,
    LabelPriorVAE,
    PriorConvDecoder,
    PriorConvEncoder,
)

__all__ += [
    "ImageSegmentationOutput",
    "ImageSegmentationVAE",
    "LabelPriorOutput",
    "LabelPriorVAE",
    "PriorConvDecoder",
    "PriorConvEncoder",
]
