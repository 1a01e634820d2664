"""MONAI transforms shared by several methods (array and dictionary pairs)."""

from __future__ import annotations

from monai_genvq.transforms.cardiac import (
    CardiacAlignment,
    CardiacAlignmentd,
    LoadCardiacEDd,
    align_short_axis,
    select_short_axis_slice,
)
from monai_genvq.transforms.slices import EnsureSlice, EnsureSliced

__all__ = [
    "CardiacAlignment",
    "CardiacAlignmentd",
    "EnsureSlice",
    "EnsureSliced",
    "LoadCardiacEDd",
    "align_short_axis",
    "select_short_axis_slice",
]
