"""Slices of a volume beside label maps (ground truth, cluster maps): one PNG per call."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .grids import atomic_write_bytes

__all__ = ["save_segmentation_slices"]


def _np(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)


def save_segmentation_slices(
    image: Any, label_maps: Mapping[str, Any], path: str | os.PathLike, axis: int = -1, index: int | None = None, title: str = ""
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
    from .cardiac import _pyplot

    img = _np(image).astype(np.float64)
    maps = {k: _np(v) for k, v in label_maps.items()}
    spatial = next(iter(maps.values())).shape if maps else img.shape[-2:]
    if img.ndim == len(spatial) + 1:
        img = img[0]
    if img.shape != tuple(spatial) or any(m.shape != tuple(spatial) for m in maps.values()):
        raise ValueError(f"image {img.shape} and label maps {[m.shape for m in maps.values()]} must share one spatial shape")
    if img.ndim == 3:
        index = img.shape[axis] // 2 if index is None else index
        img = np.take(img, index, axis=axis)
        maps = {k: np.take(v, index, axis=axis) for k, v in maps.items()}
    elif img.ndim != 2:
        raise ValueError(f"expected a 2-D or 3-D image, got shape {img.shape}")
    lo, hi = np.percentile(img, [1, 99]) if img.size else (0.0, 1.0)
    img = np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1)
    plt = _pyplot()
    n = 1 + len(maps)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
    axes[0, 0].imshow(img.T, cmap="gray", origin="lower")
    axes[0, 0].set_title("image", fontsize=8)
    cmap = plt.get_cmap("tab20")
    for ax, (name, m) in zip(axes[0, 1:], maps.items()):
        ax.imshow(img.T, cmap="gray", origin="lower")
        m = m.astype(np.int64)
        rgba = np.zeros((*m.shape, 4))
        for v in np.unique(m):
            if v == 0:
                continue
            rgba[m == v] = cmap(int(v) % 20)
            rgba[m == v, 3] = 0.6
        ax.imshow(np.transpose(rgba, (1, 0, 2)), origin="lower")
        ax.set_title(name, fontsize=8)
    for ax in axes[0]:
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
