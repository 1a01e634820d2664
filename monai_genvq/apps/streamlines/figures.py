"""Streamline renders: original and reconstructed groups of streamlines side by side (2-D projections)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_genvq.visualize.grids import pyplot, save_figure

__all__ = ["SUBJECT_VIEWS", "as_streamline_points", "save_streamline_render", "save_subject_render"]

#: planes of :func:`save_subject_render`: view name -> (horizontal axis, vertical axis) in RAS
SUBJECT_VIEWS = {"sagittal": (1, 2), "coronal": (0, 2), "axial": (0, 1)}

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


def save_subject_render(
    originals: Sequence[Any],
    reconstructions: Sequence[Any],
    names: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
    views: Sequence[str] = ("sagittal", "axial"),
    units: str = "mm",
) -> Path:
    """Every bundle of one subject at once: original (left) beside reconstruction (right), one row per view.

    The VQ-Diff paper's full-subject figure (Fig. 3.1): all groups of all bundles of one subject are
    drawn in the subject's own frame (no per-bundle plane), one colour per bundle name, with the same
    limits for original and reconstruction, so misplaced or collapsed bundles show at a glance.

    Args:
        originals: groups of streamlines of one subject, each (S, P, 3) or (3, S, P), in one space (e.g. mm).
        reconstructions: the matching reconstructions (same count and order).
        names: the bundle name of each group (groups of one name share a colour).
        path: PNG file to write (atomically).
        title: figure title.
        views: planes to draw, rows of the figure, from :data:`SUBJECT_VIEWS`.
        units: axis units in the labels.

    Raises:
        ValueError: counts differ or are zero, or an unknown view.

    Example:
        >>> save_subject_render(groups, reconstructions, names, "subject.png")  # doctest: +SKIP
    """
    return save_figure(_subject_render_figure(originals, reconstructions, names, title, views, units), path)


def _subject_render_figure(
    originals: Sequence[Any],
    reconstructions: Sequence[Any],
    names: Sequence[str],
    title: str = "",
    views: Sequence[str] = ("sagittal", "axial"),
    units: str = "mm",
):
    """The matplotlib Figure of :func:`save_subject_render` (not written, not closed)."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    if not (len(originals) == len(reconstructions) == len(names)) or len(originals) == 0:
        raise ValueError(
            "need the same positive number of original groups, reconstructed groups and names, got "
            f"{len(originals)}, {len(reconstructions)} and {len(names)}"
        )
    unknown = [v for v in views if v not in SUBJECT_VIEWS]
    if unknown or not views:
        raise ValueError(f"views must be a non-empty selection of {tuple(SUBJECT_VIEWS)}, got {list(views)}")
    plt = pyplot()
    originals = [as_streamline_points(g) for g in originals]
    reconstructions = [as_streamline_points(g) for g in reconstructions]
    labels = sorted(set(map(str, names)))
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    colour = {name: cmap(i % cmap.N) for i, name in enumerate(labels)}
    points = np.concatenate([g.reshape(-1, 3) for g in originals + reconstructions])
    lo, hi = points.min(0), points.max(0)
    axis_names = "xyz"
    fig, axes = plt.subplots(len(views), 2, figsize=(8.0, 3.8 * len(views)), squeeze=False)
    for r, view in enumerate(views):
        a, b = SUBJECT_VIEWS[view]
        margin = 0.03 * max(hi[a] - lo[a], hi[b] - lo[b], 1e-9)
        for c, groups in enumerate((originals, reconstructions)):
            ax = axes[r, c]
            for group, name in zip(groups, names):
                segments = np.stack([group[:, :-1][..., [a, b]], group[:, 1:][..., [a, b]]], axis=2).reshape(-1, 2, 2)
                ax.add_collection(LineCollection(segments, colors=[colour[str(name)]], linewidths=0.3))
            ax.set_xlim(lo[a] - margin, hi[a] + margin), ax.set_ylim(lo[b] - margin, hi[b] + margin)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=TICK_FONTSIZE)
            ax.set_xlabel(f"{axis_names[a]} ({units})", fontsize=8)
            ax.set_ylabel(f"{view}\n{axis_names[b]} ({units})" if c == 0 else f"{axis_names[b]} ({units})", fontsize=8)
            if r == 0:
                ax.set_title("original" if c == 0 else "reconstruction", fontsize=9)
    handles = [Line2D([0], [0], color=colour[name], lw=2) for name in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7, frameon=False)
    fig.suptitle(
        title or f"all bundles of one subject ({len(originals)} groups): original vs reconstruction", fontsize=9
    )
    fig.tight_layout(rect=(0, 0.06 + 0.02 * ((len(labels) - 1) // 6), 1, 1))
    return fig
