"""Normal distributions on the Poincaré ball: wrapped normal and Riemannian normal.

Both follow Mathieu et al., "Continuous Hierarchical Representations with Poincaré Variational
Auto-Encoders", NeurIPS 2019 (also Nagano et al. 2019 for the wrapped normal), as used by the seed
paper (Hsu et al., "Learning Hyperbolic Representations for Unsupervised 3D Segmentation", 2021).
Densities are with respect to the ball's Riemannian volume measure ``λ_x^d dx``.

Conventions (geoopt's): a tangent vector ``u`` at ``μ`` is stored in ambient coordinates; its
Riemannian norm is ``λ_μ ‖u‖``. Orthonormal tangent coordinates at ``μ`` are therefore
``ε = λ_μ u``, and parallel transport from the origin is the scaling ``λ_0 / λ_μ`` (geoopt's
``transp0``), so ``ε`` is the same vector seen at the origin. ``d(μ, expmap_μ(u)) = ‖ε‖``.

Numerical guards live in :mod:`.manifold`; the Riemannian normal's normaliser and radial CDF are
evaluated in float64 from their closed forms (alternating sums, accurate for the small latent
dimensions used here, d ≤ 10 and σ√c ≤ 5).
"""

from __future__ import annotations

import math

import torch

from monai_genvq.apps.hyperbolic.manifold import MIN_NORM, as_curvature, dist, gmath, lambda_x, log_sinhc, project
from monai_genvq.utils.precision import float32_region

