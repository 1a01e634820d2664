"""MONAI (Map)Transforms of monai-genvq."""

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
