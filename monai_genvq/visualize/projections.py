"""Latent projections: codes of an evaluation set in 2-D (PCA, t-SNE, or a given projector), coloured by labels.

- PCA: our own SVD of the centred codes (deterministic: component signs fixed so the largest
  loading is positive).
- t-SNE (van der Maaten & Hinton 2008) through scikit-learn's ``TSNE`` (PCA initialisation, seeded),
  as Attri-VAE / Attri-SIVAE show their latent spaces.
- Any other map (e.g. the hyperbolic app's Poincaré disk) as a ``projector`` function.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from monai_genvq.visualize.grids import pyplot, save_figure

__all__ = ["PROJECTION_METHODS", "PROJECTION_NAMES", "pca_2d", "project_codes", "save_latent_projection"]

PROJECTION_METHODS = ("pca", "tsne")
PROJECTION_NAMES = {"pca": "PCA", "tsne": "t-SNE"}


def _as_codes(codes: Any) -> np.ndarray:
    arr = np.asarray(codes.detach().cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"latent projection expects codes of shape (N >= 2, D), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"latent projection got non-finite codes ({int((~np.isfinite(arr)).sum())} values)")
    return arr


def _principal_axes(x: np.ndarray, k: int = 2) -> np.ndarray:
    """(D, k) leading right singular vectors of ``x`` with a fixed sign (largest |loading| positive)."""
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:k].T
    if axes.shape[1] < k:  # D == 1: pad with a zero axis
        axes = np.concatenate([axes, np.zeros((axes.shape[0], k - axes.shape[1]))], 1)
    signs = np.sign(axes[np.abs(axes).argmax(0), np.arange(k)])
    return axes * np.where(signs == 0, 1.0, signs)


def pca_2d(codes: Any) -> np.ndarray:
    """(N, D) codes -> (N, 2) coordinates on the first two principal components of the centred codes.

    Example:
        >>> pca_2d(np.array([[0.0, 0, 0], [2, 0, 0], [0, 1, 0]])).shape
        (3, 2)
    """
    x = _as_codes(codes)
    x = x - x.mean(0)
    return x @ _principal_axes(x)


def project_codes(codes: Any, method: str = "pca", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """(N, D) codes -> (N, 2) coordinates by ``method`` ("pca" or "tsne").

    Identical codes (a collapsed latent space) are not given to t-SNE, which fails on them (a native
    crash in some scikit-learn builds): they are returned at the origin with a RuntimeWarning.

    Example:
        >>> project_codes(np.random.default_rng(0).normal(size=(10, 4))).shape
        (10, 2)
    """
    if method not in PROJECTION_METHODS:
        raise ValueError(f"projection method must be one of {PROJECTION_METHODS}, got {method!r}")
    if method == "pca":
        return pca_2d(codes)
    x = _as_codes(codes)
    if not np.any(np.ptp(x.astype(np.float32), axis=0) > 0):  # t-SNE runs in float32: identical there
        # every code is the same point: scikit-learn's t-SNE divides by zero distances (and can crash the
        # process in its native code); there is nothing to lay out, so draw all codes at the origin
        warnings.warn(
            f"t-SNE skipped: all {x.shape[0]} latent codes are identical (a collapsed latent space); "
            "they are drawn at one point",
            RuntimeWarning,
            stacklevel=2,
        )
        return np.zeros((x.shape[0], 2))
    from sklearn.manifold import TSNE

    perplexity = float(min(perplexity, max(1.0, (x.shape[0] - 1) / 3)))
    return (
        TSNE(2, perplexity=perplexity, init="pca", random_state=seed)
        .fit_transform(x.astype(np.float32))
        .astype(np.float64)
    )


def _is_continuous(values: np.ndarray) -> bool:
    return values.dtype.kind == "f" and len(np.unique(values)) > 12


def _draw(ax, xy: np.ndarray, values: np.ndarray, name: str, plt, loc: str = "best") -> None:
    if _is_continuous(values):
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, cmap="viridis", s=8, linewidths=0)
        bar = plt.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
        bar.ax.tick_params(labelsize=6)
        return
    classes = list(dict.fromkeys(values.tolist()))
    classes = sorted(classes, key=lambda v: (isinstance(v, str), v))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    counts = {cls: int((values == cls).sum()) for cls in classes}
    for i, cls in sorted(enumerate(classes), key=lambda item: -counts[item[1]]):  # small classes drawn on top
        sel = values == cls
        ax.scatter(
            xy[sel, 0],
            xy[sel, 1],
            s=8 if counts[cls] > 50 else 16,
            linewidths=0,
            color=cmap(i % cmap.N),
            label=str(cls),
        )
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda j: [str(c) for c in classes].index(names[j]))
    handles, names = [handles[j] for j in order], [names[j] for j in order]
    if len(classes) <= 20:
        ax.legend(handles, names, fontsize=6, markerscale=1.5, loc=loc, title=name, title_fontsize=7, frameon=False)


def save_latent_projection(
    codes: Any,
    labels: Sequence[Any] | Mapping[str, Sequence[Any]] | None,
    path: str | os.PathLike,
    method: str = "pca",
    title: str = "",
    seed: int = 0,
    projector: Callable[[Any], np.ndarray] | None = None,
    unit_disk: bool = False,
) -> np.ndarray:
    """Project codes to 2-D and write a scatter plot PNG (atomically); returns the (N, 2) coordinates.

    Args:
        codes: (N, D) codes (posterior means, code vectors, per-voxel embeddings ...).
        labels: one label per code (categorical: a legend; floats with many values: a colour bar), or
            ``{name: labels}`` for one panel per labelling of the same projection, or None.
        path: PNG file to write.
        method: "pca" or "tsne".
        title: figure title (default: the method).
        seed: t-SNE seed.
        projector: a function (N, D) codes -> (N, 2) coordinates used instead of ``method`` (e.g. the
            hyperbolic app's ``poincare_disk_2d``).
        unit_disk: the coordinates lie in the unit disk: draw its boundary circle, equal axes, no ticks.

    Example:
        >>> xy = save_latent_projection(np.random.rand(50, 8), ["a"] * 25 + ["b"] * 25, "pca.png")  # doctest: +SKIP
    """

    xy = projector(codes) if projector is not None else project_codes(codes, method, seed)
    n = len(xy)
    panels = dict(labels) if isinstance(labels, Mapping) else {"": labels}
    for name, values in panels.items():
        if values is not None and len(values) != n:
            raise ValueError(f"latent projection: {len(values)} labels {name!r} for {n} codes")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4.0), squeeze=False, layout="constrained")
    for ax, (name, values) in zip(axes[0], panels.items()):
        if values is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=8, linewidths=0)
        else:
            values = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
            _draw(ax, xy, values, name, plt, "upper right" if unit_disk else "best")
        if unit_disk:
            ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="black", linewidth=1))
            ax.set_xlim(-1.05, 1.05), ax.set_ylim(-1.05, 1.05)
            ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
        else:
            axis = "t-SNE" if method == "tsne" else "PC"
            ax.set_xlabel(f"{axis} 1", fontsize=8), ax.set_ylabel(f"{axis} 2", fontsize=8)
            ax.tick_params(labelsize=6)
        if name:
            ax.set_title(name, fontsize=8)
    kind = (
        getattr(projector, "__name__", "projection") if projector is not None else PROJECTION_NAMES.get(method, method)
    )
    fig.suptitle(title or kind, fontsize=9)
    save_figure(fig, path)
    return xy
