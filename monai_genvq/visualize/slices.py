"""Slices of a volume beside label maps (ground truth, cluster maps): one PNG per call."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.visualize.grids import pyplot, save_figure
from monai_genvq.visualize.segmentation import _np, label_overlay

__all__ = ["save_segmentation_slices"]


def save_segmentation_slices(
    image: Any,
    label_maps: Mapping[str, Any],
    path: str | os.PathLike,
    axis: int = -1,
    index: int | None = None,
    title: str = "",
) -> Path:
    """Write a PNG: the image slice, then each label map of the same slice (categorical colours; 0 transparent).

    Args:
        image: (H, W) or (*spatial) or (C, *spatial) image (first channel shown; 3-D volumes are sliced).
        label_maps: ``{panel title: integer map}`` with the image's spatial shape.
        path: PNG file (written atomically).
        axis: slicing axis of a 3-D volume.
        index: slice index (default: the middle).
        title: figure title.

    Example:
        >>> save_segmentation_slices(vol, {"truth": lab, "clusters": seg}, "seg.png")  # doctest: +SKIP
    """

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
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    for ax, (name, m) in zip(axes[0], panels.items()):
        rgb = label_overlay(img, m, alpha=0.6, value_range=value_range)  # (3, H, W); label 0 transparent
        ax.imshow(np.transpose(rgb, (2, 1, 0)), origin="lower")
        ax.set_title(name, fontsize=8)
    for ax in axes[0]:
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
