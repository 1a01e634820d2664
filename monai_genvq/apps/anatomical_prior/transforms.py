"""Transforms of the anatomical-prior segmentation pipeline: label-free slice choice, label-map checks, evaluation matching.

The default pipeline uses **no labels** to prepare stage-2 and test images: :class:`StackSliced`
picks short-axis slices by their position in the stack (the middle slice(s)), the bundle then
crops/pads the image around the image centre and resizes it (MONAI ``ResizeWithPadOrCropd`` +
``Resized``, invertible, so predictions are scored in the image's own frame). The shape prior
covers un-posed anatomy because its label maps are prepared the same way and pose-augmented.

The *oracle-pose* ablation (slice, centre and rotation computed from the ground truth, which leaks
labels into the input and must not be used for an unsupervised result) is the shared cardiac
alignment :class:`monai_genvq.transforms.CardiacAlignmentd` with ``mask_outside=False,
intensity_reference="crop"``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from monai_genvq.metrics.cluster_dice import MATCH_CRITERIA
from monai_genvq.metrics.segmentation import hungarian_match

__all__ = [
    "HungarianMatch",
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


class HungarianMatch(Transform):
    """Array transform, evaluation only: relabel a cluster-id map to the ground-truth labels it overlaps most.

    One-to-one matching by the Hungarian algorithm (:func:`monai_genvq.metrics.hungarian_match`,
    built on the package's one matching :func:`monai_genvq.metrics.match_clusters`), on the cluster ×
    label overlap of the image by default — the standard way of scoring a clustering (e.g.
    intensity k-means) against labels. It uses the ground truth, so it flatters the clustering;
    never apply it to a method that names its labels itself.

    Args:
        num_labels: number of labels (and clusters).
        criterion: what the matching maximises: ``"overlap"`` (matched voxels) or ``"dice"`` (the
            sum of the matched pairs' Dice).

    Example:
        >>> HungarianMatch(3)(torch.tensor([[2, 2, 0, 1]]), torch.tensor([[1, 1, 0, 2]]))
        tensor([[1, 1, 0, 2]])
    """

    def __init__(self, num_labels: int = 4, criterion: str = "overlap") -> None:
        if criterion not in MATCH_CRITERIA:
            raise ValueError(f"criterion must be one of {MATCH_CRITERIA}; got {criterion!r}")
        self.num_labels, self.criterion = int(num_labels), criterion

    def __call__(self, pred: Any, label: Any) -> Any:  # type: ignore[override]
        clusters = np.asarray(torch.as_tensor(pred).detach().cpu()).astype(np.int64)
        target = np.asarray(torch.as_tensor(label).detach().cpu()).astype(np.int64)
        if clusters.shape != target.shape:
            raise ValueError(f"cluster map {clusters.shape} and label {target.shape} differ in shape")
        matched = hungarian_match(clusters, target, self.num_labels, self.criterion)
        if isinstance(pred, torch.Tensor):
            return pred.clone().copy_(torch.as_tensor(matched, device=pred.device))
        return matched


class HungarianMatchd(MapTransform):
    """Dictionary form of :class:`HungarianMatch` (evaluation only; uses the ground truth under ``label_key``).

    Args:
        keys: cluster-id maps (1, *spatial) (e.g. ``"pred"`` after ``AsDiscreted(argmax=True)``).
        label_key: ground truth (1, *spatial).
        num_labels: number of labels (and clusters).
        criterion: ``"overlap"`` or ``"dice"``, as :class:`HungarianMatch`.

    Example:
        >>> HungarianMatchd("pred", num_labels=3)({"pred": torch.tensor([[2, 2, 0, 1]]), "label": torch.tensor([[1, 1, 0, 2]])})["pred"]
        tensor([[1, 1, 0, 2]])
    """

    def __init__(
        self, keys: KeysCollection = "pred", label_key: str = "label", num_labels: int = 4, criterion: str = "overlap"
    ) -> None:
        super().__init__(keys)
        self.label_key, self.op = label_key, HungarianMatch(num_labels, criterion)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            try:
                d[key] = self.op(d[key], d[self.label_key])
            except ValueError as e:
                raise ValueError(f"{key} vs {self.label_key}: {e}") from None
        return d
