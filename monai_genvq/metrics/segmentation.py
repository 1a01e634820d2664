"""Per-label Dice (MONAI DiceMetric) and the intensity k-means baseline with Hungarian label matching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import DiceMetric
from scipy import ndimage
from sklearn.cluster import KMeans

from monai_genvq.metrics.cluster_dice import match_clusters
from monai_genvq.utils.tables import mean_std

__all__ = [
    "IntensityKMeans",
    "hungarian_match",
    "kmeans_clusters",
    "kmeans_segmentation",
    "per_label_dice",
    "summarize_dice",
]


def _onehot(lab: torch.Tensor, num_labels: int) -> torch.Tensor:
    lab = torch.as_tensor(lab).long()
    lab = lab[:, 0] if lab.ndim >= 3 and lab.shape[1] == 1 else lab
    return torch.nn.functional.one_hot(lab, num_labels).movedim(-1, 1).float()


def per_label_dice(pred: Any, target: Any, num_labels: int) -> torch.Tensor:
    """Dice of each foreground label per image: (B, num_labels - 1), via :class:`monai.metrics.DiceMetric`.

    Args:
        pred, target: integer label maps (B, *spatial) or (B, 1, *spatial).
        num_labels: L including background (label 0, excluded from the output).

    A label absent from both maps of an image scores NaN (``ignore_empty``), so means skip it.

    Example:
        >>> p = torch.tensor([[[0, 1], [1, 1]]]); t = torch.tensor([[[0, 1], [1, 0]]])
        >>> per_label_dice(p, t, 2)
        tensor([[0.8000]])
    """
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    return metric(_onehot(pred, num_labels), _onehot(target, num_labels))


def summarize_dice(dice: torch.Tensor, label_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{label: {"mean", "std", "n"}, "mean": {...}}`` over images (NaN entries skipped; "mean" = mean over labels per image)."""
    d = torch.as_tensor(dice, dtype=torch.float64)
    out = {name: mean_std(d[:, j]) for j, name in enumerate(label_names)}
    out["mean"] = mean_std(torch.nanmean(d, dim=1))
    return out


def hungarian_match(clusters: Any, target: Any, num_labels: int, criterion: str = "overlap") -> np.ndarray:
    """Relabel cluster ids to labels ``0..num_labels-1`` by the one-to-one Hungarian matching of :func:`match_clusters`.

    This uses the ground truth (an oracle matching), which makes the k-means baseline optimistic.
    Clusters left without a label (more clusters than labels) become label 0 (background).

    Args:
        clusters: non-negative integer cluster ids (any shape).
        target: ground-truth labels ``0..num_labels-1`` (same shape).
        num_labels: number of labels.
        criterion: what the matching maximises: ``"overlap"`` (the matched voxels, i.e. the accuracy
            after relabelling: the standard scoring of a clustering, used by the anatomical-prior
            bundle's k-means row) or ``"dice"`` (the sum of the matched pairs' Dice, as
            :func:`monai_genvq.metrics.hungarian_dice`).

    Returns:
        ``clusters`` relabelled, int64.

    Example:
        >>> hungarian_match(np.array([2, 2, 0, 1]), np.array([1, 1, 0, 2]), 3).tolist()
        [1, 1, 0, 2]
    """
    clusters = np.asarray(clusters).astype(np.int64)
    if clusters.size and clusters.min() < 0:
        raise ValueError(f"cluster ids must be >= 0; got {int(clusters.min())}")
    k = int(max(num_labels, clusters.max() + 1 if clusters.size else 0))
    target = np.asarray(target).astype(np.int64)
    mapping, _ = match_clusters(clusters, target, range(num_labels), range(k), criterion)
    lut = np.zeros(k, np.int64)
    for lab, cluster in mapping.items():
        lut[cluster] = lab
    return lut[clusters]


def kmeans_clusters(image: Any, num_clusters: int, seed: int = 0, restarts: int = 5) -> np.ndarray:
    """Intensity k-means of each image, no labels: cluster ids (scikit-learn ``KMeans``, k-means++ starts).

    Args:
        image: (B, C, *spatial) intensities (channels are the features of a voxel).
        num_clusters: k.
        seed: ``random_state`` of ``KMeans`` (the result is deterministic for a seed).
        restarts: k-means++ starts per image (``KMeans``'s ``n_init``); the lowest inertia wins.

    Returns:
        (B, *spatial) int64 cluster ids (arbitrary order: match them to labels to score them).

    Example:
        >>> ids = kmeans_clusters(np.array([[[0.0, 0.0, 1.0, 1.0]]]), 2)
        >>> bool(ids[0, 0] == ids[0, 1] != ids[0, 2] == ids[0, 3])
        True
    """
    img = np.asarray(torch.as_tensor(image).float().detach().cpu())
    if img.ndim < 3:
        raise ValueError(f"kmeans_clusters expects (B, C, *spatial) images; got shape {img.shape}")
    feats = img.reshape(img.shape[0], img.shape[1], -1)
    out = np.zeros((img.shape[0],) + img.shape[2:], np.int64)
    for b in range(img.shape[0]):
        km = KMeans(int(num_clusters), init="k-means++", n_init=int(restarts), random_state=seed)
        out[b] = km.fit_predict(feats[b].T.astype(np.float64)).reshape(img.shape[2:])
    return out


