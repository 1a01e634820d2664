"""Transforms of the anatomical-prior segmentation pipeline: label-free slice choice, label-map checks, evaluation matching.

The default pipeline uses **no labels** to prepare stage-2 and test images: :class:`StackSliced`
picks short-axis slices by their position in the stack (the middle slice(s)), the bundle then
crops/pads the image around the image centre and resizes it (MONAI ``ResizeWithPadOrCropd`` +
``Resized``, invertible, so predictions are scored in the image's own frame). The shape prior
covers un-posed anatomy because its label maps are prepared the same way and pose-augmented.

:class:`AlignCardiacSliced` is kept only for the *oracle-pose* ablation: it puts a slice in the
Attri-SIVAE pose (centre, rotation) computed from the ground truth, which leaks labels into the
input and must not be used for an unsupervised result.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from monai_genvq.data.cardiac import CardiacDataError
from monai_genvq.metrics.segmentation import hungarian_match
from monai_genvq.transforms.cardiac import align_short_axis, select_short_axis_slice

__all__ = [
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


class LabelMapError(ValueError):
    """A label map is empty, holds values outside the declared label set, or does not match its image."""


def _spatial_shape(a: np.ndarray) -> tuple[int, ...]:
    return tuple(a.shape[1:]) if a.ndim >= 3 and a.shape[0] == 1 else tuple(a.shape)


def check_label_map(
    label: Any, num_labels: int, image: Any | None = None, source: str = "label map", allow_empty: bool = False
) -> None:
    """Raise :class:`LabelMapError` unless ``label`` is a valid map of labels ``0..num_labels-1``.

    Checks: finite integer values inside the declared set, at least one foreground voxel (unless
    ``allow_empty``), and the same spatial shape as ``image`` (channel dims ignored) when given.

    Example:
        >>> check_label_map(np.array([[0, 1], [2, 0]]), 3)
        >>> check_label_map(np.array([[0, 5]]), 3)
        Traceback (most recent call last):
        ...
        monai_genvq.apps.anatomical_prior.transforms.LabelMapError: label map holds values [5] outside the declared label set 0..2
    """
    lab = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label)
    if lab.size == 0:
        raise LabelMapError(f"{source} is empty (size 0)")
    if not np.all(np.isfinite(lab)):
        raise LabelMapError(f"{source} holds non-finite values (NaN or inf)")
    if np.any(lab != np.round(lab)):
        raise LabelMapError(
            f"{source} holds non-integer values; resample label maps with nearest-neighbour interpolation"
        )
    values = np.unique(lab).astype(np.int64)
    bad = [int(v) for v in values if v < 0 or v >= num_labels]
    if bad:
        raise LabelMapError(f"{source} holds values {bad} outside the declared label set 0..{num_labels - 1}")
    if not allow_empty and not np.any(lab > 0):
        raise LabelMapError(f"{source} is empty: no foreground voxel (all background)")
    if image is not None:
        img = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
        ls, is_ = _spatial_shape(lab), _spatial_shape(img)
        if ls != is_:
            raise LabelMapError(f"{source}: label spatial shape {tuple(ls)} differs from the image's {tuple(is_)}")


class ValidateLabelMap(Transform):
    """Array transform: :func:`check_label_map`, returns the label unchanged.

    Args:
        num_labels: size of the declared label set ``0..num_labels-1``.
        allow_empty: accept maps with no foreground.

    Example:
        >>> ValidateLabelMap(4)(np.array([[0, 3]])).tolist()
        [[0, 3]]
    """

    def __init__(self, num_labels: int, allow_empty: bool = False) -> None:
        self.num_labels, self.allow_empty = int(num_labels), bool(allow_empty)

    def __call__(self, label: Any, image: Any | None = None, source: str = "label map") -> Any:  # type: ignore[override]
        check_label_map(label, self.num_labels, image, source, self.allow_empty)
        return label


class ValidateLabelMapd(MapTransform):
    """Dictionary form of :class:`ValidateLabelMap`; errors name the item's ``subject`` / label file.

    Args:
        keys: label key(s).
        num_labels: declared label set size.
        image_key: optional image key whose spatial shape must match.
        allow_empty: accept maps with no foreground.

    Example:
        >>> d = ValidateLabelMapd("label", 4)({"label": np.ones((1, 2, 2)), "image": np.zeros((1, 2, 2))})
    """

    def __init__(
        self,
        keys: KeysCollection = "label",
        num_labels: int = 4,
        image_key: str | None = "image",
        allow_empty: bool = False,
    ) -> None:
        super().__init__(keys)
        self.op, self.image_key = ValidateLabelMap(num_labels, allow_empty), image_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        name = d.get("subject") or d.get("label_file") or "item"
        for key in self.key_iterator(d):
            image = d.get(self.image_key) if self.image_key else None
            self.op(d[key], image, source=f"{name} '{key}'")
        return d


class AlignCardiacSlice(Transform):
    """Array transform: ED volumes (X, Y, Z) -> one aligned short-axis slice pair ((1, size, size) each).

    The slice (``slice_mode`` + ``slice_offset``, :func:`select_short_axis_slice`) and pose come
    from the ground truth (a stand-in for the atlas registration of Dalca et al. 2018); the image
    is NOT masked and is divided by its ``upper_percentile`` over the whole crop, clipped to [0, 1].

    Args:
        size: crop side (native pixels).
        slice_mode: ``"mid"``, ``"max_lv"`` or an index.
        slice_offset: added to the chosen slice.
        rv_side: side of the RV in the output.
        upper_percentile: crop intensity percentile mapped to 1.

    Example:
        >>> from monai_genvq.data.synthetic_cardiac import render_cardiac_phantom
        >>> case = render_cardiac_phantom(np.random.default_rng(0))
        >>> img, lab = AlignCardiacSlice(96)(case["image"][..., 0], case["label"][..., 0])
        >>> tuple(img.shape), tuple(lab.shape)
        ((1, 96, 96), (1, 96, 96))
    """

    def __init__(
        self,
        size: int = 96,
        slice_mode: str | int = "mid",
        slice_offset: int = 0,
        rv_side: str = "left",
        upper_percentile: float = 99.0,
    ) -> None:
        self.size, self.slice_mode, self.slice_offset = int(size), slice_mode, int(slice_offset)
        self.rv_side, self.upper_percentile = rv_side, float(upper_percentile)

    def __call__(self, image: Any, label: Any, slice_offset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        from scipy.ndimage import affine_transform

        image, label = np.asarray(image, np.float32), np.asarray(label)
        image, label = (image[0], label[0]) if image.ndim == 4 else (image, label)
        if image.ndim == 2:
            image, label = image[..., None], label[..., None]
        if image.shape != label.shape or image.ndim != 3:
            raise LabelMapError(
                f"image {image.shape} and label {label.shape} must be volumes (X, Y, Z) of the same shape"
            )
        index = select_short_axis_slice(
            label, self.slice_mode, self.slice_offset if slice_offset is None else int(slice_offset)
        )
        img2, lab2 = image[:, :, index], label[:, :, index]
        _, out_lab, params = align_short_axis(img2, lab2, self.size, self.rv_side, mask_outside=False)
        c, s = np.cos(params["angle"]), np.sin(params["angle"])
        rot = np.array([[c, -s], [s, c]])
        offset = np.asarray(params["centre"]) - rot @ np.full(2, (self.size - 1) / 2.0)
        out = affine_transform(img2, rot, offset=offset, output_shape=(self.size, self.size), order=1, cval=0.0)
        hi = float(np.percentile(out, self.upper_percentile))
        out = np.clip(out / hi, 0.0, 1.0) if hi > 0 else np.zeros_like(out)
        return torch.as_tensor(out.astype(np.float32))[None], torch.as_tensor(out_lab)[None]


class AlignCardiacSliced(MapTransform):
    """Dictionary form of :class:`AlignCardiacSlice` (per-item ``slice_offset`` read from ``slice_offset_key``).

    Example:
        >>> t = AlignCardiacSliced(("image", "label"), size=96)
        >>> out = t({"image": case["image"][..., 0], "label": case["label"][..., 0]})  # doctest: +SKIP
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        size: int = 96,
        slice_mode: str | int = "mid",
        slice_offset: int = 0,
        rv_side: str = "left",
        upper_percentile: float = 99.0,
        slice_offset_key: str | None = "slice_offset",
    ) -> None:
        super().__init__(keys)
        if len(self.keys) != 2:
            raise ValueError(f"AlignCardiacSliced needs keys=(image_key, label_key); got {self.keys}")
        self.op = AlignCardiacSlice(size, slice_mode, slice_offset, rv_side, upper_percentile)
        self.slice_offset_key = slice_offset_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ik, lk = self.keys
        offset = d.get(self.slice_offset_key) if self.slice_offset_key else None
        try:
            d[ik], d[lk] = self.op(d[ik], d[lk], offset)
        except (CardiacDataError, LabelMapError) as e:
            raise type(e)(f"{d.get('subject', 'case')}: {e}") from None
        return d


