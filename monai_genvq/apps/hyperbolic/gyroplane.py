"""Gyroplanes on the Poincaré ball: signed distance, a gyroplane layer and a gyroplane 3-D convolution.

A gyroplane ``H_{a,p} = {x : <(-p) ⊕ x, a> = 0}`` passes through ``p`` on the ball with normal ``a``
in ``T_p``; the signed distance of ``x`` to it is (Ganea et al., "Hyperbolic Neural Networks",
NeurIPS 2018, Thm. 5)::

    d(x, H_{a,p}) = 1/√c · asinh( 2√c <(-p) ⊕ x, a> / ((1 - c‖(-p) ⊕ x‖²) ‖a‖) )

which is geoopt's ``dist2plane(..., signed=True)``. ``p = expmap0(p̃)`` and ``a = PT_{0→p}(ã)`` are
parameterised by Euclidean parameters ``p̃, ã`` (Mathieu et al. 2019, "gyroplane layer"). The
gyroplane convolution of the seed paper (Hsu et al. 2021) sums these distances over a k³
neighbourhood of ball-valued voxels, with one gyroplane per (output channel, kernel offset).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monai_genvq.apps.hyperbolic.manifold import MIN_NORM, as_curvature, expmap0, gmath, project
from monai_genvq.utils.precision import float32_region

__all__ = ["gyroplane_distance", "gyroplane_conv3d", "GyroplaneLayer", "GyroplaneConv3d"]


def _planes(p_tilde: torch.Tensor, a_tilde: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = expmap0(p_tilde, k)
    a = gmath.parallel_transport0(p, a_tilde, k=k)
    return p, a


@float32_region
def gyroplane_distance(x: torch.Tensor, p: torch.Tensor, a: torch.Tensor, c: float | torch.Tensor) -> torch.Tensor:
    """Signed distance of points ``x`` (..., d) to gyroplanes ``H_{a,p}`` (..., d), broadcasting.

    Example:
        >>> gyroplane_distance(torch.zeros(2), torch.zeros(2), torch.tensor([1.0, 0.0]), c=1.0)
        tensor(0.)
    """
    k = as_curvature(c, x)
    return gmath.dist2plane(project(x, k), project(p, k), a, k=k, signed=True)


@float32_region
def gyroplane_conv3d(
    x: torch.Tensor, p: torch.Tensor, a: torch.Tensor, c: float | torch.Tensor, padding: int = 0, chunk: int = 16
) -> torch.Tensor:
    """Gyroplane convolution of a ball-valued volume, vectorised with ``unfold``.

    ``out[b, o, v] = Σ_{t ∈ k³} d(x[b, :, v + t], H_{a[o, t], p[o, t]})``; padding uses the origin
    (the ball's zero), stride 1. The Möbius difference ``(-p) ⊕ x`` is expanded into the inner
    products <p,x>, <x,a>, ‖x‖², ‖p‖², <p,a> (einsum), so memory is B·N·C·k³, not B·N·C·k³·d; the
    result equals geoopt's ``dist2plane`` (checked against a naive loop in the tests).

    Args:
        x: (B, d, X, Y, Z) ball points along the channel dimension.
        p: (C_out, k³, d) gyroplane points on the ball.
        a: (C_out, k³, d) normals in ``T_p``.
        c: curvature magnitude.
        padding: voxels of origin padding on each side.
        chunk: output channels processed at once (bounds memory to B·N·chunk·k³·d).

    Returns:
        (B, C_out, X', Y', Z').
    """
    if x.ndim != 5:
        raise ValueError(f"gyroplane_conv3d expects (B, d, X, Y, Z), got shape {tuple(x.shape)}")
    k3 = p.shape[1]
    ks = round(k3 ** (1 / 3))
    if ks**3 != k3 or p.shape != a.shape or p.shape[-1] != x.shape[1]:
        raise ValueError(
            f"gyroplane parameters must be (C_out, k³, d={x.shape[1]}); got p {tuple(p.shape)}, a {tuple(a.shape)}"
        )
    kc = as_curvature(c, x)
    cf = float(c)
    if not cf > 0:
        raise ValueError("gyroplane convolution needs a hyperbolic ball (c > 0)")
    if padding:
        x = F.pad(x, (padding,) * 6)  # zeros = the ball's origin
    b, d = x.shape[:2]
    patches = x.unfold(2, ks, 1).unfold(3, ks, 1).unfold(4, ks, 1)  # B, d, X', Y', Z', k, k, k
    out_shape = patches.shape[2:5]
    patches = project(patches.reshape(b, d, -1, k3).permute(0, 2, 3, 1), kc)  # B, N, k³, d
    p = project(p, kc)
    # w = (-p) ⊕ x expanded into inner products, so no (B, N, C, k³, d) tensor is formed:
    # w = (-α p + β x) / D, α = 1 - 2c<p,x> + c‖x‖², β = 1 - c‖p‖², D = 1 - 2c<p,x> + c²‖p‖²‖x‖²
    xx = patches.square().sum(-1).unsqueeze(2)  # B, N, 1, K
    pp, pa = p.square().sum(-1), (p * a).sum(-1)  # C, K
    a_norm = a.norm(dim=-1).clamp_min(MIN_NORM)
    outs = []
    for start in range(0, p.shape[0], chunk):
        sl = slice(start, start + chunk)
        px = torch.einsum("bnkd,ckd->bnck", patches, p[sl])
        xa = torch.einsum("bnkd,ckd->bnck", patches, a[sl])
        alpha = 1 - 2 * cf * px + cf * xx
        beta = 1 - cf * pp[sl]
        den = (1 - 2 * cf * px + cf**2 * pp[sl] * xx).clamp_min(MIN_NORM)
        wa = (-alpha * pa[sl] + beta * xa) / den
        ww = ((alpha.square() * pp[sl] - 2 * alpha * beta * px + beta.square() * xx) / den.square()).clamp_min(0)
        arg = 2 * cf**0.5 * wa / ((1 - cf * ww).clamp_min(MIN_NORM) * a_norm[sl])
        outs.append((torch.asinh(arg) / cf**0.5).sum(-1))
    out = torch.cat(outs, dim=2)  # B, N, C
    return out.permute(0, 2, 1).reshape(b, p.shape[0], *out_shape)


class GyroplaneLayer(nn.Module):
    """Signed distances of ball points to ``out_features`` learnt gyroplanes (Ganea et al. 2018).

    Args:
        in_features: dimension d of the ball.
        out_features: number of gyroplanes.
        c: curvature magnitude.
        bias: add a learnt bias per output.

    Example:
        >>> layer = GyroplaneLayer(2, 8, c=1.0)
        >>> layer(torch.zeros(4, 2)).shape
        torch.Size([4, 8])
    """

    def __init__(self, in_features: int, out_features: int, c: float = 1.0, bias: bool = True) -> None:
        super().__init__()
        self.c = float(c)
        self.p_tilde = nn.Parameter(torch.randn(out_features, in_features) * 1e-2)
        self.a_tilde = nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def planes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The gyroplanes' points ``p`` (on the ball) and normals ``a`` (in ``T_p``)."""
        return _planes(self.p_tilde, self.a_tilde, as_curvature(self.c, self.p_tilde))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, a = self.planes()
        out = gyroplane_distance(x.unsqueeze(-2), p, a, self.c)
        return out + self.bias if self.bias is not None else out


class GyroplaneConv3d(nn.Module):
    """Gyroplane convolution (Hsu et al. 2021): sums of signed gyroplane distances over k³ windows.

    Args:
        in_features: dimension d of the ball (channels of the input volume).
        out_channels: output channels.
        kernel_size: k (cubic kernel).
        c: curvature magnitude.
        padding: origin padding per side (``kernel_size // 2`` keeps the size).
        bias: add a learnt bias per output channel.

    Example:
        >>> conv = GyroplaneConv3d(2, 4, kernel_size=3, c=1.0, padding=1)
        >>> conv(torch.zeros(1, 2, 5, 5, 5)).shape
        torch.Size([1, 4, 5, 5, 5])
    """

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        kernel_size: int = 3,
        c: float = 1.0,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.c = float(c)
        self.padding = padding
        k3 = kernel_size**3
        self.p_tilde = nn.Parameter(torch.randn(out_channels, k3, in_features) * 1e-2)
        self.a_tilde = nn.Parameter(torch.randn(out_channels, k3, in_features) / (in_features * k3) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def planes(self) -> tuple[torch.Tensor, torch.Tensor]:
        return _planes(self.p_tilde, self.a_tilde, as_curvature(self.c, self.p_tilde))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, a = self.planes()
        out = gyroplane_conv3d(x, p, a, self.c, padding=self.padding)
        return out + self.bias.view(1, -1, 1, 1, 1) if self.bias is not None else out
