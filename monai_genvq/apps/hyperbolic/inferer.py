"""The hyperbolic app's inferer: embed a whole volume, cluster it on the ball, return the cluster-id map.

``inferer(inputs, network)`` -> tensor, for the eager network (dataclass outputs) and for its
TorchScript export (:class:`~monai_genvq.networks.TensorOutputNetwork`) alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from monai.inferers import Inferer

from monai_genvq.apps.hyperbolic.kmeans import assign_clusters, euclidean_kmeans, poincare_kmeans
from monai_genvq.networks.export import network_tensor

__all__ = ["HyperbolicClusterInferer", "cluster_embedding"]


def cluster_embedding(
    emb: torch.Tensor,
    n_clusters: int,
    curvature: float,
    keep: np.ndarray | None = None,
    seed: int = 0,
    max_fit_points: int = 200_000,
) -> np.ndarray:
    """Cluster a per-voxel embedding ``(d, *spatial)`` into ``n_clusters`` ids ``(*spatial)`` (masked-out voxels -> -1).

    Poincaré k-means (Fréchet means on the ball of curvature ``-curvature``; for ``curvature == 0``
    scikit-learn's Euclidean k-means, :func:`~monai_genvq.apps.hyperbolic.euclidean_kmeans`) fitted
    on at most ``max_fit_points`` voxels (a seeded random subset), then every kept voxel is assigned
    to its nearest centre (Hsu et al. 2021, "Capturing implicit hierarchical structure in 3D
    biomedical images with self-supervised hyperbolic representations"). Both use 2 seeded restarts.

    Args:
        emb: (d, *spatial) per-voxel embedding.
        n_clusters: k.
        curvature: the ball's curvature c (0: a flat latent).
        keep: optional boolean mask (*spatial) of the voxels to cluster.
        seed: seed of the subset and of k-means.
        max_fit_points: k-means is fitted on at most this many voxels.

    Example:
        >>> emb = torch.cat([torch.full((2, 4, 1, 1), -0.5), torch.full((2, 4, 1, 1), 0.5)], 1)  # 2-D codes, 8 voxels
        >>> ids = cluster_embedding(emb, 2, 1.0)
        >>> ids.shape, ids.ravel().tolist() in ([0] * 4 + [1] * 4, [1] * 4 + [0] * 4)
        ((8, 1, 1), True)
    """
    flat = emb.reshape(emb.shape[0], -1).T.cpu().float()
    keep = np.ones(flat.shape[0], bool) if keep is None else np.asarray(keep, bool).ravel()
    if keep.shape[0] != flat.shape[0]:
        raise ValueError(f"mask has {keep.shape[0]} voxels, the embedding {flat.shape[0]}")
    pts = flat[torch.from_numpy(keep)]
    if pts.shape[0] < n_clusters:
        raise ValueError(f"cannot form {n_clusters} clusters from {pts.shape[0]} (unmasked) voxels")
    gen = np.random.default_rng(seed)
    fit = (
        pts
        if pts.shape[0] <= max_fit_points
        else pts[torch.from_numpy(gen.choice(pts.shape[0], max_fit_points, replace=False))]
    )
    if curvature == 0:
        res = euclidean_kmeans(fit, n_clusters, seed=seed)
    else:
        res = poincare_kmeans(fit, n_clusters, c=curvature, seed=seed)
    labels = np.full(flat.shape[0], -1, np.int64)
    labels[keep] = assign_clusters(pts, res.centres, curvature).numpy()
    return labels.reshape(emb.shape[1:])


class HyperbolicClusterInferer(Inferer):
    """Unsupervised segmentation of whole volumes: per-voxel hyperbolic embeddings, then k-means.

    ``inputs`` (B, C, X, Y, Z) -> (B, 1, X, Y, Z) int64 cluster ids in ``[1, n_clusters]`` (0 for
    voxels outside the mask), the embedding being ``network.embed_volume`` (or the exported
    TorchScript module's output).

    Args:
        n_clusters: number of clusters k.
        curvature: the network's ball curvature c (``@curvature``); 0 clusters with Euclidean k-means.
        clustering: "auto" (Poincaré for c > 0), "poincare" or "euclidean".
        mask: "none" or "nonzero" (cluster only voxels where a channel is non-zero, e.g. the brain).
        seed: k-means seed.
        max_fit_points: k-means is fitted on at most this many voxels, then assigns all.
        zoom: the resampling factor the network was trained at (``HyperbolicVAE.embed_volume``); an
            exported TorchScript embedding has its zoom baked in at export.

    Example:
        >>> from monai_genvq.apps.hyperbolic import HyperbolicVAE
        >>> net = HyperbolicVAE(spatial_dims=3, in_channels=1, patch_size=10, latent_dim=2, channels=(8, 16, 16, 32))
        >>> HyperbolicClusterInferer(2, 1.0)(torch.rand(1, 1, 12, 12, 12), net).shape  # doctest: +SKIP
        torch.Size([1, 1, 12, 12, 12])
    """

    def __init__(
        self,
        n_clusters: int,
        curvature: float = 1.0,
        clustering: str = "auto",
        mask: str = "none",
        seed: int = 0,
        max_fit_points: int = 200_000,
        zoom: float = 1.0,
    ) -> None:
        super().__init__()
        if clustering not in ("auto", "poincare", "euclidean"):
            raise ValueError(f"clustering must be 'auto', 'poincare' or 'euclidean', got {clustering!r}")
        if mask not in ("none", "nonzero"):
            raise ValueError(f"mask must be 'none' or 'nonzero', got {mask!r}")
        if clustering == "poincare" and curvature <= 0:
            raise ValueError("Poincaré k-means needs a hyperbolic latent (curvature > 0)")
        self.n_clusters, self.clustering, self.mask = int(n_clusters), clustering, mask
        self.curvature = 0.0 if clustering == "euclidean" else float(curvature)
        self.seed, self.max_fit_points, self.zoom = int(seed), int(max_fit_points), float(zoom)

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        if inputs.ndim != 5:
            raise ValueError(f"expected volumes (B, C, X, Y, Z), got shape {tuple(inputs.shape)}")
        x = torch.as_tensor(inputs).float()
        with torch.no_grad():
            emb = network_tensor(network, x, "embed_volume", kwargs={"zoom": self.zoom})
        out = []
        for b in range(x.shape[0]):
            keep = None if self.mask == "none" else (x[b] != 0).any(0).cpu().numpy()
            ids = cluster_embedding(emb[b], self.n_clusters, self.curvature, keep, self.seed, self.max_fit_points)
            out.append(torch.from_numpy(ids + 1))
        return torch.stack(out)[:, None].to(inputs.device)
