"""MONAI (Map)Transforms of monai-genvq."""

from monai_genvq.transforms.streamline_order import apply_group_order, canonical_group_order, invert_group_order
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
]
from monai_genvq.transforms.patches import TRIPLET_KEYS, TripletPatchSampler, TripletPatchSamplerd, check_volume  # noqa: E402

__all__ += ["TRIPLET_KEYS", "TripletPatchSampler", "TripletPatchSamplerd", "check_volume"]
