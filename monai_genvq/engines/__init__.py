"""Ignite engines (``monai.engines`` subclasses) shared by several methods, and their step helpers."""

from __future__ import annotations

from monai_genvq.engines.autoencoder import (
    AutoencoderTrainer,
    PrepareAutoencoderBatch,
    ReconstructionInferer,
    loss_terms,
)
from monai_genvq.engines.distributed import (
    broadcast_module,
    destroy_distributed,
    init_distributed,
    is_rank_zero,
    rank_zero_handlers,
    sync_gradients,
    unwrap_module,
    wrap_ddp,
)
from monai_genvq.engines.inferers import OutputInferer
from monai_genvq.engines.prior import CodePriorTrainer, prior_loss_terms
from monai_genvq.engines.steps import LossTerms, autocast, backward_step, check_finite_loss, optimizer_step
from monai_genvq.engines.vae import (
    PrepareVAEBatch,
    SoftIntroTrainer,
    VAEEvaluator,
    VAEReconstructionInferer,
    VAETrainer,
    vae_loss_terms,
)

__all__ = [
    "AutoencoderTrainer",
    "CodePriorTrainer",
    "LossTerms",
    "OutputInferer",
    "PrepareAutoencoderBatch",
    "PrepareVAEBatch",
    "ReconstructionInferer",
    "SoftIntroTrainer",
    "VAEEvaluator",
    "VAEReconstructionInferer",
    "VAETrainer",
    "autocast",
    "backward_step",
    "broadcast_module",
    "check_finite_loss",
    "destroy_distributed",
    "init_distributed",
    "is_rank_zero",
    "loss_terms",
    "optimizer_step",
    "prior_loss_terms",
    "rank_zero_handlers",
    "sync_gradients",
    "unwrap_module",
    "vae_loss_terms",
    "wrap_ddp",
]
