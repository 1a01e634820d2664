"""Stage-2 priors over code-index maps (gated PixelCNN, MONAI transformer) and the stage-1 adapter."""

from __future__ import annotations

from monai_genvq.networks.priors.base import CodePrior, VQStage1, load_model_weights
from monai_genvq.networks.priors.pixelcnn import GatedMaskedConv2d, GatedPixelCNNPrior
from monai_genvq.networks.priors.transformer import TransformerCodePrior

__all__ = [
    "CodePrior",
    "GatedMaskedConv2d",
    "GatedPixelCNNPrior",
    "TransformerCodePrior",
    "VQStage1",
    "load_model_weights",
]
