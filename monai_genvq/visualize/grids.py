"""Image grids written as PNG (reconstructions, prior samples)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["image_grid", "save_image_grid", "atomic_write_bytes"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` via a temporary sibling file and ``os.replace`` (the bytes twin of ``reporting.atomic_write_text``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, pad: int = 2, value_range: tuple = (0.0, 1.0)) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) images -> one (rows·(H+pad)+pad, nrow·(W+pad)+pad) float array in [0, 1].

    Example:
        >>> image_grid(np.zeros((3, 1, 4, 4)), nrow=2).shape
        (14, 14)
    """
    arr = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images, dtype=np.float32)
    if arr.ndim == 4:
        if arr.shape[1] != 1:
            raise ValueError(f"image_grid expects one channel, got shape {arr.shape}")
        arr = arr[:, 0]
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"image_grid expects (N, H, W) or (N, 1, H, W) images, got shape {arr.shape}")
    lo, hi = value_range
    arr = np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
    n, h, w = arr.shape
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.ones((rows * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    for i, img in enumerate(arr):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = img
    return grid


def save_image_grid(images, path: str | os.PathLike, nrow: int = 8, value_range: tuple = (0.0, 1.0)) -> Path:
    """Write :func:`image_grid` as a grey-scale PNG, atomically."""
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    imsave(buffer, image_grid(images, nrow, value_range=value_range), cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return atomic_write_bytes(path, buffer.getvalue())