__all__ = [
    "wrapped_normal_rsample",
    "wrapped_normal_log_prob",
    "riemannian_normal_log_normalizer",
    "riemannian_normal_log_prob",
    "riemannian_normal_radius_log_density",
    "riemannian_normal_radius_cdf",
    "riemannian_normal_sample_radius",
    "riemannian_normal_rsample",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _tangent_to_ball(mu: torch.Tensor, eps: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Orthonormal coordinates ``eps`` at ``μ`` -> ``expmap_μ(eps / λ_μ)`` (clamped)."""
    u = eps / lambda_x(mu, k, keepdim=True)
    return project(gmath.expmap(mu, u, k=k), k)


@float32_region
def wrapped_normal_rsample(
    mu: torch.Tensor, sigma: torch.Tensor, c: float | torch.Tensor, sample_shape: torch.Size | tuple = ()
) -> torch.Tensor:
    """Reparameterised samples of the wrapped normal ``expmap_μ(PT_{0→μ}(v))``, ``v ~ N(0, diag σ²)``.

    Args:
        mu: (..., d) means on the ball.
        sigma: (..., d) or (..., 1) positive scales (in orthonormal tangent coordinates).
        c: curvature magnitude (0: Euclidean ablation).
        sample_shape: leading sample dimensions.

    Returns:
        (*sample_shape, ..., d) points on the ball, differentiable in ``mu`` and ``sigma``.
    """
    k = as_curvature(c, mu)
    shape = torch.Size(sample_shape) + mu.shape
    eps = torch.randn(shape, dtype=mu.dtype, device=mu.device) * sigma
    return _tangent_to_ball(mu.expand(shape), eps, k)


@float32_region
def wrapped_normal_log_prob(
    z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, c: float | torch.Tensor
) -> torch.Tensor:
    """Exact log-density of the wrapped normal w.r.t. the Riemannian volume.

    ``log p(z) = log N(ε; 0, diag σ²) - (d-1) log(sinh(√c r) / (√c r))`` with ``ε = λ_μ logmap_μ(z)``
    (orthonormal coordinates, equal to the origin's after parallel transport) and ``r = d(μ, z) = ‖ε‖``.

    Returns:
        (...,) log-densities.
    """
    k = as_curvature(c, mu)
    mu, z = project(mu, k), project(z, k)
    d = mu.shape[-1]
    eps = gmath.logmap(mu, z, k=k) * lambda_x(mu, k, keepdim=True)
    sigma = sigma.expand_as(eps)
    log_normal = (-0.5 * (eps / sigma).square() - torch.log(sigma) - 0.5 * _LOG_2PI).sum(-1)
    r = dist(mu, z, k)
    sqrt_c = (-k).sqrt()
    return log_normal - (d - 1) * log_sinhc(sqrt_c * r)


# ----------------------------------------------------------------------------------------------
# Riemannian normal  p(z) = exp(-d(μ, z)² / 2σ²) / Z(σ)


def _radial_terms(sigma64: torch.Tensor, c: float, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients ``(-1)^j C(d-1, j)`` and rates ``b_j = (d-1-2j)√c`` of ``sinh(√c r)^{d-1}`` expanded."""
    j = torch.arange(d, dtype=torch.float64, device=sigma64.device)
    coef = torch.tensor([(-1) ** i * math.comb(d - 1, i) for i in range(d)], dtype=torch.float64, device=sigma64.device)
    b = (d - 1 - 2 * j) * math.sqrt(c)
    return coef, b


def _check_riemannian(c: float | torch.Tensor, d: int) -> float:
    c = float(c)
    if not c > 0:
        raise ValueError(
            f"the Riemannian normal needs a hyperbolic ball (c > 0), got c={c}; use the wrapped normal for c=0"
        )
    if d < 1:
        raise ValueError(f"latent dimension must be >= 1, got {d}")
    return c


def riemannian_normal_log_normalizer(sigma: torch.Tensor, c: float, d: int) -> torch.Tensor:
    """``log Z(σ)`` of the Riemannian normal on the d-dimensional ball of curvature -c (closed form).

    ``Z = A_{d-1} (2√c)^{-(d-1)} σ √(π/2) Σ_j (-1)^j C(d-1,j) e^{b_j² σ²/2} (1 + erf(b_j σ/√2))``,
    ``A_{d-1} = 2 π^{d/2} / Γ(d/2)`` (Mathieu et al. 2019, appendix B.4.2).
    """
    c = _check_riemannian(c, d)
    s = sigma.double()
    coef, b = _radial_terms(s, c, d)
    s_ = s.unsqueeze(-1)
    terms = coef * torch.exp(b.square() * s_.square() / 2) * (1 + torch.erf(b * s_ / math.sqrt(2)))
    radial = terms.sum(-1).clamp_min(1e-300) * s * math.sqrt(math.pi / 2) / (2 * math.sqrt(c)) ** (d - 1)
    log_area = math.log(2) + (d / 2) * math.log(math.pi) - math.lgamma(d / 2)
    return (torch.log(radial) + log_area).to(sigma.dtype)


def riemannian_normal_radius_log_density(r: torch.Tensor, sigma: torch.Tensor, c: float, d: int) -> torch.Tensor:
    """Log-density of the radius ``r = d(μ, z)``: ``∝ exp(-r²/2σ²) (sinh(√c r)/√c)^{d-1}`` on r ≥ 0."""
    c = _check_riemannian(c, d)
    sqrt_c = math.sqrt(c)
    log_area = math.log(2) + (d / 2) * math.log(math.pi) - math.lgamma(d / 2)
    log_z_radial = riemannian_normal_log_normalizer(sigma, c, d) - log_area
    rc = (sqrt_c * r).clamp_min(MIN_NORM)
    log_sinh = rc + torch.log1p(-torch.exp(-2 * rc)) - math.log(2)  # stable log sinh
    return -r.square() / (2 * sigma.square()) + (d - 1) * (log_sinh - math.log(sqrt_c)) - log_z_radial


def riemannian_normal_radius_cdf(r: torch.Tensor, sigma: torch.Tensor, c: float, d: int) -> torch.Tensor:
    """CDF of the radius in closed form (differentiable in ``r`` and ``σ``; evaluated in float64)."""
    c = _check_riemannian(c, d)
    r64, s = r.double(), sigma.double()
    coef, b = _radial_terms(s, c, d)
    r_, s_ = r64.unsqueeze(-1), s.unsqueeze(-1)
    sq2 = math.sqrt(2)
    upper = (
        coef
        * torch.exp(b.square() * s_.square() / 2)
        * (torch.erf((r_ - b * s_.square()) / (sq2 * s_)) + torch.erf(b * s_ / sq2))
    )
    total = coef * torch.exp(b.square() * s_.square() / 2) * (1 + torch.erf(b * s_ / sq2))
    cdf = upper.sum(-1) / total.sum(-1).clamp_min(1e-300)
    return cdf.clamp(0.0, 1.0).to(r.dtype)


@float32_region
def riemannian_normal_sample_radius(
    sigma: torch.Tensor, c: float, d: int, max_rounds: int = 1000, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Exact radii by rejection sampling, with an implicitly reparameterised gradient w.r.t. σ.

    Envelopes (both exact upper bounds of the radial density):

    * ``(d-1) c σ² < 1.5``: ``sinh(x)/x ≤ exp(x²/6)`` gives a scaled-χ_d proposal with
      ``1/σ'² = 1/σ² - (d-1)c/3``; accept with ``(sinh(√c r)/(√c r))^{d-1} exp(-(d-1) c r²/6)``.
    * otherwise ``sinh(x) ≤ eˣ/2`` gives ``N((d-1)√c σ², σ²)`` truncated to r > 0; accept with
      ``(1 - e^{-2√c r})^{d-1}``.

    The gradient is the implicit reparameterisation ``∂r/∂σ = -(∂F/∂σ) / p(r)`` with ``F`` the
    closed-form CDF (Figurnov et al. 2018; Mathieu et al. 2019 §B.4).

    Args:
        sigma: (...,) positive scales.
        c: curvature magnitude (> 0).
        d: dimension of the ball.
        max_rounds: give up (RuntimeError) after this many proposal rounds.
        generator: optional torch random generator.

    Returns:
        (...,) radii (same dtype as ``sigma``).
    """
    c = _check_riemannian(c, d)
    if bool((sigma <= 0).any()) or not bool(torch.isfinite(sigma).all()):
        raise ValueError("Riemannian normal scales σ must be finite and > 0")
    sqrt_c = math.sqrt(c)
    s = sigma.detach().double().reshape(-1)
    out = torch.full_like(s, float("nan"))
    todo = torch.arange(s.numel(), device=s.device)
    for _ in range(max_rounds):
        if todo.numel() == 0:
            break
        st = s[todo]
        use_chi = (d - 1) * c * st.square() < 1.5
        # chi proposal
        inv_var = 1 / st.square() - (d - 1) * c / 3
        sp = inv_var.clamp_min(1e-12).rsqrt()
        g = torch.randn(st.numel(), d, dtype=s.dtype, device=s.device, generator=generator)
        r_chi = sp * g.norm(dim=-1)
        x = sqrt_c * r_chi
        log_acc_chi = (d - 1) * (log_sinhc(x) - x.square() / 6)
        # truncated-normal proposal: inverse CDF on [0, inf)
        m = (d - 1) * sqrt_c * st.square()
        u = torch.rand(st.numel(), dtype=s.dtype, device=s.device, generator=generator)
        lo = torch.special.ndtr(-m / st)
        r_tn = m + st * torch.special.ndtri((lo + u * (1 - lo)).clamp(1e-300, 1 - 1e-16))
        r_tn = r_tn.clamp_min(1e-300)
        log_acc_tn = (d - 1) * torch.log1p(-torch.exp(-2 * sqrt_c * r_tn))
        r = torch.where(use_chi, r_chi, r_tn)
        log_acc = torch.where(use_chi, log_acc_chi, log_acc_tn)
        accept = torch.log(torch.rand(st.numel(), dtype=s.dtype, device=s.device, generator=generator)) < log_acc
        out[todo[accept]] = r[accept]
        todo = todo[~accept]
    if todo.numel():
        raise RuntimeError(f"Riemannian-normal rejection sampling did not finish in {max_rounds} rounds")
    r0 = out.reshape(sigma.shape).to(sigma.dtype)
    if not sigma.requires_grad:
        return r0
    cdf = riemannian_normal_radius_cdf(r0, sigma, c, d)
    density = riemannian_normal_radius_log_density(r0, sigma.detach(), c, d).exp().clamp_min(1e-30)
    return r0 - (cdf - cdf.detach()) / density


@float32_region
def riemannian_normal_rsample(
    mu: torch.Tensor, sigma: torch.Tensor, c: float, sample_shape: torch.Size | tuple = ()
) -> torch.Tensor:
    """Samples of the Riemannian normal: a uniform direction in ``T_μ`` and a radius from
    :func:`riemannian_normal_sample_radius`, mapped with ``expmap_μ``.

    Args:
        mu: (..., d) means on the ball.
        sigma: (..., 1) or (...,) isotropic scales.
        c: curvature magnitude (> 0).
        sample_shape: leading sample dimensions.
    """
    k = as_curvature(c, mu)
    d = mu.shape[-1]
    shape = torch.Size(sample_shape) + mu.shape
    s = sigma.reshape(mu.shape[:-1]).expand(shape[:-1])
    r = riemannian_normal_sample_radius(s, float(c), d)
    direction = torch.randn(shape, dtype=mu.dtype, device=mu.device)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)
    return _tangent_to_ball(mu.expand(shape), direction * r.unsqueeze(-1), k)


@float32_region
def riemannian_normal_log_prob(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, c: float) -> torch.Tensor:
    """Exact log-density ``-d(μ, z)²/(2σ²) - log Z(σ)`` w.r.t. the Riemannian volume."""
    k = as_curvature(c, mu)
    d = mu.shape[-1]
    s = sigma.reshape(sigma.shape[:-1]) if sigma.shape == mu.shape[:-1] + (1,) else sigma
    r = dist(mu, z, k)
    s = s.expand_as(r)
    return -r.square() / (2 * s.square()) - riemannian_normal_log_normalizer(s, float(c), d)
