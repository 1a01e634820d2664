"""The no-learning reference embedding for unsupervised segmentation: each voxel's own intensities.

:class:`~monai_genvq.apps.hyperbolic.HyperbolicSegmentation` clusters whatever per-voxel embedding a network's
``embed_volume`` returns. Given this module instead of a trained VAE, the same clustering, Hungarian
matching and Dice score the (optionally Gaussian-smoothed) intensities, so ``comparison.md`` shows
what a learnt embedding adds over k-means on intensity — the classic baseline of unsupervised
segmentation.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

__all__ = ["IntensityEmbedding"]


class IntensityEmbedding(torch.nn.Module):
    """Per-voxel embedding = the input's channels, each smoothed by a Gaussian of ``sigma`` voxels (0: raw).

    It has no parameters and a flat latent (``curvature = 0``), so it is clustered with Euclidean
    k-means. ``zoom`` is accepted for interface compatibility with
    :meth:`~monai_genvq.apps.hyperbolic.HyperbolicVAE.embed_volume` and ignored: the embedding is always at
    the input's resolution.

    Args:
        spatial_dims: number of spatial dimensions of the volumes (2 or 3).
        sigma: standard deviation of the Gaussian in voxels; 0 clusters the raw intensities.

    Example:
        >>> emb = IntensityEmbedding(spatial_dims=3, sigma=1.0).embed_volume(torch.rand(1, 8, 8, 8))
        >>> tuple(emb.shape)
        (1, 8, 8, 8)
    """

    curvature = 0.0

    def __init__(self, spatial_dims: int = 3, sigma: float = 0.0) -> None:
        super().__init__()
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0 voxels, got {sigma}")
        self.spatial_dims, self.sigma = int(spatial_dims), float(sigma)

    @property
    def embedding_description(self) -> str:
        """What one voxel's embedding is (``metrics.json`` and figure titles say it)."""
        return (
            f"input intensities per voxel, Gaussian-smoothed (σ = {self.sigma:g} voxels)"
            if self.sigma
            else "input intensities per voxel"
        )

    def embed_volume(
        self, volume: torch.Tensor, slab: int = 16, padding_mode: str = "replicate", zoom: float = 1.0
    ) -> torch.Tensor:
        """(C, *spatial) volume -> (C, *spatial) smoothed intensities (``slab``, ``padding_mode``, ``zoom`` unused)."""
        if volume.ndim != self.spatial_dims + 1:
            raise ValueError(
                f"expected a (C, {', '.join('*' * self.spatial_dims)}) volume, got shape {tuple(volume.shape)}"
            )
        if not torch.isfinite(volume).all():
            raise ValueError("volume contains NaN or infinite voxels")
        if self.sigma == 0:
            return volume.float()
        # edge voxels are extended (mode "nearest"): zero padding would darken the volume's border
        smoothed = ndimage.gaussian_filter(
            volume.detach().float().cpu().numpy(), (0,) + (self.sigma,) * self.spatial_dims, mode="nearest"
        )
        return torch.as_tensor(np.ascontiguousarray(smoothed), device=volume.device)
