"""The hyperbolic VAE of Hsu et al. 2021 ("Learning Hyperbolic Representations for Unsupervised 3D
Segmentation"): a 3-D conv encoder on N³ patches, posterior on the Poincaré ball, gyroplane decoder.

The encoder uses only unpadded, unstrided convolutions that shrink an N³ patch to 1³, so the same
weights applied to a padded whole volume give every voxel's patch embedding at once
(:meth:`HyperbolicVAE.embed_volume`), equal (to float rounding) to embedding each patch separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from monai_genvq.apps.hyperbolic.distributions import (
    riemannian_normal_log_prob,
    riemannian_normal_rsample,
    wrapped_normal_log_prob,
    wrapped_normal_rsample,
)
from monai_genvq.apps.hyperbolic.gyroplane import GyroplaneConv3d, GyroplaneLayer
from monai_genvq.apps.hyperbolic.manifold import (
    MIN_SIGMA,
    as_curvature,
    bound_tangent0,
    boundary_radius,
    expmap0,
    logmap0,
)

__all__ = ["HyperbolicVAEOutput", "HyperbolicVAE", "patch_offsets"]

DISTRIBUTIONS = ("wrapped", "riemannian")
DECODER_HEADS = ("gyroconv", "gyroplane", "linear")
SAFE_RADIUS_FRACTION = 2.0 / 3.0
"""``max_radius`` may be at most this fraction of :func:`~.manifold.boundary_radius` (room for posterior noise)."""
SIGMAS_TO_EDGE = 4.0
"""Posterior σ is capped so that a mean at ``max_radius`` is this many σ from the float32 edge."""


def patch_offsets(patch_size: int) -> tuple[int, int]:
    """Voxels before and after the centre voxel in a patch: ``((N-1)//2, N//2)``."""
    return (patch_size - 1) // 2, patch_size // 2


def _pointwise(conv: nn.Conv3d, h: torch.Tensor) -> torch.Tensor:
    """A 1×1×1 convolution ``conv`` of features ``(B, F, *s)`` as one matrix product, channel-last ``(B, *s, out)``.

    On channels-last features (the whole-volume path) this is a GEMM without copies and its output is
    contiguous, so the ball maps' reductions over the last axis stay fast; oneDNN's 1×1×1
    convolution to 2 channels took 6× as long (and PyTorch's slow path 3×) on a BraTS slab.
    """
    return F.linear(h.movedim(1, -1), conv.weight.flatten(1), conv.bias)


def _shrinking_kernels(size: int, target: int = 1) -> list[int]:
    """Kernel sizes (3s, then one 2 if needed) of unpadded convs taking ``size`` to ``target``."""
    steps = size - target
    kernels = [3] * (steps // 2)
    if steps % 2:
        kernels.append(2)
    return kernels


@dataclass
class HyperbolicVAEOutput:
    """What :class:`HyperbolicVAE` returns.

    Args:
        reconstruction: (B, C, N, N, N) decoder output (logits for a Bernoulli likelihood); in training with
            ``posterior_samples`` K > 1, (K, B, C, N, N, N), one reconstruction per sample.
        mu: (B, d) posterior means on the ball (within geodesic radius ``max_radius`` of the origin).
        sigma: (B, d) (wrapped) or (B, 1) (Riemannian) posterior scales.
        z: (B, d) posterior sample (the mean in eval mode); (K, B, d) in training with K > 1.
        kl: (B,) Monte-Carlo KL(q(z|x) || p(z)), averaged over the K samples.
    """

    reconstruction: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    z: torch.Tensor
    kl: torch.Tensor


class HyperbolicVAE(nn.Module):
    """Poincaré-ball VAE for 3-D patches (Hsu et al. 2021; distributions of Mathieu et al. 2019).

    The defaults are the hierarchical-toy bundle's network (``bundles/hyperbolic_toy_seg/configs/train.json``,
    also the BraTS and cryo-ET bundles'; ``tests/test_hyperbolic_math.py`` checks they agree). The seed
    slides give no layer widths; these are the widths the bundles' numbers were measured with.

    Args:
        spatial_dims: must be 3 (kept for MONAI's network signature convention).
        in_channels: image channels.
        patch_size: N of the N³ input patches.
        latent_dim: dimension d of the ball.
        curvature: c > 0 for the Poincaré ball of curvature -c; 0 gives the Euclidean-latent ablation.
        distribution: "wrapped" (wrapped normal, diagonal σ) or "riemannian" (Riemannian normal, isotropic σ).
        decoder_head: "gyroconv" (gyroplane 3-D convolution over the latent tiled on a 3³ grid),
            "gyroplane" (gyroplane layer) or "linear" (Euclidean linear layer on logmap0(z): the ablation).
        channels: encoder channels per conv layer (reused in reverse by the decoder); (8, 16, 16, 32).
        gyro_channels: output channels of the decoder's first (gyroplane) layer; 8.
        prior_scale: σ of the prior (same family as the posterior, centred at the origin).
        max_radius: geodesic radius (from the origin) that posterior means stay strictly inside:
            ``μ = expmap0(bound_tangent0(W h, max_radius))``, a smooth tanh squash of the tangent
            norm (:func:`~.manifold.bound_tangent0`). Without it (``None``) the encoder can drive
            every mean to the ball's numerical clamp (geodesic radius ≈ 6.2 for c = 1 in float32),
            where the clamp also swallows the radial posterior noise and the codes collapse onto
            a sphere. Applied identically for ``curvature=0`` (the bound is 2‖u‖ there too) so
            the Euclidean ablation differs only in curvature. For c > 0 it must be at most
            ⅔ of the radius where the float32 clamp starts (4.14 for c = 1), else a ValueError:
            a toy run with max_radius 6 drove the Monte-Carlo KL of clamped samples to −5·10⁶ and
            every code collapsed onto one point. With ``max_radius`` set and c > 0 the posterior
            scales are also capped, at ``(edge radius - max_radius) / 4`` (0.80 for c = 1 and
            max_radius 3), so a sample reaches the clamp only beyond 4σ: in a 60-epoch toy run
            (triplet weight 10³, seed 2) one σ grew to ~300, the samples sat on the clamp and the
            Monte-Carlo KL went to −58 (−650 for single samples of a fresh batch).
        posterior_samples: K posterior samples per patch in training, each decoded; the reconstruction
            NLL and the Monte-Carlo KL are averaged over them (Hsu et al.'s released code trains with
            ``--K 8``). 1 (the default) is one sample; the decoder's cost grows K-fold. Evaluation
            uses the posterior mean either way.

    Example:
        >>> net = HyperbolicVAE(patch_size=10, latent_dim=2)
        >>> out = net(torch.randn(4, 1, 10, 10, 10))
        >>> out.reconstruction.shape, out.mu.shape
        (torch.Size([4, 1, 10, 10, 10]), torch.Size([4, 2]))
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        patch_size: int = 10,
        latent_dim: int = 2,
        curvature: float = 1.0,
        distribution: str = "wrapped",
        decoder_head: str = "gyroconv",
        channels: Sequence[int] = (8, 16, 16, 32),
        gyro_channels: int = 8,
        prior_scale: float = 1.0,
        max_radius: float | None = 3.0,
        posterior_samples: int = 1,
    ) -> None:
        super().__init__()
        if int(posterior_samples) != posterior_samples or posterior_samples < 1:
            raise ValueError(f"posterior_samples must be an integer >= 1, got {posterior_samples}")
        self.posterior_samples = int(posterior_samples)
        if spatial_dims != 3:
            raise ValueError(f"HyperbolicVAE is a 3-D network, got spatial_dims={spatial_dims}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if decoder_head not in DECODER_HEADS:
            raise ValueError(f"decoder_head must be one of {DECODER_HEADS}, got {decoder_head!r}")
        if curvature == 0 and distribution == "riemannian":
            raise ValueError(
                "the Riemannian normal needs curvature > 0; use distribution='wrapped' for a Euclidean latent"
            )
        if curvature == 0 and decoder_head != "linear":
            raise ValueError("a Euclidean latent (curvature=0) uses decoder_head='linear'")
        if max_radius is not None and not max_radius > 0:
            raise ValueError(f"max_radius must be > 0 or None, got {max_radius}")
        edge = boundary_radius(float(curvature))
        if max_radius is not None and max_radius > SAFE_RADIUS_FRACTION * edge:
            raise ValueError(
                f"max_radius={max_radius} is too close to the ball's float32 edge for curvature {curvature} "
                f"(clamped from geodesic radius {edge:.2f}); use max_radius <= {SAFE_RADIUS_FRACTION * edge:.2f}. "
                "Posterior samples beyond the edge are clamped, and the Monte-Carlo KL of clamped samples can be "
                "driven to -inf, which training then exploits"
            )
        if patch_size < 2:
            raise ValueError(f"patch_size must be >= 2, got {patch_size}")
        self.patch_size, self.latent_dim, self.curvature = patch_size, latent_dim, float(curvature)
        self.distribution, self.decoder_head, self.prior_scale = distribution, decoder_head, prior_scale
        self.in_channels, self.max_radius = in_channels, max_radius
        self.max_sigma = None
        if max_radius is not None and curvature > 0:
            self.max_sigma = (edge - max_radius) / SIGMAS_TO_EDGE

        kernels = _shrinking_kernels(patch_size)
        chans = list(channels)[: len(kernels)]
        chans += [chans[-1]] * (len(kernels) - len(chans))
        layers: list[nn.Module] = []
        prev = in_channels
        for ks, ch in zip(kernels, chans):
            layers += [nn.Conv3d(prev, ch, ks), nn.ELU(inplace=True)]  # in place: no fresh page-faulted buffer
            prev = ch
        self.encoder = nn.Sequential(*layers)
        self.to_mu = nn.Conv3d(prev, latent_dim, 1)
        self.to_sigma = nn.Conv3d(prev, latent_dim if distribution == "wrapped" else 1, 1)

        grid = min(3, patch_size)
        self.grid = grid
        if decoder_head == "gyroconv":
            self.head = GyroplaneConv3d(latent_dim, gyro_channels, kernel_size=3, c=curvature, padding=1)
        elif decoder_head == "gyroplane":
            self.head = GyroplaneLayer(latent_dim, gyro_channels * grid**3, c=curvature)
        else:
            self.head = nn.Linear(latent_dim, gyro_channels * grid**3)
        up: list[nn.Module] = [nn.ELU()]
        prev = gyro_channels
        for ks, ch in zip(_shrinking_kernels(patch_size, grid), reversed(chans)):
            up += [nn.ConvTranspose3d(prev, ch, ks), nn.ELU()]
            prev = ch
        up.append(nn.Conv3d(prev, in_channels, 1))
        self.decoder = nn.Sequential(*up)

    # -- encoder --------------------------------------------------------------------------------
    def _k(self, like: torch.Tensor) -> torch.Tensor:
        return as_curvature(self.curvature, like)

    def _posterior_mean(self, h: torch.Tensor) -> torch.Tensor:
        """Encoder features (B, F, *s) -> posterior means μ on the ball, channel-last (B, *s, d).

        The only place where posterior means are mapped onto the ball (training and
        :meth:`embed_volume` alike): the tangent vector is bounded first (``max_radius``).
        """
        mu_t = _pointwise(self.to_mu, h)
        if self.max_radius is not None:
            mu_t = bound_tangent0(mu_t, self.max_radius)
        return expmap0(mu_t, self._k(mu_t))

    def _posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder features (B, F, *s) -> μ on the ball (:meth:`_posterior_mean`) and σ, both channel-last (B, *s, d).

        σ is capped so that samples stay off the ball's float32 edge (``max_sigma``).
        """
        sigma = F.softplus(_pointwise(self.to_sigma, h)) + MIN_SIGMA
        if self.max_sigma is not None:
            sigma = sigma.clamp(max=self.max_sigma)
        return self._posterior_mean(h), sigma

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, N, N, N) patches -> posterior means on the ball (B, d) and scales."""
        self._check_patches(x)
        mu, sigma = self._posterior(self.encoder(x))
        return mu.reshape(x.shape[0], -1), sigma.reshape(x.shape[0], -1)

    def _check_patches(self, x: torch.Tensor) -> None:
        n = self.patch_size
        if x.ndim != 5 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != (n, n, n):
            raise ValueError(f"expected patches of shape (B, {self.in_channels}, {n}, {n}, {n}), got {tuple(x.shape)}")

    @torch.no_grad()
    def embed_volume(
        self, volume: torch.Tensor, slab: int = 16, padding_mode: str = "replicate", zoom: float = 1.0
    ) -> torch.Tensor:
        """Per-voxel posterior means of a whole volume, fully convolutionally, in slabs along the last axis.

        The embedding at voxel v is that of the N³ patch starting at ``v - (N-1)//2`` (the volume is
        padded with ``padding_mode`` at its borders). Each slab runs in channels-last memory with
        slabs cut along the last axis: on CPU that keeps every convolution on oneDNN (PyTorch
        sends a batch-1 input whose ``C·X·Y`` is at most 20480 to its slow ``slow_conv3d``
        path, which slabs along the first axis hit for the 1-channel first layer) and halved the
        time of a BraTS case (240 × 240 × 155) against contiguous slabs along the first axis.

        Args:
            volume: (C, X, Y, Z) or (B, C, X, Y, Z).
            slab: output planes (along the last axis) per forward pass (bounds memory for large volumes).
            padding_mode: ``torch.nn.functional.pad`` mode for the borders.
            zoom: the encoder sees the volume resampled by this factor (trilinear), so one N³ patch
                covers N / zoom input voxels per side; the embeddings are resampled back to the input
                grid (trilinear: a convex combination of points inside a Euclidean ball centred at the
                origin, which is what a geodesic ball around the origin is, stays inside it). Use the
                zoom the network was trained at (e.g. ``monai.transforms.Zoomd`` in training).

        Returns:
            (B, d, X, Y, Z) (or (d, X, Y, Z)) points on the ball.
        """
        squeeze = volume.ndim == 4
        v = volume.unsqueeze(0) if squeeze else volume
        if v.ndim != 5 or v.shape[1] != self.in_channels:
            raise ValueError(f"expected a volume (C={self.in_channels}, X, Y, Z), got shape {tuple(volume.shape)}")
        if not zoom > 0:
            raise ValueError(f"zoom must be > 0, got {zoom}")
        if zoom != 1.0:
            size = v.shape[2:]  # not ints: a traced export keeps the output size tied to the input
            zoomed = F.interpolate(v.float(), scale_factor=zoom, mode="trilinear", align_corners=False)
            out = self.embed_volume(zoomed, slab, padding_mode)
            out = F.interpolate(out, size=size, mode="trilinear", align_corners=False)
            return out[0] if squeeze else out
        lo, hi = patch_offsets(self.patch_size)
        padded = F.pad(v.float(), (lo, hi, lo, hi, lo, hi), mode=padding_mode)
        outs = []
        for s in range(0, v.shape[-1], slab):
            e = min(s + slab, v.shape[-1])
            chunk = padded[..., s : e + self.patch_size - 1].contiguous(memory_format=torch.channels_last_3d)
            outs.append(self._posterior_mean(self.encoder(chunk)))  # (B, X, Y, z, d)
        out = torch.cat(outs, dim=3).movedim(-1, 1).contiguous()
        return out[0] if squeeze else out

    # -- decoder --------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) ball points -> (B, C, N, N, N) reconstruction."""
        b, g = z.shape[0], self.grid
        if self.decoder_head == "gyroconv":
            tiled = z.view(b, -1, 1, 1, 1).expand(b, z.shape[1], g, g, g)
            h = self.head(tiled)
        elif self.decoder_head == "gyroplane":
            h = self.head(z).view(b, -1, g, g, g)
        else:
            h = self.head(logmap0(z, self._k(z))).view(b, -1, g, g, g)
        return self.decoder(h)

    # -- distributions --------------------------------------------------------------------------
    def sample_posterior(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.distribution == "wrapped":
            return wrapped_normal_rsample(mu, sigma, self.curvature)
        return riemannian_normal_rsample(mu, sigma, self.curvature)

    def log_prob(self, z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.distribution == "wrapped":
            return wrapped_normal_log_prob(z, mu, sigma, self.curvature)
        return riemannian_normal_log_prob(z, mu, sigma, self.curvature)

    def kl(self, z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """One-sample Monte-Carlo KL(q || p) with the prior centred at the origin."""
        origin = torch.zeros_like(mu)
        prior_sigma = torch.full_like(sigma, self.prior_scale)
        return self.log_prob(z, mu, sigma) - self.log_prob(z, origin, prior_sigma)

    def forward(self, x: torch.Tensor) -> HyperbolicVAEOutput:
        mu, sigma = self.encode(x)
        k = self.posterior_samples if self.training else 1
        if k == 1:
            z = self.sample_posterior(mu, sigma) if self.training else mu
            kl = self.kl(z, mu, sigma)
            return HyperbolicVAEOutput(reconstruction=self.decode(z), mu=mu, sigma=sigma, z=z, kl=kl)
        # K samples of every patch in one batch (K * B), then split back to (K, B, ...)
        mu_k, sigma_k = mu.repeat(k, 1), sigma.repeat(k, 1)
        z = self.sample_posterior(mu_k, sigma_k)
        kl = self.kl(z, mu_k, sigma_k).view(k, -1).mean(0)
        rec = self.decode(z)
        b = x.shape[0]
        return HyperbolicVAEOutput(
            reconstruction=rec.view(k, b, *rec.shape[1:]), mu=mu, sigma=sigma, z=z.view(k, b, -1), kl=kl
        )
