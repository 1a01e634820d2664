"""Attri-SIVAE on ACDC / M&Ms: the ventricular-volume attributes, the disentanglement report and figures, demo.

The ACDC / M&Ms readers, the cardiac phantom and the short-axis alignment are core (:mod:`monai_genvq.data`,
:mod:`monai_genvq.transforms`): three methods read them."""

from __future__ import annotations

from monai_genvq.apps.cardiac.attributes import (
    ATTRIBUTE_NAMES,
    CardiacAttributes,
    CardiacAttributesd,
    cardiac_attributes,
)
from monai_genvq.apps.cardiac.figures import attribute_traversal, plot_attribute_traversal, plot_ssim_distribution
from monai_genvq.apps.cardiac.report import (
    METHOD_NAMES,
    SEED_CROSS_DOMAIN,
    SEED_TABLE1,
    SSIM_SETTINGS,
    CardiacEvaluationReport,
    cardiac_seed_table,
    cardiac_table,
    collect_cardiac_results,
    training_summary,
)

__all__ = [
    "ATTRIBUTE_NAMES",
    "CardiacAttributes",
    "CardiacAttributesd",
    "CardiacEvaluationReport",
    "METHOD_NAMES",
    "SEED_CROSS_DOMAIN",
    "SEED_TABLE1",
    "SSIM_SETTINGS",
    "attribute_traversal",
    "cardiac_attributes",
    "cardiac_seed_table",
    "cardiac_table",
    "collect_cardiac_results",
    "plot_attribute_traversal",
    "plot_ssim_distribution",
    "training_summary",
]
