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
    images: torch.Tensor,
    names: Sequence[str],
    values: Sequence[float],
    path: str | os.PathLike,
    title: str = "",
    row_values: Sequence[Sequence[float]] | None = None,
) -> Path:
    """Grid of a traversal (rows: regularised dims named by attribute; columns: latent values), written as PNG.

    Args:
        images: (rows, columns, C, H, W) decoded traversal.
        names: one name per row: the attribute and the latent dim it regularises (e.g. ``"LVEDV (z0)"``).
        values: one value per column, shown under the bottom row when ``row_values`` is not given.
        path: PNG file (written atomically).
        title: figure title.
        row_values: the latent values of each row (rows may traverse different ranges); written under
            every panel, so each row says which value of its latent dim was decoded.
    """
    return save_figure(_attribute_traversal_figure(images, names, values, title, row_values), path)


def _attribute_traversal_figure(
    images: torch.Tensor,
    names: Sequence[str],
    values: Sequence[float],
    title: str = "",
    row_values: Sequence[Sequence[float]] | None = None,
):
    """The matplotlib Figure of :func:`plot_attribute_traversal` (not written, not closed)."""
    plt = pyplot()
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    n_rows, n_cols = images.shape[:2]
    if len(names) != n_rows:
        raise ValueError(f"need one name per traversal row ({n_rows}), got {len(names)}")
    if row_values is not None and (len(row_values) != n_rows or any(len(v) != n_cols for v in row_values)):
        raise ValueError(f"row_values must be {n_rows} rows of {n_cols} latent values")
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols, 1.6 * n_rows + 0.4), squeeze=False)
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.imshow(images[i, j, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if row_values is not None:
                ax.set_xlabel(f"{float(row_values[i][j]):+.2f}", fontsize=8)
            elif i == n_rows - 1:
                ax.set_xlabel(f"{float(values[j]):+.2f}", fontsize=8)
            if j == 0:
                ax.set_ylabel(str(names[i]), fontsize=8)
    fig.supxlabel(
        "value of the row's latent dim (others fixed)" if row_values is not None else "traversal position",
        fontsize=8,
    )
    fig.suptitle(title or "attribute traversal", fontsize=9)
    return fig


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
