"""Segmentation overlays: image / ground truth / predictions side by side, written as one PNG grid."""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_genvq.visualize.grids import atomic_write_bytes, image_grid, pyplot, save_figure

__all__ = [
    "LABEL_COLOURS",
    "add_label_legend",
    "crop_around",
    "label_legend_handles",
    "label_overlay",
    "save_overlay_grid",
]

#: RGB of labels 1, 2, 3, ... (LV red, MYO green, RV blue for the cardiac convention; cycled beyond).
LABEL_COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.9, 0.1, 0.1),
    (0.1, 0.8, 0.2),
    (0.1, 0.4, 1.0),
    (1.0, 0.8, 0.0),
    (0.8, 0.2, 0.9),
    (0.0, 0.8, 0.8),
    (1.0, 0.5, 0.0),
    (0.6, 0.4, 0.2),
    (1.0, 0.6, 0.8),
    (0.5, 0.5, 0.5),
)


def _np(x) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)


def label_overlay(image, label, alpha: float = 0.45, value_range: tuple[float, float] | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Grey image (H, W) with label ``l > 0`` blended in colour :data:`LABEL_COLOURS` ``[l-1]``: (3, H, W) in [0, 1].

    ``label=None`` gives the plain grey image. ``value_range`` defaults to the image's 1st-99th percentiles.

    Example:
        >>> [round(float(v), 2) for v in label_overlay(np.zeros((2, 2)), np.array([[0, 1], [0, 0]]))[:, 0, 1]]
        [0.4, 0.04, 0.04]
    """
    img = _np(image).astype(np.float32).squeeze()
    if img.ndim != 2:
        raise ValueError(f"label_overlay expects a 2-D image; got shape {img.shape}")
    lo, hi = value_range if value_range is not None else (float(np.percentile(img, 1)), float(np.percentile(img, 99)))
    grey = np.clip((img - lo) / max(hi - lo, 1e-8), 0.0, 1.0)
    rgb = np.repeat(grey[None], 3, axis=0)
    if label is None:
        return rgb
    lab = _np(label).astype(np.int64).squeeze()
    if lab.shape != img.shape:
        raise ValueError(f"label {lab.shape} and image {img.shape} differ in shape")
    for value in np.unique(lab[lab > 0]):
        colour = np.asarray(LABEL_COLOURS[(int(value) - 1) % len(LABEL_COLOURS)], np.float32)[:, None]
        m = lab == value
        rgb[:, m] = (1 - alpha) * rgb[:, m] + alpha * colour
    return rgb


def crop_around(arrays: Sequence[np.ndarray], mask: np.ndarray, size: int) -> list[np.ndarray]:
    """Crop (…, H, W) arrays to a ``size`` square centred on ``mask``'s foreground (image centre if empty), zero-padded."""
    mask = _np(mask).squeeze()
    pts = np.argwhere(mask > 0)
    centre = pts.mean(0).round().astype(int) if len(pts) else np.array(mask.shape) // 2
    out = []
    for a in arrays:
        a = _np(a)
        pad = [(0, 0)] * (a.ndim - 2) + [(size, size), (size, size)]
        p = np.pad(a, pad)
        r0, c0 = centre + size - size // 2
        out.append(p[..., r0 : r0 + size, c0 : c0 + size])
    return out


def label_legend_handles(label_names: Sequence[str] | Mapping[int, str], values: Sequence[int] | None = None) -> list:
    """Legend patches (matplotlib) of labels in their :data:`LABEL_COLOURS` colour.

    Args:
        label_names: names of labels 1, 2, ... in order, or ``{label value: name}``.
        values: label values to list (default: every named label).

    Example:
        >>> [h.get_label() for h in label_legend_handles(["LV", "MYO"])]
        ['LV', 'MYO']
    """
    from matplotlib.patches import Patch

    names = dict(label_names) if isinstance(label_names, Mapping) else {i + 1: n for i, n in enumerate(label_names)}
    values = sorted(names) if values is None else [int(v) for v in values]
    return [
        Patch(facecolor=LABEL_COLOURS[(v - 1) % len(LABEL_COLOURS)], edgecolor="none", label=str(names.get(v, v)))
        for v in values
        if v > 0
    ]


def add_label_legend(
    fig: Any,
    label_names: Sequence[str] | Mapping[int, str],
    values: Sequence[int] | None = None,
    title: str = "labels",
    max_columns: int = 6,
    bottom: float = 0.12,
) -> list:
    """Draw the legend of :func:`label_legend_handles` under a figure's panels; returns the handles.

    Args:
        fig: the matplotlib Figure.
        label_names: names of labels 1, 2, ... in order, or ``{label value: name}``.
        values: label values to list (default: every named label).
        title: the legend's title.
        max_columns: most entries in one row.
        bottom: the figure fraction kept free under the panels for the legend.

    Example:
        >>> from monai_genvq.visualize.grids import pyplot
        >>> [h.get_label() for h in add_label_legend(pyplot().figure(), ["LV", "MYO"])]
        ['LV', 'MYO']
    """
    handles = label_legend_handles(label_names, values)
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=max(1, min(len(handles), max_columns)),
        fontsize=8,
        frameon=False,
        title=title,
        title_fontsize=8,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.subplots_adjust(bottom=bottom)
    return handles


def save_overlay_grid(
    rows: Sequence[Sequence[np.ndarray]],
    path: str | os.PathLike,
    pad: int = 2,
    column_titles: Sequence[str] | None = None,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
) -> Path:
    """Write rows of equally sized RGB panels (3, H, W) as one PNG.

    Without ``column_titles`` and ``label_names`` the panels are tiled pixel for pixel (layout by
    :func:`~monai_genvq.visualize.grids.image_grid`); with either, the figure has a title over each
    column (e.g. image / ground truth / each method) and a legend patch per label name in its colour.

    Example:
        >>> save_overlay_grid([[np.zeros((3, 4, 4))] * 3] * 2, "/tmp/overlays.png")  # doctest: +SKIP
    """
    from matplotlib.image import imsave

    panels = [np.asarray(p, np.float32) for row in rows for p in row]
    ncol = max((len(r) for r in rows), default=0)
    if not panels or any(len(r) != ncol for r in rows):
        raise ValueError("save_overlay_grid needs rows of the same, non-zero number of panels")
    if column_titles is not None or label_names is not None:
        return save_figure(_overlay_grid_figure(rows, column_titles, label_names), path, dpi=150)
    channels = [image_grid(np.stack([p[c] for p in panels]), nrow=ncol, pad=pad) for c in range(3)]
    buffer = io.BytesIO()
    imsave(buffer, np.stack(channels, -1), format="png")
    return atomic_write_bytes(path, buffer.getvalue())


def _overlay_grid_figure(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str] | None = None,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
):
    """The matplotlib Figure of :func:`save_overlay_grid` with column titles and a label legend (not closed)."""
    n_rows, n_cols = len(rows), len(rows[0])
    if column_titles is not None and len(column_titles) != n_cols:
        raise ValueError(f"need one column title per panel column ({n_cols}), got {len(column_titles)}")
    plt = pyplot()
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.8 * n_cols, 1.7 * n_rows + 0.9), squeeze=False)
    for i, row in enumerate(rows):
        for j, panel in enumerate(row):
            ax = axes[i, j]
            ax.imshow(np.clip(np.transpose(np.asarray(panel, np.float32), (1, 2, 0)), 0.0, 1.0))
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0 and column_titles is not None:
                ax.set_title("\n".join(textwrap.wrap(str(column_titles[j]), 18)) or " ", fontsize=8)
    if label_names is not None:
        add_label_legend(fig, label_names)
    return fig
