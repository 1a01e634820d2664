"""Figures of the cardiac VAEs: attribute traversals and SSIM distributions (matplotlib Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from monai_genvq.visualize.grids import pyplot, save_figure

__all__ = ["attribute_traversal", "plot_attribute_traversal", "plot_ssim_distribution"]


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
    plt = pyplot()
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
    return save_figure(fig, path)


def plot_ssim_distribution(
    ssim: Mapping[str, Sequence[float]] | Sequence[float], path: str | os.PathLike, title: str = ""
) -> Path:
    """Histogram(s) of per-image SSIM (one series per method when given a mapping)."""
    plt = pyplot()
    series = dict(ssim) if isinstance(ssim, Mapping) else {"SSIM": list(ssim)}
    fig, ax = plt.subplots(figsize=(4.5, 3))
    bins = np.linspace(0, 1, 41)
    for name, values in series.items():
        ax.hist(np.asarray(values, float), bins=bins, alpha=0.55, label=f"{name} (mean {np.mean(values):.3f})")
    ax.set_xlabel("SSIM (Gaussian window 11, σ 1.5, data range 1)")
    ax.set_ylabel("images")
    ax.legend(fontsize=7)
    ax.set_title(title or "SSIM distribution", fontsize=9)
    return save_figure(fig, path)
