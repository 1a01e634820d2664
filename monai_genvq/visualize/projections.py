"""Latent projections: codes of an evaluation set in 2-D (PCA, t-SNE, Poincaré disk), coloured by labels.

- PCA: our own SVD of the centred codes (deterministic: component signs fixed so the largest
  loading is positive).
- t-SNE (van der Maaten & Hinton 2008) through scikit-learn's ``TSNE`` (PCA initialisation, seeded),
  as Attri-VAE / Attri-SIVAE show their latent spaces.
- Poincaré disk (Hsu et al. 2021 plot their hyperbolic embeddings in the disk): codes on the ball of
  curvature -c are mapped to the origin's tangent space (``logmap0``), projected onto their two
  principal directions *without centring* (the origin, where a hierarchy's root sits, stays at the
  centre), mapped back with ``expmap0`` on the 2-D ball and scaled by √c into the unit disk. A 2-D
  latent is drawn as it is (only the √c scaling), so distances to the centre are exact there.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .grids import atomic_write_bytes

__all__ = ["PROJECTION_METHODS", "PROJECTION_NAMES", "pca_2d", "poincare_disk_2d", "project_codes", "save_latent_projection"]

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


def poincare_disk_2d(codes: Any, c: float = 1.0) -> np.ndarray:
    """(N, D) points of the Poincaré ball of curvature -c -> (N, 2) points of the unit disk (see module docstring).

    Example:
        >>> p = poincare_disk_2d(np.array([[0.5, 0.0, 0.1], [0.0, -0.9, 0.0]]))
        >>> bool((np.linalg.norm(p, axis=1) < 1).all())
        True
    """
    from ..networks.hyperbolic.manifold import as_curvature, expmap0, logmap0

    if not c > 0:
        raise ValueError(f"the Poincaré disk needs a curvature magnitude c > 0, got {c}")
    x = torch.as_tensor(_as_codes(codes))
    if x.shape[1] > 2:
        tangent = logmap0(x, as_curvature(c, x)).numpy()
        tangent2 = tangent @ _principal_axes(tangent)
        x = expmap0(torch.as_tensor(tangent2), as_curvature(c, x))
    elif x.shape[1] == 1:
        x = torch.cat([x, torch.zeros_like(x)], 1)
    else:
        x = expmap0(logmap0(x, as_curvature(c, x)), as_curvature(c, x))  # only clamps into the open ball
    return x.numpy() * np.sqrt(c)


def project_codes(codes: Any, method: str = "pca", poincare: bool = False, c: float = 1.0, seed: int = 0,
                  perplexity: float = 30.0) -> np.ndarray:
    """(N, D) codes -> (N, 2) coordinates by ``method`` ("pca" or "tsne"; ``poincare`` maps into the unit disk).

    Example:
        >>> project_codes(np.random.default_rng(0).normal(size=(10, 4))).shape
        (10, 2)
    """
    if method not in PROJECTION_METHODS:
        raise ValueError(f"projection method must be one of {PROJECTION_METHODS}, got {method!r}")
    if poincare:
        if method != "pca":
            raise ValueError("the Poincaré-disk projection is the tangent-space PCA; t-SNE does not keep the ball's geometry")
        return poincare_disk_2d(codes, c)
    if method == "pca":
        return pca_2d(codes)
    from sklearn.manifold import TSNE

    x = _as_codes(codes)
    perplexity = float(min(perplexity, max(1.0, (x.shape[0] - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x.astype(np.float32)).astype(np.float64)


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
        ax.scatter(xy[sel, 0], xy[sel, 1], s=8 if counts[cls] > 50 else 16, linewidths=0, color=cmap(i % cmap.N), label=str(cls))
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
    poincare: bool = False,
    c: float = 1.0,
    title: str = "",
    seed: int = 0,
) -> np.ndarray:
    """Project codes to 2-D and write a scatter plot PNG (atomically); returns the (N, 2) coordinates.

    Args:
        codes: (N, D) codes (posterior means, code vectors, per-voxel embeddings ...).
        labels: one label per code (categorical: a legend; floats with many values: a colour bar), or
            ``{name: labels}`` for one panel per labelling of the same projection, or None.
        path: PNG file to write.
        method: "pca" or "tsne".
        poincare: the codes lie on the Poincaré ball of curvature -``c``: draw them in the unit disk
            with its boundary circle (tangent-space PCA, see the module docstring).
        c: curvature magnitude of the ball.
        title: figure title (default: the method).
        seed: t-SNE seed.

    Example:
        >>> xy = save_latent_projection(np.random.rand(50, 8), ["a"] * 25 + ["b"] * 25, "pca.png")  # doctest: +SKIP
    """
    from .cardiac import _pyplot

    xy = project_codes(codes, method, poincare, c, seed)
    n = len(xy)
    panels = dict(labels) if isinstance(labels, Mapping) else {"": labels}
    for name, values in panels.items():
        if values is not None and len(values) != n:
            raise ValueError(f"latent projection: {len(values)} labels {name!r} for {n} codes")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4.0), squeeze=False, layout="constrained")
    for ax, (name, values) in zip(axes[0], panels.items()):
        if values is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=8, linewidths=0)
        else:
            values = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
            _draw(ax, xy, values, name, plt, "upper right" if poincare else "best")
        if poincare:
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
    kind = "Poincaré disk (tangent-space PCA)" if poincare else PROJECTION_NAMES.get(method, method)
    fig.suptitle(title or kind, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return xy
