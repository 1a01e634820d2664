"""Checks that turn a loaded image into one validated 2-D slice (C=1, H, W)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from monai_genvq.data.errors import VolumeFileError

__all__ = ["EnsureSlice", "EnsureSliced"]


def _source_name(img) -> str:
    meta = getattr(img, "meta", None) or {}
    return str(meta.get("filename_or_obj", "<in-memory image>"))


class EnsureSlice(Transform):
    """Make a loaded image a channel-first float32 2-D slice ``(1, H, W)``, or fail naming the file.

    Accepts (H, W), (1, H, W), (H, W, 1) and any shape whose extra axes are singletons (MONAI's
    loaders may add them). Raises :class:`~monai_genvq.data.errors.VolumeFileError` (a ValueError) naming the file for more than two non-singleton
    axes (a volume or a multi-channel image), for fewer than two, and for NaN/inf pixels.

    Example:
        >>> EnsureSlice()(torch.zeros(64, 64, 1)).shape
        torch.Size([1, 64, 64])
    """

    def __call__(self, img):
        name = _source_name(img)
        data = img.as_tensor() if hasattr(img, "as_tensor") else torch.as_tensor(np.asarray(img))
        kept = [s for s in data.shape if s != 1]
        if len(kept) != 2:
            raise VolumeFileError(
                f"'{name}': expected a 2-D slice, got an image of shape {tuple(data.shape)}; export single slices "
                "(e.g. one short-axis slice per file) or pick a slice before training."
            )
        data = data.reshape(1, *kept).float()
        if not torch.isfinite(data).all():
            raise VolumeFileError(f"'{name}': the image contains NaN or infinite pixel values.")
        if hasattr(img, "meta"):
            from monai.data import MetaTensor

            return MetaTensor(data, meta=dict(img.meta))
        return data


class EnsureSliced(MapTransform):
    """Dictionary version of :class:`EnsureSlice`.

    Example:
        >>> EnsureSliced("image")({"image": torch.zeros(1, 8, 8)})["image"].shape
        torch.Size([1, 8, 8])
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = EnsureSlice()

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d
