"""The one place where the Poincaré-ball numerical guards live, plus thin helpers over geoopt.

Every manifold operation of the hyperbolic VAE (expmap0, logmap, dist, Möbius addition, gyroplane
distance, parallel transport from the origin) is geoopt's ``geoopt.manifolds.stereographic.math``
with curvature ``k = -c``; ``c = 0`` gives geoopt's flat stereographic model (Euclidean space with
conformal factor 2), which is how the Euclidean-latent ablation shares the code path. This module
only adds the clamps (so points at or beyond the boundary never produce NaN) and the small
functions geoopt lacks (``sinhc``, a stable ``log sinhc``). Under AMP these maps (and the densities of
:mod:`.distributions`, the gyroplane distances and the losses) run in float32
(:func:`~monai_genvq.utils.float32_region`): in float16 the boundary clamp ``1 - 4e-3`` is a few ulps from 1.
"""

from __future__ import annotations

import math

import torch
from geoopt.manifolds.stereographic import math as gmath

from monai_genvq.utils.precision import float32_region

__all__ = [
    "MIN_NORM",
    "BOUNDARY_EPS",
    "MIN_SIGMA",
    "as_curvature",
    "project",
    "boundary_radius",
    "expmap0",
    "bound_tangent0",
    "logmap0",
    "dist",
    "lambda_x",
    "log_sinhc",
    "gmath",
]

MIN_NORM = 1e-15
"""Smallest norm divided by anywhere in the package's hyperbolic code."""

BOUNDARY_EPS = {torch.float16: 4e-3, torch.bfloat16: 4e-3, torch.float32: 4e-3, torch.float64: 1e-5}
"""Points are kept at Euclidean norm ≤ (1 - eps)/√c (geoopt's own defaults per dtype)."""

MIN_SIGMA = 1e-4
"""Lower bound on posterior scales (softplus(·) + MIN_SIGMA)."""


def as_curvature(c: float | torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """The geoopt curvature ``k = -c`` as a tensor (``c >= 0``; 0 is the Euclidean ablation).

    A Python number is checked in Python: no device synchronisation, and no graph break under ``torch.compile``.
    """
    if isinstance(c, (int, float)):
        bad = not (math.isfinite(c) and c >= 0)
    else:
        bad = bool((torch.as_tensor(c) < 0).any()) or not bool(torch.isfinite(torch.as_tensor(c)).all())
    if bad:
        raise ValueError(f"the ball's curvature magnitude c must be a finite number >= 0, got {c}")
    c_t = torch.as_tensor(c, dtype=like.dtype if like is not None else torch.get_default_dtype())
    return -(c_t.to(like.device) if like is not None else c_t)


@float32_region
def project(x: torch.Tensor, k: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Clamp points into the open ball (norm ≤ (1 - eps)/√c); NaN-free for inputs at or beyond the edge."""
    return gmath.project(x, k=k, dim=dim, eps=BOUNDARY_EPS.get(x.dtype, 4e-3))


def boundary_radius(c: float, dtype: torch.dtype = torch.float32) -> float:
    """Geodesic distance from the origin at which :func:`project` starts clamping: ``2/√c · artanh(1 - eps)``.

    Example:
        >>> round(boundary_radius(1.0), 2)
        6.21
    """
    if not c > 0:
        return float("inf")
    return 2.0 / c**0.5 * math.atanh(1.0 - BOUNDARY_EPS.get(dtype, 4e-3))


@float32_region
def expmap0(u: torch.Tensor, k: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Exponential map at the origin followed by :func:`project`."""
    return project(gmath.expmap0(u, k=k, dim=dim), k, dim=dim)


@float32_region
def bound_tangent0(u: torch.Tensor, max_radius: float, dim: int = -1) -> torch.Tensor:
    """Softly bound a tangent vector at the origin so ``expmap0`` of it lies within geodesic radius ``max_radius``.

    ``u ↦ u · (R tanh(‖u‖/R) / ‖u‖)`` with ``R = max_radius / 2``: the identity near 0, smooth, with
    ``‖result‖ < R``. In geoopt's convention ``d(0, expmap0(u)) = λ_0 ‖u‖ = 2‖u‖`` for every
    curvature (the flat ``c = 0`` model included), so the image lies strictly inside the geodesic
    ball of radius ``max_radius`` — for ``c > 0`` at Euclidean norm ``< tanh(√c·max_radius/2)/√c``.

    Why: without a bound, an encoder can push posterior means to the :func:`project` clamp, where
    the clamp also removes the radial part of the posterior noise; the means then collapse onto the
    clamp sphere (a (d-1)-dimensional code) and the radial gradient vanishes.

    Args:
        u: tangent vectors at the origin (ambient coordinates).
        max_radius: geodesic radius bound (> 0).
        dim: the vector dimension.

    Example:
        >>> u = torch.tensor([[1e6, 0.0]])
        >>> float(bound_tangent0(u, 4.0).norm())
        2.0
    """
    if not max_radius > 0:
        raise ValueError(f"max_radius must be > 0, got {max_radius}")
    half = max_radius / 2.0
    n = u.norm(dim=dim, keepdim=True) / half
    small = n < 1e-4
    ns = torch.where(small, torch.ones_like(n), n)
    tanhc = torch.where(small, 1.0 - n.square() / 3.0, torch.tanh(ns) / ns)  # tanh(n)/n, exact at 0
    return u * tanhc


@float32_region
def logmap0(x: torch.Tensor, k: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Logarithmic map at the origin of clamped points."""
    return gmath.logmap0(project(x, k, dim=dim), k=k, dim=dim)


@float32_region
def dist(x: torch.Tensor, y: torch.Tensor, k: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """Geodesic distance of clamped points (``2/√c · artanh(√c ‖(-x) ⊕ y‖)``)."""
    return gmath.dist(project(x, k, dim=dim), project(y, k, dim=dim), k=k, dim=dim, keepdim=keepdim)


@float32_region
def lambda_x(x: torch.Tensor, k: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """Conformal factor ``2 / (1 - c ‖x‖²)``."""
    return gmath.lambda_x(x, k=k, dim=dim, keepdim=keepdim)


@float32_region
def log_sinhc(x: torch.Tensor) -> torch.Tensor:
    """``log(sinh(x) / x)`` for ``x >= 0``, accurate at 0 (x²/6) and for large x (x - log 2x)."""
    x = x.abs()
    small = x < 1e-3
    big = x > 20.0
    xs = torch.where(small | big, torch.ones_like(x), x)
    mid = torch.log(torch.sinh(xs) / xs)
    out = torch.where(small, x.square() / 6.0, mid)
    return torch.where(big, x - torch.log(2.0 * x.clamp_min(MIN_NORM)), out)
