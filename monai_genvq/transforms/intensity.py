"""Per-channel intensity normalisation with statistics of the foreground (the voxels where any channel is non-zero)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_dst_type

__all__ = ["NORMALIZE_MODES", "ForegroundNormalize", "ForegroundNormalized"]

NORMALIZE_MODES = ("none", "percentile", "zscore")


class ForegroundNormalize(Transform):
    """Normalise each channel of a (C, *spatial) image with statistics of its foreground.

    The foreground is the set of voxels where any channel is non-zero (e.g. the brain of a
    skull-stripped MRI; all voxels if none is non-zero). Every voxel, background included, is
    transformed with the foreground's statistics:

    - ``"none"``: unchanged;
    - ``"percentile"``: the foreground's 1st–99th percentile mapped to [0, 1], clipped;
    - ``"zscore"``: minus the foreground's mean, divided by its (population) standard deviation.

    MONAI's ``ScaleIntensityRangePercentiles`` takes its percentiles over all voxels and
    ``NormalizeIntensity(nonzero=True)`` leaves the background untouched, so neither is this. A
    MetaTensor keeps its metadata; the result is float32.

    Args:
        mode: "none", "percentile" or "zscore".

    Example:
        >>> img = np.zeros((1, 4, 4), np.float32); img[0, 1:3, 1:3] = [[1.0, 2.0], [3.0, 4.0]]
        >>> out = ForegroundNormalize("zscore")(img)
        >>> round(float(out[0, 1:3, 1:3].mean()), 6), round(float(out[0, 1:3, 1:3].std()), 6)
        (0.0, 1.0)
    """

    def __init__(self, mode: str = "none") -> None:
        if mode not in NORMALIZE_MODES:
            raise ValueError(f"normalisation must be one of {NORMALIZE_MODES}, got {mode!r}")
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        """(C, *spatial) image -> the normalised image, of the input's type (MetaTensor, tensor or array)."""
        if self.mode == "none":
            return img
        volume = np.asarray(img.detach().cpu() if hasattr(img, "detach") else img, dtype=np.float32)
        if volume.ndim < 2:
            raise ValueError(f"expected a channel-first image (C, *spatial), got shape {volume.shape}")
        mask = (volume != 0).any(0)
        out = np.empty_like(volume)
        for ch in range(volume.shape[0]):
            v = volume[ch]
            ref = v[mask] if mask.any() else v
            if self.mode == "percentile":
                lo, hi = np.percentile(ref, [1, 99])
                out[ch] = np.clip((v - lo) / max(hi - lo, 1e-8), 0, 1)
            else:
                out[ch] = (v - ref.mean()) / max(ref.std(), 1e-8)
        return convert_to_dst_type(out, img, dtype=np.float32)[0] if hasattr(img, "detach") else out


class ForegroundNormalized(MapTransform):
    """Dictionary version of :class:`ForegroundNormalize`.

    Args:
        keys: keys of the images to normalise.
        mode: "none", "percentile" or "zscore".
        allow_missing_keys: do not raise for a missing key.

    Example:
        >>> out = ForegroundNormalized("image", mode="percentile")({"image": np.arange(8.0).reshape(1, 2, 4)})
        >>> float(out["image"].min()), float(out["image"].max())
        (0.0, 1.0)
    """

    def __init__(self, keys: KeysCollection, mode: str = "none", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = ForegroundNormalize(mode)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key])
        return d
