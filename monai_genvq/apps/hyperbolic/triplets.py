"""Hierarchical triplet sampling of 3-D patches (Hsu et al. 2021, §3.4).

A *parent* patch of random size is cut around a random voxel, a *child* patch lies inside it, and a
*negative* patch of the child's size lies outside the parent; all three are rescaled (trilinear) to
the model's N³ patch size. Works on any (C, X, Y, Z) volume. Two samplers (``sampling``):

* ``"released"`` (the default): the ranges and placement of the seed authors' released dataloader
  (``pvae/dataloaders/toy_sampled_triplet_dataset.py`` of Hsu et al.'s code, read, not copied):
  parent side 2⌊s/2⌋+1 with s uniform in 5..34 voxels, shrunk to fit the volume around its centre;
  a *concentric* child of side 2⌊t/2⌋+1, t uniform in 3..min(14, s−2); a negative of the child's
  size whose centre lies outside the parent's extent on *every* axis; parents of constant intensity
  (pure background) are drawn again. About an 11× range of scales.
* ``"ours"`` (bundle versions up to 0.5): parent side uniform in ``parent_size`` (default 16..32), child
  side a fraction ``child_fraction`` of it placed anywhere inside, negative outside the parent on at
  least one axis (best of 20 draws); about a 3× range.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable, Transform

__all__ = ["TripletPatchSampler", "TripletPatchSamplerd", "TRIPLET_KEYS", "TRIPLET_SAMPLINGS", "check_volume"]

TRIPLET_KEYS = ("parent", "child", "negative")
TRIPLET_SAMPLINGS = ("released", "ours")
_DEFAULT_PARENT = {"released": (5, 34), "ours": (16, 32)}
RELEASED_CHILD_SIZE = (3, 14)
"""The released code's child side range (``randint(3, min(15, s - 1))``), in voxels before ``voxel_scale``."""
MAX_CONSTANT_DRAWS = 200
"""Parents drawn at most per triplet before a volume is declared (practically) constant."""


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
        parent_size: (min, max) parent side in voxels before ``voxel_scale``; None: the sampler's default,
            (5, 34) for "released" (Hsu et al.'s code) and (16, 32) for "ours" (which needs min >= N).
        child_fraction: "ours" only: (min, max) side of the child as a fraction of the parent's (child ≥ N).
        mask_fn: optional callable volume -> bool (X, Y, Z) array; parents are centred on voxels where it is True
            (e.g. inside the brain).
        name: used in error messages (e.g. the file name).
        sampling: "released" (the seed code's ranges and placement, the default) or "ours" (see the module
            docstring).
        child_size: "released" only: (min, max) child side before ``voxel_scale``; None: (3, 14), the released
            code's.
        voxel_scale: sizes are in voxels of the volume before a resampling by this factor: pass the zoom
            applied before the sampler (``monai.transforms.Zoomd``) to keep the released code's sizes in native
            voxels (a parent of 5..34 native voxels is 15..102 voxels of a volume zoomed by 3).
        skip_constant: "released" only: draw again a parent whose voxels are all equal (within 1e-6 of
            the intensity range), as the released dataloader skips constant (background) parents. Raises
            ValueError after 200 such draws in a row.

    Returns:
        (3, C, N, N, N) tensor stacked as parent, child, negative.

    Example:
        >>> sampler = TripletPatchSampler(patch_size=10)  # the released code's sampling
        >>> sampler.set_random_state(0)(torch.rand(1, 40, 40, 40)).shape
        torch.Size([3, 1, 10, 10, 10])
        >>> ours = TripletPatchSampler(patch_size=10, parent_size=(16, 24), sampling="ours")
        >>> ours.set_random_state(0)(torch.rand(1, 40, 40, 40)).shape
        torch.Size([3, 1, 10, 10, 10])
    """

    def __init__(
        self,
        patch_size: int = 10,
        parent_size: tuple[int, int] | None = None,
        child_fraction: tuple[float, float] = (0.3, 0.6),
        mask_fn: Any = None,
        name: str = "volume",
        sampling: str = "released",
        child_size: tuple[int, int] | None = None,
        voxel_scale: float = 1.0,
        skip_constant: bool = True,
    ) -> None:
        if sampling not in TRIPLET_SAMPLINGS:
            raise ValueError(f"sampling must be one of {TRIPLET_SAMPLINGS}, got {sampling!r}")
        if not voxel_scale > 0:
            raise ValueError(f"voxel_scale must be > 0, got {voxel_scale}")
        parent_size = tuple(_DEFAULT_PARENT[sampling] if parent_size is None else parent_size)
        child_size = tuple(RELEASED_CHILD_SIZE if child_size is None else child_size)
        if sampling == "ours" and (parent_size[0] > parent_size[1] or parent_size[0] * voxel_scale < patch_size):
            raise ValueError(
                f"parent_size must be (min, max) with min * voxel_scale >= patch_size={patch_size}, got {parent_size}"
            )
        if sampling == "released":
            for what, (lo, hi) in (("parent_size", parent_size), ("child_size", child_size)):
                if not 1 <= lo <= hi:
                    raise ValueError(f"{what} must be (min, max) with 1 <= min <= max, got {(lo, hi)}")
        self.patch_size, self.parent_size, self.child_fraction = patch_size, parent_size, tuple(child_fraction)
        self.mask_fn, self.name, self.sampling = mask_fn, name, sampling
        self.child_size, self.voxel_scale, self.skip_constant = child_size, float(voxel_scale), bool(skip_constant)

    def randomize(self, data: Any = None) -> None:  # pragma: no cover - sampling happens in __call__
        pass

    def __call__(self, volume: torch.Tensor | np.ndarray, name: str | None = None) -> torch.Tensor:
        return self.sample(volume, 1, name)[0]

    def sample(
        self, volume: torch.Tensor | np.ndarray, num_samples: int, name: str | None = None
    ) -> list[torch.Tensor]:
        """``num_samples`` triplets from one volume, which is checked and masked once (not once per triplet)."""
        name = name or self.name
        min_side = self.patch_size if self.sampling == "ours" else 1
        v = check_volume(volume, min_side, name)
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
        if self.sampling == "ours":
            return [self._triplet(v, cand) for _ in range(num_samples)]
        # parent centres at least the smallest parent's half-width from every border (the released code
        # draws centres 2..47 of 50 for its smallest parent of 5), so no parent shrinks below it
        shape = np.array(v.shape[1:])
        margin = np.minimum(self._scaled(self.parent_size[0] // 2), (shape - 1) // 2)
        if cand is not None:
            coords = np.unravel_index(cand, tuple(shape))
            inner = np.all([(c >= m) & (c <= s - 1 - m) for c, m, s in zip(coords, margin, shape)], axis=0)
            if not inner.any():
                raise ValueError(f"{name}: the sampling mask has no voxel {margin.tolist()} voxels from the border")
            cand = cand[inner]
        self._margin = margin
        if self.skip_constant:
            lo, hi = float(v.amin()), float(v.amax())
            if hi - lo <= 0:
                raise ValueError(f"{name}: the volume is constant ({lo}); no non-constant parent patch exists")
            self._constant_tol = 1e-6 * (hi - lo)
        return [self._released_triplet(v, cand, name) for _ in range(num_samples)]

    def _scaled(self, side: int) -> int:
        return int(round(side * self.voxel_scale))

    def _released_triplet(self, v: torch.Tensor, cand: np.ndarray | None, name: str) -> torch.Tensor:
        shape = np.array(v.shape[1:])
        rs = self.R
        for _ in range(MAX_CONSTANT_DRAWS):
            if cand is not None:
                centre = np.array(np.unravel_index(cand[rs.randint(len(cand))], shape))
            else:
                centre = np.array([rs.randint(m, n - m) for m, n in zip(self._margin, shape)])
            s = rs.randint(self.parent_size[0], self.parent_size[1] + 1)
            # half-width in volume voxels, shrunk so the parent fits around its centre (as the released code does)
            half = int(min(self._scaled(s // 2), *(centre), *(shape - 1 - centre)))
            sl = tuple(slice(c - half, c + half + 1) for c in centre)
            if not self.skip_constant:
                break
            parent_vox = v[(slice(None), *sl)]
            if float(parent_vox.amax() - parent_vox.amin()) > self._constant_tol:
                break
        else:
            raise ValueError(
                f"{name}: {MAX_CONSTANT_DRAWS} parent patches in a row were constant; the volume (or its sampling "
                "mask) is almost all background. Use skip_constant=False or a mask_fn"
            )
        # the child is drawn against the parent's side after shrinking (native voxels), and stays smaller
        s_fit = min(s, int((2 * half + 1) / self.voxel_scale))
        c_hi = max(self.child_size[0], min(self.child_size[1], s_fit - 2))
        t = rs.randint(self.child_size[0], c_hi + 1)
        c_half = min(self._scaled(t // 2), max(half - 1, 0))
        neg = np.empty(3, int)
        for ax in range(3):
            # centres with the child-sized box inside the volume and outside the parent's extent on this axis
            lo, hi = c_half, shape[ax] - 1 - c_half
            allowed = np.setdiff1d(np.arange(lo, hi + 1), np.arange(centre[ax] - half, centre[ax] + half + 1))
            if len(allowed):
                neg[ax] = allowed[rs.randint(len(allowed))]
            else:  # the parent spans the axis: the position farthest from the parent's centre
                neg[ax] = lo if centre[ax] - lo >= hi - centre[ax] else hi
        n = self.patch_size
        parent = _crop_resize(v, centre - half, 2 * half + 1, n)
        child = _crop_resize(v, centre - c_half, 2 * c_half + 1, n)
        negative = _crop_resize(v, neg - c_half, 2 * c_half + 1, n)
        return torch.stack([parent, child, negative])

    def _triplet(self, v: torch.Tensor, cand: np.ndarray | None) -> torch.Tensor:
        n = self.patch_size
        shape = np.array(v.shape[1:])
        rs = self.R
        lo, hi = self._scaled(self.parent_size[0]), self._scaled(self.parent_size[1])
        p_size = int(min(rs.randint(lo, hi + 1), shape.min()))
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
