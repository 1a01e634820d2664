"""Readers for the public on-disk layouts that more than one method reads, and the synthetic cardiac data."""

from __future__ import annotations

from monai_genvq.data.cardiac import (
    ACDC_TO_INTERNAL,
    CARDIAC_LABELS,
    MNMS_TO_INTERNAL,
    CardiacDataError,
    discover_acdc,
    discover_mnms,
    load_cardiac_ed,
    map_labels,
    read_acdc_info,
    read_mnms_csv,
)
from monai_genvq.data.cardiac_datalist import CARDIAC_DATASETS, cardiac_datalists, resolve_cardiac_dataset
from monai_genvq.data.mrc import read_mrc, write_mrc
from monai_genvq.data.slices import SLICE_EXTENSIONS, SliceImageData, discover_slices
from monai_genvq.data.synthetic_cardiac import (
    VENDOR_STYLES,
    ensure_synthetic_acdc,
    ensure_synthetic_mnms,
    generate_synthetic_acdc,
    generate_synthetic_mnms,
    render_cardiac_phantom,
)
from monai_genvq.data.synthetic_slices import (
    SLICE_SPLITS,
    ensure_synthetic_slices,
    generate_synthetic_slices,
    synthetic_cardiac_slice,
)
from monai_genvq.data.volumes import (
    LoadVolume,
    LoadVolumed,
    VolumeFileError,
    discover_volumes,
    is_mrc,
    load_volume,
    normalize_volume,
    save_segmentation,
)

__all__ = [
    "ACDC_TO_INTERNAL",
    "CARDIAC_DATASETS",
    "CARDIAC_LABELS",
    "CardiacDataError",
    "LoadVolume",
    "LoadVolumed",
    "MNMS_TO_INTERNAL",
    "SLICE_EXTENSIONS",
    "SLICE_SPLITS",
    "SliceImageData",
    "VENDOR_STYLES",
    "VolumeFileError",
    "cardiac_datalists",
    "discover_acdc",
    "discover_mnms",
    "discover_slices",
    "discover_volumes",
    "ensure_synthetic_acdc",
    "ensure_synthetic_mnms",
    "ensure_synthetic_slices",
    "generate_synthetic_acdc",
    "generate_synthetic_mnms",
    "generate_synthetic_slices",
    "is_mrc",
    "load_cardiac_ed",
    "load_volume",
    "map_labels",
    "normalize_volume",
    "read_acdc_info",
    "read_mnms_csv",
    "read_mrc",
    "render_cardiac_phantom",
    "resolve_cardiac_dataset",
    "save_segmentation",
    "synthetic_cardiac_slice",
    "write_mrc",
]
