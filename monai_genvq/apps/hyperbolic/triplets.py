"""Hierarchical triplet sampling of 3-D patches (Hsu et al. 2021, §3.4).

A *parent* patch of random size is cut around a random voxel, a *child* patch lies inside it, and a
*negative* patch of the child's size lies outside the parent; all three are rescaled (trilinear) to
the model's N³ patch size. Works on any (C, X, Y, Z) volume.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable, Transform

__all__ = ["TripletPatchSampler", "TripletPatchSamplerd", "TRIPLET_KEYS", "check_volume"]

TRIPLET_KEYS = ("parent", "child", "negative")


def check_volume(volume: torch.Tensor | np.ndarray, min_size: int, name: str = "volume") -> torch.Tensor:
    """A (C, X, Y, Z) float tensor without NaN/inf and at least ``min_size`` voxels per side, else ValueError."""
    v = torch.as_tensor(np.asarray(volume) if not isinstance(volume, torch.Tensor) else volume).float()
    if v.ndim != 4:
        raise ValueError(f"{name}: expected a channel-first 3-D volume (C, X, Y, Z), got shape {tuple(v.shape)}")
    if min(v.shape[1:]) < min_size:
        raise ValueError(f"{name}: patch size {min_size} is larger than the volume {tuple(v.shape[1:])}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name}: contains NaN or infinite voxels ({int((~torch.isfinite(v)).sum())} of {v.numel()})")
    return v


def _crop_resize(v: torch.Tensor, start: Sequence[int], size: int, out: int) -> torch.Tensor:
    sl = v[:, start[0] : start[0] + size, start[1] : start[1] + size, start[2] : start[2] + size]
    if size == out:
        return sl.clone()
    return F.interpolate(sl[None], size=(out,) * 3, mode="trilinear", align_corners=False)[0]


class TripletPatchSampler(Randomizable, Transform):
    """Sample one (parent, child, negative) triplet of N³ patches from a (C, X, Y, Z) volume.

    Args:
        patch_size: N, the model's patch size (every patch is rescaled to N³).
        parent_size: (min, max) side of the parent patch in voxels (clipped to the volume).
        child_fraction: (min, max) side of the child as a fraction of the parent's (child ≥ N).
        mask_fn: optional callable volume -> bool (X, Y, Z) array; parents are centred on voxels where it is True
            (e.g. inside the brain).
        name: used in error messages (e.g. the file name).

    Returns:
        (3, C, N, N, N) tensor stacked as parent, child, negative.

    Example:
        >>> sampler = TripletPatchSampler(patch_size=10, parent_size=(16, 24))
        >>> sampler.set_random_state(0)(torch.rand(1, 40, 40, 40)).shape
        torch.Size([3, 1, 10, 10, 10])
    """

    def __init__(
        self,
        patch_size: int = 10,
        parent_size: tuple[int, int] = (16, 32),
        child_fraction: tuple[float, float] = (0.3, 0.6),
        mask_fn: Any = None,
        name: str = "volume",
    ) -> None:
        if parent_size[0] > parent_size[1] or parent_size[0] < patch_size:
            raise ValueError(f"parent_size must be (min, max) with min >= patch_size={patch_size}, got {parent_size}")
        self.patch_size, self.parent_size, self.child_fraction = patch_size, tuple(parent_size), tuple(child_fraction)
        self.mask_fn, self.name = mask_fn, name

    def randomize(self, data: Any = None) -> None:  # pragma: no cover - sampling happens in __call__
        pass

    def __call__(self, volume: torch.Tensor | np.ndarray, name: str | None = None) -> torch.Tensor:
        return self.sample(volume, 1, name)[0]

    def sample(
        self, volume: torch.Tensor | np.ndarray, num_samples: int, name: str | None = None
    ) -> list[torch.Tensor]:
        """``num_samples`` triplets from one volume, which is checked and masked once (not once per triplet)."""
        name = name or self.name
        v = check_volume(volume, self.patch_size, name)
        cand = None
        if self.mask_fn is not None:
            # flat indices in C order (argwhere's order, so the same draws give the same centres): one pass
            # instead of argwhere's (n, 3) coordinates, which took 70 % of a BraTS-sized call
            mask = np.asarray(self.mask_fn(v))
            if mask.shape != tuple(v.shape[1:]):
                raise ValueError(f"{name}: the sampling mask has shape {mask.shape}, the volume {tuple(v.shape[1:])}")
            cand = np.flatnonzero(mask)
            if len(cand) == 0:
                raise ValueError(f"{name}: the sampling mask is empty")
        return [self._triplet(v, cand) for _ in range(num_samples)]

    def _triplet(self, v: torch.Tensor, cand: np.ndarray | None) -> torch.Tensor:
        n = self.patch_size
        shape = np.array(v.shape[1:])
        rs = self.R
        p_size = int(min(rs.randint(self.parent_size[0], self.parent_size[1] + 1), shape.min()))
        if cand is not None:
            centre = np.array(np.unravel_index(cand[rs.randint(len(cand))], shape))
        else:
            centre = np.array([rs.randint(s) for s in shape])
        p_start = np.clip(centre - p_size // 2, 0, shape - p_size)
        c_size = int(np.clip(round(p_size * rs.uniform(*self.child_fraction)), n, p_size))
        c_start = p_start + np.array([rs.randint(0, p_size - c_size + 1) for _ in range(3)])
        # negative: a child-sized box whose centre lies outside the parent box (best of a few draws)
        neg_start, best = None, -1.0
        for _ in range(20):
            s = np.array([rs.randint(0, sh - c_size + 1) for sh in shape])
            ctr = s + c_size / 2
            outside = np.maximum(np.maximum(p_start - ctr, ctr - (p_start + p_size)), 0).max()
            if outside > best:
                neg_start, best = s, outside
            if outside > c_size / 2:
                break
        parent = _crop_resize(v, p_start, p_size, n)
        child = _crop_resize(v, c_start, c_size, n)
        negative = _crop_resize(v, neg_start, c_size, n)
        return torch.stack([parent, child, negative])


class TripletPatchSamplerd(Randomizable, MapTransform):
    """Dictionary version of :class:`TripletPatchSampler`: ``num_samples`` dicts with keys parent/child/negative.

    Args:
        keys: the image key (one key).
        num_samples: triplets per volume (a list of dicts is returned, like MONAI's ``RandCropByPosNegLabeld``).
        kwargs: :class:`TripletPatchSampler` arguments.

    Example:
        >>> t = TripletPatchSamplerd("image", num_samples=4, patch_size=10, parent_size=(16, 24))
        >>> out = t({"image": torch.rand(1, 40, 40, 40)})
        >>> len(out), out[0]["parent"].shape
        (4, torch.Size([1, 10, 10, 10]))
    """

    def __init__(
        self, keys: KeysCollection, num_samples: int = 16, allow_missing_keys: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError("TripletPatchSamplerd samples from exactly one image key")
        self.num_samples = num_samples
        self.sampler = TripletPatchSampler(**kwargs)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> TripletPatchSamplerd:
        super().set_random_state(seed, state)
        self.sampler.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:  # pragma: no cover
        pass

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:
        d = dict(data)
        key = self.keys[0]
        img = d[key]
        name = str(getattr(img, "meta", {}).get("filename_or_obj", key)) if hasattr(img, "meta") else str(key)
        img = img.as_tensor() if hasattr(img, "as_tensor") else img
        return [
            {k: trip[i] for i, k in enumerate(TRIPLET_KEYS)}
            for trip in self.sampler.sample(img, self.num_samples, name)
        ]