def stack_slice_index(n_slices: int, offset: int = 0, position: float = 0.5) -> int:
    """Label-free slice choice: ``floor(position · (n_slices − 1)) + offset``, clipped to the stack.

    ``position=0.5`` is the middle of the stack (for a short-axis stack from base to apex, a
    mid-ventricular slice). Nothing but the number of slices is used.

    Example:
        >>> stack_slice_index(8), stack_slice_index(8, 1), stack_slice_index(8, -9), stack_slice_index(1, 2)
        (3, 4, 0, 0)
    """
    if n_slices < 1:
        raise ValueError(f"the stack holds no slice (n_slices={n_slices})")
    if not 0.0 <= float(position) <= 1.0:
        raise ValueError(f"position must be in [0, 1]; got {position}")
    index = int(np.floor(float(position) * (n_slices - 1))) + int(offset)
    return int(np.clip(index, 0, n_slices - 1))


class StackSlice(Transform):
    """Array transform: volume(s) (X, Y, Z) -> the slice(s) (1, X, Y) at :func:`stack_slice_index` (no labels used).

    Args:
        position: fraction of the stack (0 first slice, 1 last); 0.5 = middle.
        offset: slices added to that index (neighbouring-slice datalists).

    Example:
        >>> StackSlice()(np.zeros((4, 5, 8)), np.ones((4, 5, 8)))[1].shape
        torch.Size([1, 4, 5])
    """

    def __init__(self, position: float = 0.5, offset: int = 0) -> None:
        self.position, self.offset = float(position), int(offset)

    def __call__(self, *volumes: Any, offset: int | None = None) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        arrays = [np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v) for v in volumes]
        arrays = [a[0] if a.ndim == 4 and a.shape[0] == 1 else a for a in arrays]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or any(a.ndim != 3 for a in arrays):
            raise LabelMapError(f"expected volumes (X, Y, Z) of one shape; got {[a.shape for a in arrays]}")
        index = stack_slice_index(arrays[0].shape[2], self.offset if offset is None else int(offset), self.position)
        self.last_index = index
        return tuple(torch.as_tensor(np.ascontiguousarray(a[:, :, index]))[None] for a in arrays)


