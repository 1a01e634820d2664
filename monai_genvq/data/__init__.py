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
from monai_genvq.data.cardiac_datalist import (
    CARDIAC_DATASETS,
    cardiac_datalists,
    expand_slice_offsets,
    resolve_cardiac_dataset,
)
from monai_genvq.data.errors import DataSplitError, VolumeFileError
from monai_genvq.data.mni152 import (
    MNI152_FILES,
    MNI152_LABELS,
    ensure_mni152,
    generate_mni152,
    mni152_file,
    mni152_label_map,
    mni152_records,
)
from monai_genvq.data.mrc import MRC_SUFFIXES, MRCReader, MRCWriter, is_mrc, mrc_affine, write_mrc
from monai_genvq.data.slices import SLICE_EXTENSIONS, SliceImageData, discover_slices, require_input_files
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
    VOLUME_SUFFIXES,
    LoadVolume,
    LoadVolumed,
    check_unique_output_names,
    discover_volumes,
    nifti_spacing_problem,
    volume_shape,
    volume_stem,
)

__all__ = [
    "ACDC_TO_INTERNAL",
    "CARDIAC_DATASETS",
    "CARDIAC_LABELS",
    "CardiacDataError",
    "DataSplitError",
    "LoadVolume",
    "LoadVolumed",
    "MNI152_FILES",
    "MNI152_LABELS",
    "MNMS_TO_INTERNAL",
    "MRCReader",
    "MRCWriter",
    "MRC_SUFFIXES",
    "SLICE_EXTENSIONS",
    "SLICE_SPLITS",
    "SliceImageData",
    "VENDOR_STYLES",
    "VOLUME_SUFFIXES",
    "VolumeFileError",
    "cardiac_datalists",
    "check_unique_output_names",
    "discover_acdc",
    "discover_mnms",
    "discover_slices",
    "discover_volumes",
    "ensure_mni152",
    "ensure_synthetic_acdc",
    "ensure_synthetic_mnms",
    "ensure_synthetic_slices",
    "expand_slice_offsets",
    "generate_mni152",
    "generate_synthetic_acdc",
    "generate_synthetic_mnms",
    "generate_synthetic_slices",
    "is_mrc",
    "load_cardiac_ed",
    "map_labels",
    "mni152_file",
    "mni152_label_map",
    "mni152_records",
    "mrc_affine",
    "nifti_spacing_problem",
    "read_acdc_info",
    "read_mnms_csv",
    "render_cardiac_phantom",
    "require_input_files",
    "resolve_cardiac_dataset",
    "synthetic_cardiac_slice",
    "volume_shape",
    "volume_stem",
    "write_mrc",
]
