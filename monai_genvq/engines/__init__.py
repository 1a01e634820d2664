"""Ignite engines (monai.engines subclasses) of the package's methods."""

from .autoencoder import LOSS_TERMS, AutoencoderTrainer, PrepareAutoencoderBatch, ReconstructionInferer, loss_terms
from .prior import CodePriorTrainer, prior_loss_terms

__all__ = ["AutoencoderTrainer", "PrepareAutoencoderBatch", "ReconstructionInferer", "loss_terms", "LOSS_TERMS"]
from .vae import (
    VAE_LOSS_TERMS,
    PrepareVAEBatch,
    SoftIntroTrainer,
    VAEEvaluator,
    VAEReconstructionInferer,
    VAETrainer,
    vae_loss_terms,
)

__all__ += [
    "PrepareVAEBatch",
    "SoftIntroTrainer",
    "VAEEvaluator",
    "VAEReconstructionInferer",
    "VAETrainer",
    "VAE_LOSS_TERMS",
    "vae_loss_terms",
]
__all__ += ["CodePriorTrainer", "prior_loss_terms"]
from .anatomical_prior import (
    ANATOMICAL_PRIOR_LOSS_TERMS,
    AnatomicalPriorInferer,
    ImageModelTrainer,
    LabelPriorTrainer,
    PrepareImageBatch,
    PrepareLabelBatch,
    anatomical_prior_loss_terms,
    atlas_intensity_init,
    refine_latent,
    render_from_prior,
)

__all__ += [
    "ANATOMICAL_PRIOR_LOSS_TERMS",
    "AnatomicalPriorInferer",
    "ImageModelTrainer",
    "LabelPriorTrainer",
    "PrepareImageBatch",
    "PrepareLabelBatch",
    "anatomical_prior_loss_terms",
    "atlas_intensity_init",
    "refine_latent",
    "render_from_prior",
]
from .hyperbolic import HYPERBOLIC_LOSS_TERMS, HyperbolicVAETrainer, hyperbolic_loss_terms  # noqa: E402
from .hyperbolic_segmentation import HyperbolicSegmentation, write_comparison_table  # noqa: E402

__all__ += ["HYPERBOLIC_LOSS_TERMS", "HyperbolicVAETrainer", "hyperbolic_loss_terms", "HyperbolicSegmentation", "write_comparison_table"]
from .inferers import HyperbolicClusterInferer, OutputInferer, cluster_embedding  # noqa: E402

__all__ += ["HyperbolicClusterInferer", "OutputInferer", "cluster_embedding"]
from .distributed import (  # noqa: E402
    broadcast_module,
    destroy_distributed,
    init_distributed,
    is_rank_zero,
    rank_zero_handlers,
    sync_gradients,
    unwrap_module,
    wrap_ddp,
)

__all__ += [
    "broadcast_module",
    "destroy_distributed",
    "init_distributed",
    "is_rank_zero",
    "rank_zero_handlers",
    "sync_gradients",
    "unwrap_module",
    "wrap_ddp",
]
