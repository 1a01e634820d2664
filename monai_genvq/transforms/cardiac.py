"""Cardiac transforms: ED loading and the Attri-VAE / Attri-SIVAE short-axis alignment (shared by three methods).

The alignment follows the Attri-VAE / Attri-SIVAE preprocessing (Cetin et al. 2023,
"Attri-VAE: attribute-based interpretable representations of medical images with variational
autoencoders"; "Attribute Regularized Soft Introspective VAE", 2023): from the end-diastolic
ground truth, LVEDV, MEDV (myocardial volume) and RVEDV in mL; one short-axis slice
(mid-ventricular by default), LV+MYO barycentre moved to the image centre, rotated so that the RV
barycentre lies on the horizontal axis, everything outside the ground-truth mask zeroed, cropped
to 128 × 128 and rescaled to [0, 1].

The same transform with ``mask_outside=False, intensity_reference="crop"`` is the anatomical
prior's *oracle-pose* ablation (Dalca et al. 2018 register to an atlas; here slice and pose come
from the ground truth, the image keeps its surroundings and is scaled by the crop's percentile).

Labels are in the package's internal convention (1 LV, 2 MYO, 3 RV; see
:mod:`monai_genvq.data.cardiac`). 2-D slices are arrays (H, W) = (X, Y) of the NIfTI volume:
"horizontal" is the second array axis, as ``matplotlib.imshow`` shows it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from monai_genvq.data.cardiac import CARDIAC_LABELS, CardiacDataError, load_cardiac_ed

__all__ = [
    "CardiacAlignment",
    "CardiacAlignmentd",
    "LoadCardiacEDd",
    "align_short_axis",
    "select_short_axis_slice",
]


def _as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _squeeze_channel(x: np.ndarray, ndim: int) -> np.ndarray:
    if x.ndim == ndim + 1 and x.shape[0] == 1:
        return x[0]
    return x


def select_short_axis_slice(label: Any, mode: str | int = "mid", offset: int = 0) -> int:
    """Index of the short-axis slice to use.

    ``"mid"``: the middle of the slices whose ground truth holds LV (the mid-ventricular slice),
    ``(first + last) // 2``; ``"max_lv"``: the slice with the largest LV area; an int: that index.
    ``offset`` is then added and the result clipped to the slices holding both LV and RV (the
    alignment needs both; slices holding LV only when none holds both).

    Raises:
        CardiacDataError: no slice holds LV.
    """
    label = _squeeze_channel(_as_numpy(label), 3)
    has_lv = np.flatnonzero((label == CARDIAC_LABELS["LV"]).any(axis=(0, 1)))
    if has_lv.size == 0:
        raise CardiacDataError("ground truth holds no LV voxels: cannot choose a short-axis slice")
    if mode == "mid":
        index = int((has_lv[0] + has_lv[-1]) // 2)
    elif mode == "max_lv":
        index = int(np.argmax((label == CARDIAC_LABELS["LV"]).sum(axis=(0, 1))))
    elif isinstance(mode, (int, np.integer)):
        index = int(mode)
    else:
        raise ValueError(f"slice mode must be 'mid', 'max_lv' or an index; got {mode!r}")
    has_both = np.flatnonzero(
        (label == CARDIAC_LABELS["LV"]).any(axis=(0, 1)) & (label == CARDIAC_LABELS["RV"]).any(axis=(0, 1))
    )
    valid = has_both if has_both.size else has_lv
    return int(np.clip(index + int(offset), valid[0], valid[-1]))


def align_short_axis(
    image: np.ndarray,
    label: np.ndarray,
    size: int = 128,
    rv_side: str = "left",
    upper_percentile: float = 99.0,
    mask_outside: bool = True,
    intensity_reference: str = "mask",
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Align one short-axis slice as in Attri-SIVAE.

    The output pixel ``o`` samples the input at ``c + R(θ)(o - o_c)`` where ``c`` is the LV+MYO
    barycentre, ``o_c = ((size - 1) / 2, (size - 1) / 2)`` the output centre and ``θ`` the angle that
    puts the RV barycentre on the horizontal line through ``o_c`` (on the ``rv_side``). The image is
    bilinearly, the label nearest-neighbour resampled; by default (Attri-SIVAE) voxels outside the
    ground-truth heart mask (LV ∪ MYO ∪ RV) are zeroed and intensities divided by the
    ``upper_percentile`` of the input's intensities inside that mask, then clipped to [0, 1].

    Args:
        image: (H, W) slice.
        label: (H, W) ground truth, internal convention.
        size: output side (pixels, native spacing).
        rv_side: ``"left"`` or ``"right"``.
        upper_percentile: intensity percentile mapped to 1.
        mask_outside: zero everything outside the ground-truth mask (Attri-SIVAE); ``False`` keeps
            the surroundings (the anatomical prior's oracle-pose ablation).
        intensity_reference: where ``upper_percentile`` is taken: ``"mask"``, the input slice's
            intensities inside the ground-truth mask (Attri-SIVAE); ``"crop"``, every pixel of the
            aligned output crop (including the resampling's zero fill outside the slice).

    Returns:
        image (size, size) float32 in [0, 1], label (size, size) uint8, and the parameters
        ``{"centre", "angle", "rv_centre"}`` (input pixel coordinates; angle in radians).

    Raises:
        CardiacDataError: the slice has no LV+MYO or no RV.
        ValueError: ``intensity_reference`` is neither ``"mask"`` nor ``"crop"``.

    Example:
        >>> lab = np.zeros((32, 32), np.uint8); lab[12:18, 12:18] = 1; lab[14:16, 20:24] = 3
        >>> img, out_lab, params = align_short_axis(np.ones((32, 32)), lab, size=16)
        >>> img.shape, sorted(np.unique(out_lab).tolist()), round(params["angle"], 3)
        ((16, 16), [0, 1, 3], 3.142)
    """
    from scipy.ndimage import affine_transform

    if intensity_reference not in ("mask", "crop"):
        raise ValueError(f"intensity_reference must be 'mask' or 'crop'; got {intensity_reference!r}")
    image, label = np.asarray(image, np.float32), np.asarray(label)
    if image.shape != label.shape or image.ndim != 2:
        raise ValueError(f"image {image.shape} and label {label.shape} must be the same 2-D shape")
    lvmyo = (label == CARDIAC_LABELS["LV"]) | (label == CARDIAC_LABELS["MYO"])
    rv = label == CARDIAC_LABELS["RV"]
    if not lvmyo.any() or not rv.any():
        raise CardiacDataError(
            f"short-axis slice lacks {'LV/MYO' if not lvmyo.any() else 'RV'}: cannot align it "
            "(choose another slice, e.g. slice_offset towards the base)"
        )
    centre = np.argwhere(lvmyo).mean(0)
    rv_centre = np.argwhere(rv).mean(0)
    v = rv_centre - centre
    target = -1.0 if rv_side == "left" else 1.0  # RV direction in the output: (0, target)
    angle = float(np.arctan2(v[1], v[0]) - np.arctan2(target, 0.0))
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])  # maps output offsets to input offsets
    o_c = np.full(2, (size - 1) / 2.0)
    offset = centre - rot @ o_c
    if mask_outside:
        image = image * (label > 0)
    out_img = affine_transform(image, rot, offset=offset, output_shape=(size, size), order=1, cval=0.0)
    out_lab = affine_transform(
        label.astype(np.float32), rot, offset=offset, output_shape=(size, size), order=0, cval=0.0
    )
    out_lab = np.rint(out_lab).astype(np.uint8)
    if mask_outside:
        out_img = out_img * (out_lab > 0)
    values = image[label > 0] if intensity_reference == "mask" else out_img
    hi = float(np.percentile(values, upper_percentile)) if values.size else 0.0
    out_img = np.clip(out_img / hi, 0.0, 1.0) if hi > 0 else np.zeros_like(out_img)
    return (
        out_img.astype(np.float32),
        out_lab,
        {"centre": centre.tolist(), "angle": angle, "rv_centre": rv_centre.tolist()},
    )


