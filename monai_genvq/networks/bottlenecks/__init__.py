"""Pluggable bottlenecks: identity (AE), Gaussian (VAE) and the vector-quantizer family."""

from __future__ import annotations

from monai_genvq.networks.bottlenecks.base import (
    Bottleneck,
    BottleneckOutput,
    CodebookCollapseWarning,
    Quantizer,
    QuantizerOutput,
    codebook_perplexity,
    codebook_statistics,
    codebook_use,
)
from monai_genvq.networks.bottlenecks.ema_quantizer import EMAQuantizer
from monai_genvq.networks.bottlenecks.fuzzy_cmeans import (
    FCM_LOSSES,
    FCM_OUTPUTS,
    FuzzyCMeansQuantizer,
    fuzzy_loss_weights,
    fuzzy_memberships,
)
from monai_genvq.networks.bottlenecks.gaussian import GaussianBottleneck
from monai_genvq.networks.bottlenecks.global_gaussian import (
    GLOBAL_EVAL_MODES,
    GLOBAL_KL_REDUCTIONS,
    GlobalGaussianBottleneck,
)
from monai_genvq.networks.bottlenecks.gumbel_quantizer import GumbelQuantizer
from monai_genvq.networks.bottlenecks.identity import IdentityBottleneck
from monai_genvq.networks.bottlenecks.monai_adapter import MonaiQuantizerAdapter
from monai_genvq.networks.bottlenecks.neural_gas import (
    NeuralGasQuantizer,
    distance_ranks,
    neural_gas_lambda,
    neural_gas_posterior,
)
from monai_genvq.networks.bottlenecks.sampled_expectation import (
    SE_EVAL_MODES,
    SampledExpectationQuantizer,
    distance_posterior,
    sample_code_mean,
)
from monai_genvq.networks.bottlenecks.soft_assignment import gumbel_quantiles, sample_gumbel, soft_codebook_assignment
from monai_genvq.networks.bottlenecks.vector_quantizer import VectorQuantizer

__all__ = [
    "Bottleneck",
    "BottleneckOutput",
    "CodebookCollapseWarning",
    "EMAQuantizer",
    "FCM_LOSSES",
    "FCM_OUTPUTS",
    "FuzzyCMeansQuantizer",
    "GLOBAL_EVAL_MODES",
    "GLOBAL_KL_REDUCTIONS",
    "GaussianBottleneck",
    "GlobalGaussianBottleneck",
    "GumbelQuantizer",
    "IdentityBottleneck",
    "MonaiQuantizerAdapter",
    "NeuralGasQuantizer",
    "Quantizer",
    "QuantizerOutput",
    "SE_EVAL_MODES",
    "SampledExpectationQuantizer",
    "VectorQuantizer",
    "codebook_perplexity",
    "codebook_statistics",
    "codebook_use",
    "distance_posterior",
    "distance_ranks",
    "fuzzy_loss_weights",
    "fuzzy_memberships",
    "gumbel_quantiles",
    "neural_gas_lambda",
    "neural_gas_posterior",
    "sample_code_mean",
    "sample_gumbel",
    "soft_codebook_assignment",
]
