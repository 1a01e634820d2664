"""Fréchet means and k-means on the Poincaré ball (and the Euclidean baseline), vectorised.

Hyperbolic k-means as used by Hsu et al. 2021 ("Learning Hyperbolic Representations for
Unsupervised 3D Segmentation"): points are assigned to the nearest centre in geodesic distance, and
each centre is the Fréchet (Karcher) mean of its points, computed by Riemannian gradient descent
``μ ← expmap_μ(η · mean_i logmap_μ(x_i))`` (Karcher 1977; Lou et al. 2020 discuss faster solvers).
Initialisation is k-means++ with geodesic distances (Arthur & Vassilvitskii 2007). With ``c = 0``
the same code is flat k-means (the Fréchet mean is the arithmetic mean); :func:`euclidean_kmeans`,
which clusters the flat latents, is scikit-learn's ``KMeans`` instead (scikit-learn has no
Poincaré k-means, hence :func:`poincare_kmeans`).

Speed: the per-point work of a Lloyd iteration (distances to the own centre, log maps summed per
cluster) is written with per-point scalars on coordinate columns (:func:`_mobius_diff_terms`), not
with geoopt's ``(n, d)`` maps, whose reductions over a latent axis of 2 ran 10-20× slower than
elementwise work and dominated a toy evaluation (the maps agree with geoopt's to float rounding,
checked in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans

from monai_genvq.apps.hyperbolic.manifold import MIN_NORM, as_curvature, gmath, project

__all__ = ["frechet_mean", "poincare_kmeans", "euclidean_kmeans", "KMeansResult", "pairwise_dist", "assign_clusters"]


def _sq_euclid(x: torch.Tensor, centres: torch.Tensor, x_sq: torch.Tensor | None = None) -> torch.Tensor:
    x_sq = x.square().sum(1) if x_sq is None else x_sq
    return (x_sq[:, None] - 2 * x @ centres.T + centres.square().sum(1)).clamp_min(0)


def pairwise_dist(x: torch.Tensor, centres: torch.Tensor, c: float) -> torch.Tensor:
    """(n, d) × (k, d) -> (n, k) geodesic distances, via one matrix product.

    Uses ``d(x, y) = arcosh(1 + 2c‖x - y‖² / ((1 - c‖x‖²)(1 - c‖y‖²))) / √c``, equal to geoopt's
    ``dist`` (checked in the tests) but without the (n, k, d) Möbius-addition intermediate.
    ``c = 0`` gives the flat model's distance ``2‖x - y‖`` (geoopt's ``k = 0`` convention).
    """
    if c == 0:
        return 2 * _sq_euclid(x, centres).sqrt()
    k = as_curvature(c, x)
    x, centres = project(x, k), project(centres, k)
    cx = (1 - c * x.square().sum(1, keepdim=True)).clamp_min(MIN_NORM)
    cy = (1 - c * centres.square().sum(1)).clamp_min(MIN_NORM)
    arg = 1 + 2 * c * _sq_euclid(x, centres) / (cx * cy)
    return torch.acosh(arg.clamp_min(1.0)) / c**0.5


def assign_clusters(x: torch.Tensor, centres: torch.Tensor, c: float, x_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest centre (geodesic) for each point; for c > 0 uses the monotone surrogate ‖x - y‖² / (1 - c‖y‖²) (no acosh).

    ``x_sq`` optionally passes the points' squared norms ``‖x‖²`` (n,), when they are reused.
    """
    sq = _sq_euclid(x, centres, x_sq)
    if c > 0:
        sq = sq / (1 - c * centres.square().sum(1)).clamp_min(MIN_NORM)
    return sq.argmin(1)


