"""Canonical order of a group of streamlines: consistent orientation, rows sorted along the bundle.

Tractography stores each streamline with an arbitrary start/end and files list them in arbitrary
order, so neighbouring rows of a (3, S, P) bundle tensor are unrelated. Convolutions over that
tensor learn much faster when rows that are adjacent are also adjacent in space and run the same
way. Both changes leave BUAN unchanged: MDF is flip-invariant and bundle adjacency ignores order.
"""

from __future__ import annotations

import numpy as np
from dipy.tracking.streamline import orient_by_streamline

__all__ = ["canonical_group_order", "apply_group_order", "invert_group_order"]


def canonical_group_order(streamlines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orientation flips and row order that put a group of resampled streamlines in canonical order.

    Every streamline is oriented like the group's first one (dipy's ``orient_by_streamline``,
    Yeatman et al. 2012's AFQ convention), then rows are sorted by the projection of each
    streamline's midpoint on the first principal axis of all midpoints.

    Args:
        streamlines: (S, P, 3) streamlines with the same number of points.

    Returns:
        ``(order, flipped)``: (S,) row permutation and (S,) booleans, to use with
        :func:`apply_group_order`.

    Example:
        >>> order, flipped = canonical_group_order(np.random.rand(8, 20, 3))
    """
    streamlines = np.asarray(streamlines, dtype=np.float64)
    if streamlines.ndim != 3 or streamlines.shape[-1] != 3 or len(streamlines) == 0:
        raise ValueError(f"expected resampled streamlines shaped (S, P, 3) with S >= 1, got {streamlines.shape}.")
    oriented = orient_by_streamline(list(streamlines), streamlines[0], n_points=streamlines.shape[1])
    flipped = np.array([not np.array_equal(o[0], s[0]) for o, s in zip(oriented, streamlines)])
    flipped &= ~np.array([np.array_equal(s[0], s[-1]) for s in streamlines])
    midpoints = streamlines.mean(1)
    centred = midpoints - midpoints.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(streamlines) > 1 else np.zeros(3)
    order = np.argsort(centred @ axis, kind="stable")
    return order, flipped


def apply_group_order(streamlines: np.ndarray, order: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """Flip the marked streamlines, then reorder the rows: ``(S, P, 3) -> (S, P, 3)``."""
    streamlines = np.asarray(streamlines)
    oriented = np.where(flipped[:, None, None], streamlines[:, ::-1], streamlines)
    return oriented[order]


def invert_group_order(streamlines: np.ndarray, order: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """Undo :func:`apply_group_order` (rows back to their input order and orientation)."""
    streamlines = np.asarray(streamlines)
    restored = np.empty_like(streamlines)
    restored[order] = streamlines
    return np.where(flipped[:, None, None], restored[:, ::-1], restored)
