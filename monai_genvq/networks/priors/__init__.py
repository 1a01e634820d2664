"""Stage-2 priors over code-index maps (gated PixelCNN, MONAI transformer) and the stage-1 adapter."""

from .base import CodePrior, VQStage1, load_model_weights
from .pixelcnn import GatedMaskedConv2d, GatedPixelCNNPrior
from .transformer import TransformerCodePrior

__all__ = ["CodePrior", "VQStage1", "load_model_weights", "GatedMaskedConv2d", "GatedPixelCNNPrior", "TransformerCodePrior"]