class CardiacAlignment(Transform):
    """Array transform: (ED image, ED ground truth) volumes -> aligned (1, size, size) slice pair.

    Chooses the short-axis slice (:func:`select_short_axis_slice`) and applies
    :func:`align_short_axis` (Attri-SIVAE preprocessing by default). Slice and pose come from the
    ground truth: for a method that must not see labels this is an *oracle* (the anatomical
    prior's oracle-pose ablation uses ``mask_outside=False, intensity_reference="crop"``).

    Args:
        size: output side, 128 as in the paper.
        slice_mode: ``"mid"`` (mid-ventricular), ``"max_lv"`` or a slice index.
        slice_offset: slices added to the chosen index (e.g. for neighbouring-slice augmentation).
        rv_side: side of the RV in the output.
        upper_percentile: intensity percentile mapped to 1.
        mask_outside: zero everything outside the ground-truth heart mask (Attri-SIVAE).
        intensity_reference: ``"mask"`` (percentile of the slice's intensities inside the ground-truth
            mask, Attri-SIVAE) or ``"crop"`` (percentile of the whole aligned crop).

    Example:
        >>> from monai_genvq.data.synthetic_cardiac import render_cardiac_phantom
        >>> case = render_cardiac_phantom(np.random.default_rng(0))
        >>> img, lab = CardiacAlignment()(case["image"][..., 0], case["label"][..., 0])
        >>> tuple(img.shape), float(img.max()) <= 1.0
        ((1, 128, 128), True)
        >>> oracle = CardiacAlignment(96, mask_outside=False, intensity_reference="crop")
        >>> tuple(oracle(case["image"][..., 0], case["label"][..., 0])[0].shape)
        (1, 96, 96)
    """

    def __init__(
        self,
        size: int = 128,
        slice_mode: str | int = "mid",
        slice_offset: int = 0,
        rv_side: str = "left",
        upper_percentile: float = 99.0,
        mask_outside: bool = True,
        intensity_reference: str = "mask",
    ) -> None:
        if rv_side not in ("left", "right"):
            raise ValueError(f"rv_side must be 'left' or 'right'; got {rv_side!r}")
        if intensity_reference not in ("mask", "crop"):
            raise ValueError(f"intensity_reference must be 'mask' or 'crop'; got {intensity_reference!r}")
        self.size, self.slice_mode, self.slice_offset = int(size), slice_mode, int(slice_offset)
        self.rv_side, self.upper_percentile = rv_side, float(upper_percentile)
        self.mask_outside, self.intensity_reference = bool(mask_outside), intensity_reference
        self.last_params: dict[str, Any] = {}

    def __call__(self, image: Any, label: Any, slice_offset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        image, label = _squeeze_channel(_as_numpy(image), 3), _squeeze_channel(_as_numpy(label), 3)
        if image.ndim == 2:
            image, label = image[..., None], label[..., None]
        if image.ndim != 3 or image.shape != label.shape:
            raise ValueError(
                f"expected ED image and label volumes of equal shape (X, Y, Z); got {image.shape}, {label.shape}"
            )
        offset = self.slice_offset if slice_offset is None else int(slice_offset)
        index = select_short_axis_slice(label, self.slice_mode, offset)
        img, lab, params = align_short_axis(
            image[:, :, index],
            label[:, :, index],
            self.size,
            self.rv_side,
            self.upper_percentile,
            self.mask_outside,
            self.intensity_reference,
        )
        self.last_params = {"slice": index, **params}
        return torch.as_tensor(img)[None], torch.as_tensor(lab)[None]


class CardiacAlignmentd(MapTransform):
    """Dictionary form of :class:`CardiacAlignment`; the alignment parameters go to ``"<image_key>_alignment"``.

    Args:
        keys: ``(image_key, label_key)``.
        slice_offset_key: optional key of a per-item slice offset (datalists expanded over
            neighbouring slices); absent -> the transform's ``slice_offset``.
        other args: as :class:`CardiacAlignment` (``mask_outside=False, intensity_reference="crop"``:
            the anatomical prior's oracle-pose ablation).

    Example:
        >>> from monai_genvq.data.synthetic_cardiac import render_cardiac_phantom
        >>> case = render_cardiac_phantom(np.random.default_rng(0))
        >>> t = CardiacAlignmentd(keys=("image", "label"))
        >>> out = t({"image": case["image"][..., 0], "label": case["label"][..., 0]})
        >>> tuple(out["image"].shape), sorted(out["image_alignment"])
        ((1, 128, 128), ['angle', 'centre', 'rv_centre', 'slice'])
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        size: int = 128,
        slice_mode: str | int = "mid",
        slice_offset: int = 0,
        rv_side: str = "left",
        upper_percentile: float = 99.0,
        slice_offset_key: str | None = "slice_offset",
        mask_outside: bool = True,
        intensity_reference: str = "mask",
    ) -> None:
        super().__init__(keys)
        if len(self.keys) != 2:
            raise ValueError(f"CardiacAlignmentd needs keys=(image_key, label_key); got {self.keys}")
        self.op = CardiacAlignment(
            size, slice_mode, slice_offset, rv_side, upper_percentile, mask_outside, intensity_reference
        )
        self.slice_offset_key = slice_offset_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image_key, label_key = self.keys
        offset = d.get(self.slice_offset_key) if self.slice_offset_key else None
        try:
            d[image_key], d[label_key] = self.op(d[image_key], d[label_key], offset)
        except CardiacDataError as e:
            raise CardiacDataError(f"{d.get('subject', 'case')}: {e}") from None
        d[f"{image_key}_alignment"] = dict(self.op.last_params)
        return d


class LoadCardiacEDd(Transform):
    """Load the end-diastolic image/label volumes of a datalist record (:func:`load_cardiac_ed`).

    The record's ``image``/``label`` paths are replaced by (X, Y, Z) arrays (label in the
    internal convention, both brought to one orientation so that the voxel-space alignment sees
    the same anatomy whatever the file's axis directions) and ``spacing`` is added; bad files are
    refused with a ``CardiacDataError`` naming the file (see :func:`load_cardiac_ed`).

    Args:
        require_labels: structures that must be present in the ED ground truth.

    Example:
        >>> from monai_genvq.data import discover_acdc, ensure_synthetic_acdc
        >>> d = LoadCardiacEDd()(discover_acdc(ensure_synthetic_acdc())[0])  # doctest: +SKIP
    """

    def __init__(self, require_labels: Sequence[str] = ("LV", "MYO", "RV")) -> None:
        self.require_labels = tuple(require_labels)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        return load_cardiac_ed(data, self.require_labels)
