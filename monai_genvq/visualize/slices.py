"""Slices of a volume beside label maps (ground truth, cluster maps): one PNG per call."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.visualize.grids import pyplot, save_figure
from monai_genvq.visualize.segmentation import _np, add_label_legend, label_overlay

__all__ = ["save_segmentation_slices"]


def save_segmentation_slices(
    image: Any,
    label_maps: Mapping[str, Any],
    path: str | os.PathLike,
    axis: int = -1,
    index: int | None = None,
    title: str = "",
    label_names: Sequence[str] | Mapping[int, str] | None = None,
    legend: bool = True,
) -> Path:
    """Write a PNG: the image slice, then each label map of the same slice (categorical colours; 0 transparent).

    Args:
        image: (H, W) or (*spatial) or (C, *spatial) image (first channel shown; 3-D volumes are sliced).
        label_maps: ``{panel title: integer map}`` with the image's spatial shape.
        path: PNG file (written atomically).
        axis: slicing axis of a 3-D volume.
        index: slice index (default: the middle).
        title: figure title.
        label_names: names of label/cluster values 1, 2, ... (a sequence) or ``{value: name}``; default
            ``"cluster <id>"``.
        legend: draw the legend of the colours (one patch per non-zero id in the shown slice).

    Example:
        >>> save_segmentation_slices(vol, {"truth": lab, "clusters": seg}, "seg.png")  # doctest: +SKIP
    """
    return save_figure(_segmentation_slices_figure(image, label_maps, axis, index, title, label_names, legend), path)


def _segmentation_slices_figure(
    image: Any,
    label_maps: Mapping[str, Any],
    axis: int = -1,
    index: int | None = None,
    title: str = "",
    label_names: Sequence[str] | Mapping[int, str] | None = None,
    legend: bool = True,
):
    """The matplotlib Figure of :func:`save_segmentation_slices` (not written, not closed)."""
    img = _np(image).astype(np.float64)
    maps = {k: _np(v) for k, v in label_maps.items()}
    spatial = next(iter(maps.values())).shape if maps else img.shape[-2:]
    if img.ndim == len(spatial) + 1:
        img = img[0]
    if img.shape != tuple(spatial) or any(m.shape != tuple(spatial) for m in maps.values()):
        raise ValueError(
            f"image {img.shape} and label maps {[m.shape for m in maps.values()]} must share one spatial shape"
        )
    if img.ndim == 3:
        index = img.shape[axis] // 2 if index is None else index
        img = np.take(img, index, axis=axis)
        maps = {k: np.take(v, index, axis=axis) for k, v in maps.items()}
    elif img.ndim != 2:
        raise ValueError(f"expected a 2-D or 3-D image, got shape {img.shape}")
    value_range = tuple(float(v) for v in np.percentile(img, [1, 99])) if img.size else (0.0, 1.0)
    plt = pyplot()
    panels = {"image": None, **maps}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.2), squeeze=False)
    for ax, (name, m) in zip(axes[0], panels.items()):
        rgb = label_overlay(img, m, alpha=0.6, value_range=value_range)  # (3, H, W); label 0 transparent
        ax.imshow(np.transpose(rgb, (2, 1, 0)), origin="lower")
        ax.set_title(name, fontsize=8)
    for ax in axes[0]:
        ax.set_xticks([]), ax.set_yticks([])
    ids = sorted({int(v) for m in maps.values() for v in np.unique(m.astype(np.int64)) if v > 0})
    if legend and ids:
        named = {} if label_names is None else label_names
        names = dict(named) if isinstance(named, Mapping) else {i + 1: str(n) for i, n in enumerate(named)}
        names = {v: str(names.get(v, f"cluster {v}")) for v in ids}
        add_label_legend(fig, names, ids, "id → colour (0: background, not drawn)", max_columns=8, bottom=0.2)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
