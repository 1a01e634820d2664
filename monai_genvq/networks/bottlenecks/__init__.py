"""Pluggable bottlenecks: identity (AE), Gaussian (VAE) and the vector-quantizer family."""

from .base import Bottleneck, BottleneckOutput, Quantizer, QuantizerOutput, codebook_perplexity
from .ema_quantizer import EMAQuantizer
from .gaussian import GaussianBottleneck, gaussian_kl
from .gumbel_quantizer import GumbelQuantizer
from .identity import IdentityBottleneck
from .monai_adapter import MonaiQuantizerAdapter
from .vector_quantizer import VectorQuantizer

__all__ = [
    "Bottleneck",
    "BottleneckOutput",
    "Quantizer",
    "QuantizerOutput",
    "codebook_perplexity",
    "IdentityBottleneck",
    "GaussianBottleneck",
    "gaussian_kl",
    "VectorQuantizer",
    "EMAQuantizer",
    "GumbelQuantizer",
    "MonaiQuantizerAdapter",
]
