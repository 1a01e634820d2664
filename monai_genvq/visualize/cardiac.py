"""Figures of the cardiac VAEs: attribute traversals, SSIM distributions, reconstruction grids (matplotlib Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["attribute_traversal", "plot_attribute_traversal", "plot_reconstruction_grid", "plot_ssim_distribution"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    os.replace(tmp, path)
    _pyplot().close(fig)
    return path


@torch.no_grad()
def attribute_traversal(
    network: torch.nn.Module, mu: torch.Tensor, dims: Sequence[int], values: Sequence[float]
) -> torch.Tensor:
    """Decode ``mu`` (D,) with each dim of ``dims`` set to each of ``values``: (len(dims), len(values), C, H, W)."""
    network.eval()
    rows = []
    for d in dims:
        z = mu[None].repeat(len(values), 1)
        z[:, d] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
        rows.append(network.decode(z))
    return torch.stack(rows)


def plot_attribute_traversal(
    images: torch.Tensor, names: Sequence[str], values: Sequence[float], path: str | os.PathLike, title: str = ""
) -> Path:
    """Grid of a traversal (rows: regularised dims named by attribute; columns: latent values)."""
    plt = _pyplot()
    images = images.detach().cpu().numpy()
    n_rows, n_cols = images.shape[:2]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols, 1.4 * n_rows), squeeze=False)
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.imshow(images[i, j, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if i == n_rows - 1:
                ax.set_xlabel(f"{values[j]:+.1f}", fontsize=7)
            if j == 0:
                ax.set_ylabel(names[i], fontsize=8)
    fig.suptitle(title or "attribute traversal", fontsize=9)
    return _save(fig, path)


def plot_ssim_distribution(ssim: Mapping[str, Sequence[float]] | Sequence[float], path: str | os.PathLike, title: str = "") -> Path:
    """Histogram(s) of per-image SSIM (one series per method when given a mapping)."""
    plt = _pyplot()
    series = dict(ssim) if isinstance(ssim, Mapping) else {"SSIM": list(ssim)}
    fig, ax = plt.subplots(figsize=(4.5, 3))
    bins = np.linspace(0, 1, 41)
    for name, values in series.items():
        ax.hist(np.asarray(values, float), bins=bins, alpha=0.55, label=f"{name} (mean {np.mean(values):.3f})")
    ax.set_xlabel("SSIM (Gaussian window 11, σ 1.5, data range 1)")
    ax.set_ylabel("images")
    ax.legend(fontsize=7)
    ax.set_title(title or "SSIM distribution", fontsize=9)
    return _save(fig, path)


def plot_reconstruction_grid(images: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike, n: int = 8, title: str = "") -> Path:
    """Two rows: inputs and their reconstructions (first ``n`` of a batch of (B, 1, H, W))."""
    plt = _pyplot()
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
    return _save(fig, path)
