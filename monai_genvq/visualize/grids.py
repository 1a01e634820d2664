"""Image grids written as PNG (reconstructions, prior samples) and the one matplotlib entry of the package."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from monai_genvq.utils.fileio import atomic_path, atomic_write_bytes

__all__ = ["image_grid", "plot_reconstruction_grid", "pyplot", "save_figure", "save_image_grid"]


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a matplotlib figure atomically (format from the suffix) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return Path(path)


def image_grid(
    images: torch.Tensor | np.ndarray, nrow: int = 8, pad: int = 2, value_range: tuple = (0.0, 1.0)
) -> np.ndarray:
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


def plot_reconstruction_grid(
    images: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike, n: int = 8, title: str = ""
) -> Path:
    """Two rows: inputs and their reconstructions (first ``n`` of a batch of (B, 1, H, W))."""
    plt = pyplot()
    x = images[:n].detach().cpu().numpy()
    r = reconstructions[:n].detach().cpu().numpy()
    fig, axes = plt.subplots(2, len(x), figsize=(1.4 * len(x), 3), squeeze=False)
    for j in range(len(x)):
        for i, arr in enumerate((x, r)):
            axes[i, j].imshow(arr[j, 0], cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=8)
    axes[1, 0].set_ylabel("reconstruction", fontsize=8)
    fig.suptitle(title or "reconstructions", fontsize=9)
    return save_figure(fig, path)
