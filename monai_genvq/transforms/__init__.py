"""MONAI (Map)Transforms of monai-genvq."""

from monai_genvq.transforms.streamline_order import apply_group_order, canonical_group_order, invert_group_order
from monai_genvq.transforms.slices import EnsureSlice, EnsureSliced
from monai_genvq.transforms.streamlines import (
    NormalizeStreamlines,
    NormalizeStreamlinesd,
    ResampleStreamlines,
    ResampleStreamlinesd,
    StreamlineNormalizer,
    StreamlinesToBundleTensor,
    StreamlinesToBundleTensord,
    bundle_tensor_to_streamlines,
    resample_streamlines,
    streamlines_to_bundle_tensor,
)

__all__ = [
    "apply_group_order",
    "canonical_group_order",
    "invert_group_order",
    "NormalizeStreamlines",
    "NormalizeStreamlinesd",
    "ResampleStreamlines",
    "ResampleStreamlinesd",
    "StreamlineNormalizer",
    "StreamlinesToBundleTensor",
    "StreamlinesToBundleTensord",
    "bundle_tensor_to_streamlines",
    "resample_streamlines",
    "streamlines_to_bundle_tensor",
    "EnsureSlice",
    "EnsureSliced",
]
from monai_genvq.transforms.cardiac import (
    ATTRIBUTE_NAMES,
    CardiacAlignment,
    CardiacAlignmentd,
    CardiacAttributes,
    CardiacAttributesd,
    LoadCardiacEDd,
    align_short_axis,
    cardiac_attributes,
    select_short_axis_slice,
)

__all__ += [
    "ATTRIBUTE_NAMES",
    "CardiacAlignment",
    "CardiacAlignmentd",
    "CardiacAttributes",
    "CardiacAttributesd",
    "LoadCardiacEDd",
    "align_short_axis",
    "cardiac_attributes",
    "select_short_axis_slice",
]
from .anatomical_prior import (
    AlignCardiacSlice,
    AlignCardiacSliced,
    HungarianMatchd,
    LabelMapError,
    StackSlice,
    StackSliced,
    ValidateLabelMap,
    ValidateLabelMapd,
    check_label_map,
    stack_slice_index,
)

__all__ += [
    "AlignCardiacSlice",
    "AlignCardiacSliced",
    "HungarianMatchd",
    "StackSlice",
    "StackSliced",
    "stack_slice_index",
    "LabelMapError",
    "ValidateLabelMap",
    "ValidateLabelMapd",
    "check_label_map",
]
from monai_genvq.transforms.patches import TRIPLET_KEYS, TripletPatchSampler, TripletPatchSamplerd, check_volume  # noqa: E402

__all__ += ["TRIPLET_KEYS", "TripletPatchSampler", "TripletPatchSamplerd", "check_volume"]
