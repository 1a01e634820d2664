"""Pluggable bottlenecks: identity (AE), Gaussian (VAE) and the vector-quantizer family."""

from .base import Bottleneck, BottleneckOutput, Quantizer, QuantizerOutput, codebook_perplexity
from .ema_quantizer import EMAQuantizer
from .gaussian import GaussianBottleneck, gaussian_kl
from .gumbel_quantizer import GumbelQuantizer
from .identity import IdentityBottleneck
from .monai_adapter import MonaiQuantizerAdapter
from .vector_quantizer import VectorQuantizer
from .base import CodebookCollapseWarning, codebook_statistics, codebook_use
from .fuzzy_cmeans import FuzzyCMeansQuantizer, fuzzy_loss_weights, fuzzy_memberships
from .neural_gas import NeuralGasQuantizer, distance_ranks, neural_gas_lambda, neural_gas_posterior
from .sampled_expectation import SampledExpectationQuantizer, distance_posterior, sample_code_mean

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
    "CodebookCollapseWarning",
    "codebook_statistics",
    "codebook_use",
    "NeuralGasQuantizer",
    "distance_ranks",
    "neural_gas_lambda",
    "neural_gas_posterior",
    "FuzzyCMeansQuantizer",
    "fuzzy_loss_weights",
    "fuzzy_memberships",
    "SampledExpectationQuantizer",
    "distance_posterior",
    "sample_code_mean",
]