def _segment_sum(values: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.zeros((n,) + values.shape[1:], dtype=values.dtype, device=values.device)
    return out.index_add_(0, labels, values)


def _mobius_diff_terms(
    cols: torch.Tensor, x_sq: torch.Tensor, mu: torch.Tensor, labels: torch.Tensor, c: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-point scalars of ``w_i = (-μ_l) ⊕ x_i`` for each point and its own centre ``μ_l = mu[labels_i]``.

    With geoopt's Möbius addition (``k = -c``), ``w = (-α μ + β x) / D`` where
    ``α = 1 - 2c<μ,x> + c‖x‖²``, ``β = 1 - c‖μ‖²`` and ``D = 1 - 2c<μ,x> + c²‖μ‖²‖x‖²``, and
    ``‖w‖² = ‖μ - x‖² / D``; so ``d(μ, x) = 2/√c · artanh(√c‖w‖)`` and ``logmap_μ(x) = 2/(√c λ_μ ‖w‖)
    · artanh(√c‖w‖) · w`` need only these scalars, with geoopt's guards (``D`` and ``‖w‖`` at least
    1e-15, the artanh argument at most 1 - 1e-7).

    Args:
        cols: (d, n) point coordinates, one contiguous row per axis.
        x_sq: (n,) squared norms of the points.
        mu: (k, d) centres.
        labels: (n,) centre index of every point.
        c: curvature magnitude (> 0).

    Returns:
        ``‖w‖`` (unclamped), ``artanh(√c‖w‖)/√c`` (half the geodesic distance), ``α`` and ``D``, each (n,).
    """
    mu_cols = mu.T.contiguous()
    diff_sq = torch.zeros_like(x_sq)
    dot = torch.zeros_like(x_sq)
    for axis in range(cols.shape[0]):
        m = mu_cols[axis].index_select(0, labels)
        diff_sq += (cols[axis] - m).square()
        dot += cols[axis] * m
    mu_sq = mu.square().sum(1).index_select(0, labels)
    den = (1 - 2 * c * dot + c**2 * mu_sq * x_sq).clamp_min(MIN_NORM)
    alpha = 1 - 2 * c * dot + c * x_sq
    norm = (diff_sq / den).sqrt()
    sqrt_c = c**0.5
    half_dist = torch.atanh((sqrt_c * norm).clamp_max(1 - 1e-7)) / sqrt_c
    return norm, half_dist, alpha, den


def _segment_frechet(
    x: torch.Tensor,
    labels: torch.Tensor,
    centres: torch.Tensor,
    c: float,
    iters: int,
    tol: float,
    weights: torch.Tensor | None,
    x_sq: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fréchet means of every cluster at once (``labels`` index into ``centres``; empty clusters keep theirs).

    Start: the gyro-midpoint ``½ ⊗ (Σ w λ_i x_i / Σ w (λ_i - 1))`` (Ungar 2010; geoopt's
    ``weighted_midpoint`` formula, here as segment sums), close to the Fréchet mean. Then Karcher
    steps ``μ ← expmap_μ(mean_i logmap_μ(x_i))``, each kept only where it lowers that cluster's
    Σ w d(μ, x_i)² (the plain Karcher step can overshoot on spread-out clusters near the boundary).
    ``x_sq`` (‖x‖², (n,)) and ``cols`` (``x.T`` contiguous) may be passed when reused across calls.
    """
    n_clusters = centres.shape[0]
    w = torch.ones(x.shape[0], dtype=x.dtype, device=x.device) if weights is None else weights.to(x.dtype)
    mass = _segment_sum(w, labels, n_clusters)
    has = mass[:, None] > 0
    if c == 0:
        s = _segment_sum(x * w[:, None], labels, n_clusters)
        return torch.where(has, s / mass.clamp_min(1e-12)[:, None], centres)
    k = as_curvature(c, x)
    x_sq = x.square().sum(1) if x_sq is None else x_sq
    cols = x.T.contiguous() if cols is None else cols
    lam = 2 / (1 - c * x_sq).clamp_min(MIN_NORM)  # gmath.lambda_x
    num = _segment_sum(x * (w * lam)[:, None], labels, n_clusters)
    den = _segment_sum(w * (lam - 1), labels, n_clusters).clamp_min(1e-12)
    mu = project(gmath.mobius_scalar_mul(torch.tensor(0.5, dtype=x.dtype), num / den[:, None], k=k), k)
    mu = torch.where(has, mu, centres)

    def objective(terms: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return _segment_sum(w * (2 * terms[1]).square(), labels, n_clusters)

    terms = _mobius_diff_terms(cols, x_sq, mu, labels, c)
    f = objective(terms)
    for _ in range(iters):
        norm, half_dist, alpha, den_i = terms
        g = w * 2 * half_dist / (norm.clamp_min(MIN_NORM) * den_i)  # Σ w logmap = (β Σ g x - μ Σ g α) / λ_μ
        gx = torch.stack([_segment_sum(g * col, labels, n_clusters) for col in cols], 1)
        mu_sq = mu.square().sum(1, keepdim=True)
        total = (1 - c * mu_sq) * gx - mu * _segment_sum(g * alpha, labels, n_clusters)[:, None]
        step = total / (2 / (1 - c * mu_sq).clamp_min(MIN_NORM)) / mass.clamp_min(1e-12)[:, None]
        cand = project(gmath.expmap(mu, step, k=k), k)
        cand_terms = _mobius_diff_terms(cols, x_sq, cand, labels, c)
        f_new = objective(cand_terms)
        better = (f_new < f)[:, None] & has
        mu, f = torch.where(better, cand, mu), torch.where(better[:, 0], f_new, f)
        moved = better[:, 0].index_select(0, labels)  # a point's terms depend only on its own centre
        terms = tuple(torch.where(moved, new, old) for new, old in zip(cand_terms, terms))
        if float((gmath.lambda_x(mu, k=k) * step.norm(dim=-1)).max()) < tol or not bool(better.any()):
            break
    return mu


def frechet_mean(
    x: torch.Tensor, c: float = 1.0, weights: torch.Tensor | None = None, iters: int = 100, tol: float = 1e-6
) -> torch.Tensor:
    """Fréchet (Karcher) mean ``argmin_μ Σ w_i d(μ, x_i)²`` of points (n, d) on the ball.

    Example:
        >>> frechet_mean(torch.tensor([[0.3, 0.0], [-0.3, 0.0]]), c=1.0)
        tensor([0., 0.])
    """
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"frechet_mean expects a non-empty (n, d) tensor, got shape {tuple(x.shape)}")
    labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    return _segment_frechet(x, labels, x[:1], c, iters, tol, weights)[0]


@dataclass
class KMeansResult:
    """Result of :func:`poincare_kmeans` / :func:`euclidean_kmeans`.

    Args:
        labels: (n,) cluster index of every point.
        centres: (k, d) cluster centres.
        inertia: Σ of the squared distances of the points to their centres.
        iterations: Lloyd iterations of the winning restart.
    """

    labels: torch.Tensor
    centres: torch.Tensor
    inertia: float
    iterations: int


def _kmeanspp(x: torch.Tensor, n_clusters: int, c: float, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(x.shape[0], (1,), generator=gen)
    centres = x[idx]
    d2 = pairwise_dist(x, centres, c)[:, 0].square()
    for _ in range(1, n_clusters):
        total = d2.sum()
        if not total > 0:
            nxt = torch.randint(x.shape[0], (1,), generator=gen)
        else:
            nxt = torch.multinomial((d2 / total).float(), 1, generator=gen)
        centres = torch.cat([centres, x[nxt]])
        d2 = torch.minimum(d2, pairwise_dist(x, x[nxt], c)[:, 0].square())
    return centres


def _check_points(x: torch.Tensor | np.ndarray, n_clusters: int) -> torch.Tensor:
    """The k-means input as an (n, d) tensor; a clear error for an empty, non-finite or too small set."""
    x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"k-means expects a non-empty (n, d) array, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("k-means input contains NaN or infinite values")
    if not 1 <= n_clusters <= x.shape[0]:
        raise ValueError(f"n_clusters must be in [1, n={x.shape[0]}], got {n_clusters}")
    return x


def poincare_kmeans(
    x: torch.Tensor | np.ndarray,
    n_clusters: int,
    c: float = 1.0,
    n_init: int = 2,
    max_iter: int = 25,
    frechet_iters: int = 2,
    tol: float = 1e-5,
    label_tol: float = 1e-3,
    init_sample: int = 20000,
    seed: int = 0,
) -> KMeansResult:
    """k-means on the Poincaré ball of curvature ``-c`` with Fréchet-mean centres (``c = 0``: Euclidean).

    Args:
        x: (n, d) points (inside the ball for ``c > 0``; points at/beyond the edge are clamped).
        n_clusters: k.
        c: curvature magnitude.
        n_init: restarts; the run with the lowest inertia (Σ squared geodesic distances) wins.
        max_iter: Lloyd iterations per restart.
        frechet_iters: Karcher steps per centre update (warm-started from the previous centre).
        tol: stop when no centre moves more than this (geodesic distance).
        label_tol: ... or when at most this fraction of the labels changed in an iteration.
        init_sample: k-means++ runs on at most this many random points (speed on large sets).
        seed: random seed (results are deterministic for a given seed).

    Returns:
        :class:`KMeansResult`.

    Example:
        >>> pts = torch.cat([torch.randn(50, 2) * 0.02 + 0.4, torch.randn(50, 2) * 0.02 - 0.4])
        >>> res = poincare_kmeans(pts, 2, c=1.0)
        >>> len(set(res.labels[:50].tolist())), len(set(res.labels[50:].tolist()))
        (1, 1)
    """
    x = _check_points(x, n_clusters)
    x = x.float()
    if c > 0:
        x = project(x, as_curvature(c, x))
    x_sq, cols = x.square().sum(1), x.T.contiguous()  # reused by every iteration
    gen = torch.Generator().manual_seed(seed)
    best: KMeansResult | None = None
    for _ in range(n_init):
        sub = x[torch.randperm(x.shape[0], generator=gen)[:init_sample]] if x.shape[0] > init_sample else x
        centres = _kmeanspp(sub, n_clusters, c, gen)
        it, labels = 0, None
        for it in range(1, max_iter + 1):  # noqa: B007
            new_labels = assign_clusters(x, centres, c, x_sq)
            if labels is not None and float((new_labels != labels).float().mean()) <= label_tol:
                break
            labels = new_labels
            new = _segment_frechet(x, labels, centres, c, frechet_iters, tol, None, x_sq, cols)
            shift = float(torch.diagonal(pairwise_dist(new, centres, c)).max())
            centres = new
            if shift < tol:
                break
        dmat = pairwise_dist(x, centres, c)
        labels = dmat.argmin(1)
        inertia = float(dmat.gather(1, labels[:, None]).square().sum())
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels=labels, centres=centres, inertia=inertia, iterations=it)
    assert best is not None
    return best


def euclidean_kmeans(
    x: torch.Tensor | np.ndarray, n_clusters: int, n_init: int = 2, max_iter: int = 300, seed: int = 0
) -> KMeansResult:
    """Euclidean k-means of flat latents (and intensities): scikit-learn's ``KMeans`` (k-means++, Lloyd).

    Args:
        x: (n, d) points.
        n_clusters: k.
        n_init: k-means++ restarts; the run with the lowest inertia wins (2, as :func:`poincare_kmeans`,
            so a flat and a hyperbolic latent are clustered with the same effort).
        max_iter: Lloyd iterations per restart.
        seed: ``random_state`` (results are deterministic for a given seed).

    Returns:
        :class:`KMeansResult` on the input's device; ``inertia`` is Σ d² in the flat model's distance
        ``d = 2‖x - y‖`` (:func:`pairwise_dist` with ``c = 0``), 4 × scikit-learn's ``inertia_``.

    Example:
        >>> pts = torch.cat([torch.randn(50, 2) * 0.02 + 0.4, torch.randn(50, 2) * 0.02 - 0.4])
        >>> res = euclidean_kmeans(pts, 2)
        >>> len(set(res.labels[:50].tolist())), len(set(res.labels[50:].tolist()))
        (1, 1)
    """
    x = _check_points(x, n_clusters)
    km = KMeans(n_clusters, init="k-means++", n_init=n_init, max_iter=max_iter, random_state=seed)
    labels = km.fit_predict(x.detach().float().cpu().numpy())
    return KMeansResult(
        labels=torch.as_tensor(labels, dtype=torch.long, device=x.device),
        centres=torch.as_tensor(km.cluster_centers_, dtype=torch.float32, device=x.device),
        inertia=4.0 * float(km.inertia_),
        iterations=int(km.n_iter_),
    )
