"""Anatomical-prior VAE (AEVB) for unsupervised segmentation: the label prior VAE, the image model trained
against its frozen decoder, the Jensen bound, the two-stage engines, datalists, brain phantom, report and
the report's supervised reference."""

from __future__ import annotations

from monai_genvq.apps.anatomical_prior.datalists import (
    anatomical_prior_datalists,
    decathlon_prior_datalists,
    location_prior,
    location_prior_from_dataset,
)
from monai_genvq.apps.anatomical_prior.engines import (
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
from monai_genvq.apps.anatomical_prior.losses import (
    AnatomicalPriorTerms,
    ImageModelLoss,
    LabelPriorLoss,
    categorical_nll,
    gaussian_nll_latent,
    jensen_intensity_log_likelihood,
    label_intensity_log_likelihood,
)
from monai_genvq.apps.anatomical_prior.networks import (
    LOG_PROB_FLOOR,
    LOGVAR_RANGE,
    ImageSegmentationOutput,
    ImageSegmentationVAE,
    LabelPriorOutput,
    LabelPriorVAE,
    PriorConvDecoder,
    PriorConvEncoder,
)
from monai_genvq.apps.anatomical_prior.report import SegmentationReport, load_module_checkpoint
from monai_genvq.apps.anatomical_prior.supervised_reference import build_supervised_reference, train_supervised_unet
from monai_genvq.apps.anatomical_prior.synthetic_brain import (
    BRAIN_CONTRASTS,
    BRAIN_LABELS,
    ensure_synthetic_brain,
    generate_synthetic_brain,
    render_brain_phantom,
)
from monai_genvq.apps.anatomical_prior.transforms import (
    HungarianMatch,
    HungarianMatchd,
    LabelMapError,
    StackSlice,
    StackSliced,
    ValidateLabelMap,
    ValidateLabelMapd,
    check_label_map,
    stack_slice_index,
)

__all__ = [
    "AnatomicalPriorInferer",
    "AnatomicalPriorTerms",
    "BRAIN_CONTRASTS",
    "BRAIN_LABELS",
    "HungarianMatch",
    "HungarianMatchd",
    "ImageModelLoss",
    "ImageModelTrainer",
    "ImageSegmentationOutput",
    "ImageSegmentationVAE",
    "LOGVAR_RANGE",
    "LOG_PROB_FLOOR",
    "LabelMapError",
    "LabelPriorLoss",
    "LabelPriorOutput",
    "LabelPriorTrainer",
    "LabelPriorVAE",
    "PrepareImageBatch",
    "PrepareLabelBatch",
    "PriorConvDecoder",
    "PriorConvEncoder",
    "SegmentationReport",
    "StackSlice",
    "StackSliced",
    "ValidateLabelMap",
    "ValidateLabelMapd",
    "anatomical_prior_datalists",
    "anatomical_prior_loss_terms",
    "atlas_intensity_init",
    "build_supervised_reference",
    "categorical_nll",
    "check_label_map",
    "decathlon_prior_datalists",
    "ensure_synthetic_brain",
    "gaussian_nll_latent",
    "generate_synthetic_brain",
    "jensen_intensity_log_likelihood",
    "label_intensity_log_likelihood",
    "load_module_checkpoint",
    "location_prior",
    "location_prior_from_dataset",
    "refine_latent",
    "render_brain_phantom",
    "render_from_prior",
    "stack_slice_index",
    "train_supervised_unet",
]