def kmeans_segmentation(image: Any, target: Any, num_labels: int, seed: int = 0, restarts: int = 5) -> np.ndarray:
    """Intensity k-means (:func:`kmeans_clusters`, k = num_labels) per image, matched to the labels.

    Args:
        image: (B, C, *spatial) or (B, *spatial) intensities.
        target: (B, *spatial) or (B, 1, *spatial) ground truth, used only for the Hungarian matching
            of cluster ids to labels.
        num_labels: k.
        seed, restarts: as :func:`kmeans_clusters`.

    Returns:
        (B, *spatial) label maps.
    """
    img = np.asarray(torch.as_tensor(image).float().cpu())
    tgt = np.asarray(torch.as_tensor(target).cpu())
    tgt = tgt[:, 0] if tgt.ndim == img.ndim else tgt
    img = img if img.ndim == tgt.ndim + 1 else img[:, None]
    clusters = kmeans_clusters(img, num_labels, seed, restarts)
    return np.stack([hungarian_match(clusters[b], tgt[b], num_labels) for b in range(img.shape[0])])


class IntensityKMeans(torch.nn.Module):
    """The k-means-on-intensity reference, a parameter-free "network": k-means of every voxel's own intensities.

    The one implementation of the no-learning baseline of unsupervised segmentation, reached two ways:

    - ``forward(x)``: (B, C, *spatial) images -> one-hot cluster maps (B, ``num_clusters``, *spatial)
      (:func:`kmeans_clusters` per image, best of ``restarts``), so the baseline runs through the same
      MONAI evaluator and post-processing as the learnt models (``anatomical_prior_seg``'s
      ``kmeans_evaluator``). Cluster ids are arbitrary; scoring them needs a matching to the labels
      (the Hungarian matching, e.g. :class:`monai_genvq.apps.anatomical_prior.HungarianMatchd`),
      which uses the ground truth.
    - ``embed_volume(volume)``: the per-voxel features (C, *spatial), for
      :class:`~monai_genvq.apps.hyperbolic.HyperbolicSegmentation`, which clusters them like any flat
      embedding (``curvature = 0``: Euclidean k-means with k = the classes of each level, Hungarian
      Dice): the ``intensity`` column of the hyperbolic bundles (``intensity.json``).

    The features are the input's channels, each smoothed by a Gaussian of ``sigma`` voxels over the
    spatial axes (edges extended, not zero-padded); ``sigma = 0`` clusters the raw intensities.

    Args:
        num_clusters: k of ``forward`` (``embed_volume``'s callers choose their own k).
        seed: k-means seed (``random_state``).
        restarts: k-means++ starts per image in ``forward`` (``n_init``).
        sigma: standard deviation of the Gaussian in voxels; 0: raw intensities.
        spatial_dims: number of spatial dimensions; when given, ``embed_volume`` checks its input
            ((C, *spatial) or (B, C, *spatial)). None: every axis after the channel one is spatial.

    Example:
        >>> IntensityKMeans(2)(torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])).shape
        torch.Size([1, 2, 1, 4])
        >>> IntensityKMeans(sigma=1.0, spatial_dims=3).embed_volume(torch.rand(1, 8, 8, 8)).shape
        torch.Size([1, 8, 8, 8])
    """

    curvature = 0.0
    """A flat embedding: :class:`~monai_genvq.apps.hyperbolic.HyperbolicSegmentation` clusters it with Euclidean k-means."""

    def __init__(
        self,
        num_clusters: int = 4,
        seed: int = 0,
        restarts: int = 5,
        sigma: float = 0.0,
        spatial_dims: int | None = None,
    ) -> None:
        super().__init__()
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0 voxels, got {sigma}")
        self.num_clusters, self.seed, self.restarts = int(num_clusters), int(seed), int(restarts)
        self.sigma = float(sigma)
        self.spatial_dims = None if spatial_dims is None else int(spatial_dims)

    @property
    def embedding_description(self) -> str:
        """What one voxel's embedding is (``metrics.json`` and figure titles say it)."""
        return (
            f"input intensities per voxel, Gaussian-smoothed (σ = {self.sigma:g} voxels)"
            if self.sigma
            else "input intensities per voxel"
        )

    def _features(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        """Smooth the spatial axes (all after the first ``lead`` ones) of finite intensities."""
        if not torch.isfinite(x).all():
            raise ValueError("volume contains NaN or infinite voxels")
        if self.sigma == 0:
            return x.float()
        sigmas = (0.0,) * lead + (self.sigma,) * (x.ndim - lead)
        smoothed = ndimage.gaussian_filter(x.detach().float().cpu().numpy(), sigmas, mode="nearest")
        return torch.as_tensor(np.ascontiguousarray(smoothed), device=x.device)

    def embed_volume(
        self, volume: torch.Tensor, slab: int = 16, padding_mode: str = "replicate", zoom: float = 1.0
    ) -> torch.Tensor:
        """(C, *spatial) or (B, C, *spatial) volume -> the per-voxel features, same shape.

        ``slab``, ``padding_mode`` and ``zoom`` are accepted for the interface of
        :meth:`~monai_genvq.apps.hyperbolic.HyperbolicVAE.embed_volume` and ignored: the features are
        always at the input's resolution.
        """
        volume = torch.as_tensor(volume)
        if self.spatial_dims is not None and volume.ndim not in (self.spatial_dims + 1, self.spatial_dims + 2):
            raise ValueError(
                f"expected a (C, {', '.join('*' * self.spatial_dims)}) volume (or a batch of them), "
                f"got shape {tuple(volume.shape)}"
            )
        if volume.ndim < 2:
            raise ValueError(f"expected a channel-first volume (C, *spatial), got shape {tuple(volume.shape)}")
        batched = self.spatial_dims is not None and volume.ndim == self.spatial_dims + 2
        return self._features(volume, 2 if batched else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) images -> (B, num_clusters, *spatial) one-hot k-means cluster maps."""
        feats = self._features(torch.as_tensor(x), 2)
        ids = torch.as_tensor(kmeans_clusters(feats, self.num_clusters, self.seed, self.restarts), device=x.device)
        return torch.nn.functional.one_hot(ids, self.num_clusters).movedim(-1, 1).float()
