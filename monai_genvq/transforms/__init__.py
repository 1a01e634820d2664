"""MONAI transforms shared by several methods (array and dictionary pairs)."""

from __future__ import annotations

from monai_genvq.transforms.cardiac import (
    CardiacAlignment,
    CardiacAlignmentd,
    LoadCardiacEDd,
    align_short_axis,
    select_short_axis_slice,
)
from monai_genvq.transforms.intensity import NORMALIZE_MODES, ForegroundNormalize, ForegroundNormalized
from monai_genvq.transforms.slices import EnsureSlice, EnsureSliced

__all__ = [
    "CardiacAlignment",
    "CardiacAlignmentd",
    "EnsureSlice",
    "EnsureSliced",
    "ForegroundNormalize",
    "ForegroundNormalized",
    "LoadCardiacEDd",
    "NORMALIZE_MODES",
    "align_short_axis",
    "select_short_axis_slice",
]
