"""Poincaré-ball pieces geoopt lacks: distributions, gyroplane layers, the hyperbolic VAE."""

from .distributions import (
    RiemannianNormal,
    WrappedNormal,
    riemannian_normal_log_normalizer,
    riemannian_normal_log_prob,
    riemannian_normal_radius_cdf,
    riemannian_normal_radius_log_density,
    riemannian_normal_rsample,
    riemannian_normal_sample_radius,
    wrapped_normal_log_prob,
    wrapped_normal_rsample,
)
from .gyroplane import GyroplaneConv3d, GyroplaneLayer, gyroplane_conv3d, gyroplane_distance
from .manifold import BOUNDARY_EPS, MIN_NORM, MIN_SIGMA, as_curvature, bound_tangent0, dist, expmap0, logmap0, project
from .vae import HyperbolicVAE, HyperbolicVAEOutput, patch_offsets

__all__ = [
    "BOUNDARY_EPS", "MIN_NORM", "MIN_SIGMA", "as_curvature", "dist", "expmap0", "logmap0", "project",
    "WrappedNormal", "RiemannianNormal", "wrapped_normal_rsample", "wrapped_normal_log_prob",
    "riemannian_normal_log_normalizer", "riemannian_normal_log_prob", "riemannian_normal_radius_cdf",
    "riemannian_normal_radius_log_density", "riemannian_normal_rsample", "riemannian_normal_sample_radius",
    "GyroplaneLayer", "GyroplaneConv3d", "gyroplane_conv3d", "gyroplane_distance",
    "HyperbolicVAE", "HyperbolicVAEOutput", "patch_offsets",
    "bound_tangent0",
]
