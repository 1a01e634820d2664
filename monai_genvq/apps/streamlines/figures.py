"""Streamline renders: original and reconstructed groups of streamlines side by side (2-D projections)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_genvq.visualize.grids import pyplot, save_figure

__all__ = ["as_streamline_points", "save_streamline_render"]

#: font size of the tick labels of streamline renders (readable at the saved 100 dpi)
TICK_FONTSIZE = 8


def as_streamline_points(group: Any) -> np.ndarray:
    """A group of streamlines as (S, P, 3) points: accepts (S, P, 3) or the bundle tensor layout (3, S, P).

    Example:
        >>> as_streamline_points(np.zeros((3, 64, 32))).shape
        (64, 32, 3)
    """
    arr = np.asarray(group.detach().cpu() if isinstance(group, torch.Tensor) else group, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return arr
    if arr.ndim == 3 and arr.shape[0] == 3:
        return np.moveaxis(arr, 0, -1)
    raise ValueError(f"a streamline group must be (S, P, 3) or (3, S, P), got shape {arr.shape}")


def _direction_colours(lines: np.ndarray) -> np.ndarray:
    """(S, P-1, 3) RGB per segment from |direction| (the tractography convention: x red, y green, z blue)."""
    d = np.abs(np.diff(lines, axis=1))
    return d / np.maximum(d.max(-1, keepdims=True), 1e-12)


def save_streamline_render(
    originals: Sequence[Any],
    reconstructions: Sequence[Any],
    path: str | os.PathLike,
    names: Sequence[str] | None = None,
    title: str = "",
    units: str = "mm",
    row_titles: tuple[str, str] = ("original", "reconstruction"),
) -> Path:
    """Columns = groups, rows = original / reconstruction; each panel a 2-D projection of the streamlines.

    Each group is drawn on the plane of its two axes of largest extent (the same plane and limits for
    its original and its reconstruction), segments coloured by local direction.

    Args:
        originals: groups of streamlines, each (S, P, 3) or (3, S, P).
        reconstructions: the matching reconstructions (same count).
        path: PNG file to write (atomically).
        names: one title per group (e.g. bundle names).
        title: figure title.
        units: axis units in the labels.
        row_titles: names of the two rows (e.g. ``("held-out data", "prior samples")`` for unpaired groups).

    Example:
        >>> save_streamline_render([x], [x_hat], "render.png", names=["AF_L"])  # doctest: +SKIP
    """
    return save_figure(_streamline_render_figure(originals, reconstructions, names, title, units, row_titles), path)


def _streamline_render_figure(
    originals: Sequence[Any],
    reconstructions: Sequence[Any],
    names: Sequence[str] | None = None,
    title: str = "",
    units: str = "mm",
    row_titles: tuple[str, str] = ("original", "reconstruction"),
):
    """The matplotlib Figure of :func:`save_streamline_render` (not written, not closed)."""
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    if len(originals) != len(reconstructions) or len(originals) == 0:
        raise ValueError(
            f"need the same positive number of original and reconstructed groups, got {len(originals)} and {len(reconstructions)}"
        )
    names = list(names) if names is not None else [f"group {i}" for i in range(len(originals))]
    plt = pyplot()
    axis_names = "xyz"
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.0), squeeze=False)
    for j, (orig, rec) in enumerate(zip(originals, reconstructions)):
        orig, rec = as_streamline_points(orig), as_streamline_points(rec)
        extent = orig.reshape(-1, 3).max(0) - orig.reshape(-1, 3).min(0)
        a, b = sorted(np.argsort(extent)[-2:])
        both = np.concatenate([orig.reshape(-1, 3), rec.reshape(-1, 3)])
        lo, hi = both.min(0), both.max(0)
        margin = 0.05 * max(hi[a] - lo[a], hi[b] - lo[b], 1e-9)
        for i, lines in enumerate((orig, rec)):
            ax = axes[i, j]
            segments = np.stack([lines[:, :-1][..., [a, b]], lines[:, 1:][..., [a, b]]], axis=2).reshape(-1, 2, 2)
            ax.add_collection(LineCollection(segments, colors=_direction_colours(lines).reshape(-1, 3), linewidths=0.5))
            ax.set_xlim(lo[a] - margin, hi[a] + margin), ax.set_ylim(lo[b] - margin, hi[b] + margin)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=TICK_FONTSIZE)
            ax.xaxis.set_major_locator(MaxNLocator(4)), ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.set_xlabel(f"{axis_names[a]} ({units})", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{row_titles[i]}\n{axis_names[b]} ({units})", fontsize=8)
            else:
                ax.set_ylabel(f"{axis_names[b]} ({units})", fontsize=8)
        axes[0, j].set_title(names[j], fontsize=9)
    fig.suptitle(title or f"streamlines: {row_titles[0]} (top) vs {row_titles[1]} (bottom)", fontsize=9)
    fig.tight_layout()
    return fig