class StackSliced(MapTransform):
    """Dictionary form of :class:`StackSlice` (the same index for every key; ``slice_offset`` read per item).

    The chosen index is stored under ``"slice_index"``.

    Example:
        >>> StackSliced(("image", "label"))({"image": np.zeros((4, 5, 8)), "label": np.zeros((4, 5, 8)), "slice_offset": 1})["slice_index"]
        4
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        position: float = 0.5,
        offset: int = 0,
        slice_offset_key: str | None = "slice_offset",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.op, self.slice_offset_key = StackSlice(position, offset), slice_offset_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        offset = d.get(self.slice_offset_key) if self.slice_offset_key else None
        try:
            out = self.op(*(d[k] for k in keys), offset=offset)
        except LabelMapError as e:
            raise LabelMapError(f"{d.get('subject', 'case')}: {e}") from None
        d.update(zip(keys, out))
        d["slice_index"] = self.op.last_index
        return d


class HungarianMatchd(MapTransform):
    """Evaluation only: relabel cluster ids of ``keys`` to the ground-truth labels they overlap most.

    One-to-one matching by the Hungarian algorithm on the cluster × label overlap of each image
    (:func:`monai_genvq.metrics.hungarian_match`) — the standard way of scoring a clustering
    (e.g. intensity k-means) against labels. It uses the ground truth, so it flatters the
    clustering; never apply it to a method that names its labels itself.

    Args:
        keys: cluster-id maps (1, *spatial) (e.g. ``"pred"`` after ``AsDiscreted(argmax=True)``).
        label_key: ground truth (1, *spatial).
        num_labels: number of labels (and clusters).

    Example:
        >>> HungarianMatchd("pred", num_labels=3)({"pred": torch.tensor([[2, 2, 0, 1]]), "label": torch.tensor([[1, 1, 0, 2]])})["pred"]
        tensor([[1, 1, 0, 2]])
    """

    def __init__(self, keys: KeysCollection = "pred", label_key: str = "label", num_labels: int = 4) -> None:
        super().__init__(keys)
        self.label_key, self.num_labels = label_key, int(num_labels)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:

        d = dict(data)
        label = np.asarray(torch.as_tensor(d[self.label_key]).detach().cpu()).astype(np.int64)
        for key in self.key_iterator(d):
            pred = torch.as_tensor(d[key])
            clusters = np.asarray(pred.detach().cpu()).astype(np.int64)
            if clusters.shape != label.shape:
                raise ValueError(f"{key} {clusters.shape} and {self.label_key} {label.shape} differ in shape")
            matched = torch.as_tensor(hungarian_match(clusters, label, self.num_labels), device=pred.device)
            d[key] = pred.clone().copy_(matched) if isinstance(pred, torch.Tensor) else matched
        return d
