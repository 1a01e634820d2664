"""BUAN bundle shape similarity (Chandio et al. 2020) for batches of streamline bundles.

BUAN shape similarity (Chandio et al. 2020, "Bundle analytics, a computational framework for
investigating the shapes and profiles of brain pathways across populations", Sci Rep 10:17149)
clusters each bundle with QuickBundlesX, then scores the two sets of centroids with the bundle
adjacency of Garyfallidis et al. 2012 ("QuickBundles, a method for tractography simplification",
Front Neurosci 6:175): the fraction of streamlines of each bundle whose nearest streamline of the
other bundle lies closer than ``threshold`` (MDF distance), averaged over the two directions.
The reference is dipy's ``bundle_shape_similarity``; :func:`buan_dipy` calls it.

``threshold`` is in coordinate units: dipy's default 6 is millimetres; the VQ-Diff paper's 0.05 is
in the [-1, 1] space of one global min/max normalisation. Always report the space with the value.

With ``clust_thr=[0]`` (the VQ-Diff setting) QuickBundlesX keeps every streamline as its own
cluster, so BUAN is the bundle adjacency of the streamlines resampled twice to 20 points (once
before clustering, once more in ``ba_analysis``). :func:`bundle_adjacency_batched` computes that
for a whole batch at once, reproducing dipy's arithmetic step by step:

* resampling: float64 arc lengths, target positions by repeated addition of the step, float32
  interpolation when the streamline is float32 (as ``set_number_of_points``);
* clustering casts the resampled streamlines to float32 (the centroids are those float32 copies);
* MDF (``bundles_distances_mdf``): float32 differences and squared norms, float64 square roots
  summed in point order, float32 mean, minimum of the direct and the flipped orientation;
* strict ``distance < threshold``; score ``0.5 * (A + B)``.

Distances are first computed in float32 for every pair (within 2e-6 relative of dipy's); only
those in a narrow band around the threshold are recomputed with dipy's exact arithmetic. Exact
square roots go through numpy on the CPU because torch's vectorised CPU ``sqrt`` is not
correctly rounded (1 ulp off for about 1 value in 150).

Two dipy details that the random visiting order of QuickBundlesX does not change, except at
the level of float32 rounding:

* Orientation: a new cluster takes the flip flag of the nearest existing cluster, so some
  centroids are stored reversed. A reversed centroid is resampled from its other end, which
  moves distances by a few float32 ulps. Inside the band every decision is checked for the four
  orientations of the pair; the rare sample whose score does depend on them (a distance within
  about 1e-6 of the threshold) is scored by dipy itself, with the same seed.
* Duplicates: a streamline joins a cluster when their distance is ``<= 0``, so streamlines
  whose resampled float32 coordinates are identical, directly or reversed, collapse into fewer
  centroids (groups padded by drawing streamlines again contain such copies). The centroid is a
  float32 running mean that can drift from the third copy on, which splits larger groups; the
  merge and the drift are reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

from monai_genvq.utils.tables import mean_std

__all__ = [
    "BUANMetric",
    "buan_dipy",
    "bundle_adjacency_batched",
    "resample_streamlines_batched",
    "summarize_buan",
]

#: dipy's ``cluster_bundle`` clusters at most this many randomly selected streamlines.
_DIPY_SELECT_RANDOMLY = 500000
#: elements of one (chunk, S, 2S) block in the MDF kernel; keeps the working set in cache.
_BLOCK_ELEMENTS = 2**17
#: streamlines resampled at once, for the same reason.
_RESAMPLE_CHUNK = 4096
#: relative band around the threshold in which float32 screening distances are recomputed
#: exactly; 50x the worst-case float32 error (2e-6) of :func:`_mdf_approx`.
_APPROX_MARGIN = 1e-4
#: band, relative to the largest coordinate, for centroid orientation: reversing a centroid
#: moves its resampled points by about 1 float32 ulp (2^-23 relative); 2^-16 is ~35x that.
_ORIENTATION_MARGIN = 2.0**-16
_IMPLEMENTATIONS = ("auto", "batched", "dipy")
_DUPLICATE_POLICIES = ("dipy", "raise", "keep")


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(
            f"BUAN threshold must be a positive finite distance in coordinate units "
            f"(e.g. 0.05 in normalised [-1, 1] space, 6 in mm); got {threshold!r}."
        )
    return value


def _is_zero_clustering(clust_thr: Sequence[float]) -> bool:
    return [float(c) for c in clust_thr] == [0.0]


def _as_streamline_list(bundle: Any, name: str) -> list[np.ndarray]:
    if isinstance(bundle, torch.Tensor):
        bundle = bundle.detach().cpu().numpy()
    if isinstance(bundle, np.ndarray):
        if bundle.ndim != 3 or bundle.shape[-1] != 3:
            raise ValueError(f"{name} must be shaped (streamlines, points, 3); got {bundle.shape}.")
        return list(bundle)
    streamlines = [np.asarray(s) for s in bundle]
    for i, s in enumerate(streamlines):
        if s.ndim != 2 or s.shape[-1] != 3:
            raise ValueError(f"{name}[{i}] must be shaped (points, 3); got {s.shape}.")
    return streamlines


def buan_dipy(
    bundle1: Any, bundle2: Any, *, threshold: float, clust_thr: Sequence[float] = (0,), seed: int = 0
) -> float:
    """BUAN shape similarity computed by dipy (the reference implementation).

    Calls ``dipy.segment.bundles.bundle_shape_similarity(bundle1, bundle2,
    np.random.default_rng(seed), clust_thr=clust_thr, threshold=threshold)`` (Chandio et al.
    2020; bundle adjacency of Garyfallidis et al. 2012).

    Args:
        bundle1: first bundle (the reconstruction): a list of (P, 3) arrays or an (S, P, 3)
            array/tensor. Its dtype is kept (float32 and float64 round differently in dipy).
        bundle2: second bundle (the reference), same forms.
        threshold: bundle adjacency threshold in coordinate units (6 for mm as in dipy's
            default; 0.05 in the normalised [-1, 1] space of the VQ-Diff paper).
        clust_thr: QuickBundlesX thresholds; ``(0,)`` keeps every streamline as its own cluster.
        seed: seed of the random generator used for dipy's streamline selection order.

    Returns:
        The BUAN score in [0, 1]; 0.0 when either bundle is empty (dipy's convention).

    Raises:
        ValueError: non-positive threshold, badly shaped streamlines or non-finite coordinates.

    Example:
        >>> import numpy as np
        >>> line = np.stack([np.linspace(0, 1, 64), np.zeros(64), np.zeros(64)], 1)
        >>> buan_dipy([line, line + [0, 1, 0]], [line, line + [0, 1, 0]], threshold=0.05)
        1.0
    """
    from dipy.segment.bundles import bundle_shape_similarity

    threshold = _check_threshold(threshold)
    b1 = _as_streamline_list(bundle1, "bundle1")
    b2 = _as_streamline_list(bundle2, "bundle2")
    for name, bundle in (("bundle1", b1), ("bundle2", b2)):
        if any(not np.all(np.isfinite(s)) for s in bundle):
            raise ValueError(f"{name} contains NaN or infinite coordinates.")
    value = bundle_shape_similarity(b1, b2, np.random.default_rng(seed), clust_thr=list(clust_thr), threshold=threshold)
    return float(value)


def _sqrt_rn(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float64 square root of ``x`` (float32 or float64), as C's ``sqrt``."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sqrt(x.numpy(), dtype=np.float64))
    return torch.sqrt(x.double())  # CUDA's double sqrt is IEEE round-to-nearest


def resample_streamlines_batched(x: torch.Tensor, n_points: int) -> torch.Tensor:
    """Resample streamlines to ``n_points`` equally spaced points along their arc length.

    Bit-for-bit the same as ``dipy.tracking.streamline.set_number_of_points`` for float32 and
    float64 input, vectorised over all streamlines (the only Python loops run over points).
    Float32 input is interpolated with float32 differences as dipy does; other non-float64
    floating dtypes are computed as float32. A streamline of zero length becomes copies of its
    first point (dipy leaves those outputs uninitialised).

    Args:
        x: streamlines shaped (..., P, 3) with P >= 2.
        n_points: number of output points, >= 2.

    Returns:
        Tensor shaped (..., n_points, 3), float64 for float64 input, float32 otherwise.

    Raises:
        ValueError: fewer than 2 input or output points, last dimension not 3, not floating point.

    Example:
        >>> line = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]])
        >>> resample_streamlines_batched(line, 4)[:, 0]
        tensor([0., 1., 2., 3.])
    """
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2; got {n_points}.")
    if x.ndim < 2 or x.shape[-1] != 3 or x.shape[-2] < 2:
        raise ValueError(f"streamlines must be shaped (..., points >= 2, 3); got {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise ValueError(f"streamline coordinates must be floating point; got {x.dtype}.")
    lead, n_in = x.shape[:-2], x.shape[-2]
    coords = x.reshape(-1, n_in, 3).permute(2, 0, 1)
    return _resample_planes(coords, n_points).permute(1, 2, 0).reshape(*lead, n_points, 3)


def _resample_planes(coords: torch.Tensor, n_points: int) -> torch.Tensor:
    """:func:`resample_streamlines_batched` on coordinate planes (3, M, P) -> (3, M, n_points)."""
    if coords.shape[1] > _RESAMPLE_CHUNK:  # chunks keep the float64 temporaries in cache
        parts = torch.split(coords, _RESAMPLE_CHUNK, dim=1)
        return torch.cat([_resample_planes(part, n_points) for part in parts], dim=1)
    dtype = torch.float64 if coords.dtype == torch.float64 else torch.float32
    coords = coords.to(dtype).contiguous()
    n_in = coords.shape[-1]

    # Segment lengths: differences in the input dtype, squares summed x, y, z in float64.
    d = (coords[..., 1:] - coords[..., :-1]).double()
    seg = _sqrt_rn(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    arc = torch.cat([torch.zeros_like(seg[:, :1]), _running_sum(seg)], dim=1)
    step = arc[:, -1] / (n_points - 1)
    targets = [torch.zeros_like(step)]
    for _ in range(n_points - 2):  # positions by repeated addition, not m * step
        targets.append(targets[-1] + step)
    t = torch.stack(targets, dim=1)

    # dipy walks the polyline; the segment it interpolates ends at the first arc length >= t.
    k = torch.searchsorted(arc, t, side="left").clamp_(max=n_in - 1)
    k_prev = (k - 1).clamp_(min=0)
    arc_k = arc.gather(1, k)
    ratio = 1 - ((arc_k - t) / (arc_k - arc.gather(1, k_prev)))
    p_k = coords.gather(2, k.expand(3, -1, -1))
    p_prev = coords.gather(2, k_prev.expand(3, -1, -1))
    interp = (p_prev.double() + ratio * (p_k - p_prev).double()).to(dtype)
    out = torch.where(arc_k == t, p_k, interp)
    return torch.cat([out, coords[..., -1:]], dim=2)


def _running_sum(x: torch.Tensor) -> torch.Tensor:
    """Left-to-right cumulative sum over the last dim, rounded after every addition as in C."""
    if x.device.type == "cpu":
        return torch.cumsum(x, dim=-1)  # sequential on the CPU (checked against dipy in the tests)
    cols = [x[..., 0]]
    for i in range(1, x.shape[-1]):
        cols.append(cols[-1] + x[..., i])
    return torch.stack(cols, dim=-1)


def _mdf_approx(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MDF distances of a chunk of bundle pairs in float32, within 2e-6 (relative) of dipy's.

    dipy (``bundles_distances_mdf``) takes float64 square roots of float32 squared norms, sums
    them in float64 and rounds the mean to float32; here roots and sum are float32, which adds
    at most ~(P + 8) float32 roundings (relative 2^-24 each) to the sum of P non-negative terms.

    Args:
        a: (C, P, 3, S1) float32 points, b: (C, P, 3, S2) float32 points.

    Returns:
        (C, S1, S2) float32, the minimum of the direct and flipped mean point distances.
    """
    n_pts, s2 = a.shape[1], b.shape[-1]
    both = torch.cat([b, b.flip(1)], dim=-1)  # direct and flipped orientation side by side
    shape = (a.shape[0], a.shape[-1], both.shape[-1])
    total = torch.zeros(shape, dtype=torch.float32, device=a.device)
    diff = torch.empty((a.shape[0], 3, *shape[1:]), dtype=torch.float32, device=a.device)
    sq = torch.empty(shape, dtype=torch.float32, device=a.device)
    for p in range(n_pts):
        torch.sub(a[:, p, :, :, None], both[:, p, :, None, :], out=diff)
        diff.mul_(diff)
        torch.add(diff[:, 0], diff[:, 1], out=sq)
        total.add_(sq.add_(diff[:, 2]).sqrt_())
    total /= n_pts
    return torch.minimum(total[..., :s2], total[..., s2:])


def _mdf_exact(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dipy's ``bundles_distances_mdf`` arithmetic, bit for bit, for streamline pairs.

    Float32 differences and squared norms (x, y, z in order), float64 square roots summed in
    point order, float32 mean, minimum of the direct and flipped orientation.

    Args:
        a: (N, P, 3) float32, b: (N, P, 3) float32; row n of ``a`` is compared with row n of ``b``.

    Returns:
        (N,) float32 distances.
    """
    means = []
    for other in (b, b.flip(1)):
        d = a - other
        roots = _sqrt_rn(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2])
        means.append(_running_sum(roots)[:, -1].float() / a.shape[1])
    return torch.minimum(*means)


def _exact_decisions(
    feat_a: torch.Tensor, pts_a: torch.Tensor, feat_b: torch.Tensor, pts_b: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``MDF < threshold`` for streamline pairs, and whether centroid orientation matters.

    dipy may store any centroid reversed (see :func:`_adjacency_from_points`); its second
    resampling then starts from the other end, which moves the distance by float32 ulps. The
    decision is computed for all four orientations of the pair.

    Args:
        feat_a, feat_b: (N, n, 3) float32 centroids; pts_a, pts_b: (N, n, 3) their resampling.

    Returns:
        (N,) decisions for the stored orientation and (N,) flags: True where all four agree.
    """
    rev_a = resample_streamlines_batched(feat_a.flip(1), feat_a.shape[1])
    rev_b = resample_streamlines_batched(feat_b.flip(1), feat_b.shape[1])
    votes = torch.stack([_mdf_exact(x, y) for x in (pts_a, rev_a) for y in (pts_b, rev_b)]).double() < threshold
    return votes[0], (votes == votes[0]).all(dim=0)


def _adjacency_from_points(
    feat_a: torch.Tensor,
    pts_a: torch.Tensor,
    valid_a: torch.Tensor,
    feat_b: torch.Tensor,
    pts_b: torch.Tensor,
    valid_b: torch.Tensor,
    threshold: float,
) -> tuple[torch.Tensor, list[int]]:
    """Bundle adjacency of two batches of centroids.

    Distances are screened with :func:`_mdf_approx`. Entries in a band around the threshold are
    decided exactly by :func:`_exact_decisions`: the band covers the float32 screening error and
    the effect of centroid orientation (dipy opens a new QuickBundlesX cluster with the flip flag
    of the nearest existing one, so some centroids are stored reversed, depending on its random
    visiting order); that effect is a few float32 ulps of the coordinates.

    Args:
        feat_a: (B, S1, n, 3) float32 centroids (QuickBundlesX features), pts_a their second
            resampling (B, S1, n, 3), valid_a (B, S1) the slots in use; same for b.
        threshold: MDF threshold (strict ``<``).

    Returns:
        (B,) float64 scores, and the samples whose score depends on dipy's orientation choices.
    """
    n_batch, s1, s2 = pts_a.shape[0], pts_a.shape[1], pts_b.shape[1]
    a_t = pts_a.permute(0, 2, 3, 1).contiguous()  # (B, P, 3, S): contiguous rows per coordinate
    b_t = pts_b.permute(0, 2, 3, 1).contiguous()
    scale = max(float(pts_a.abs().max()), float(pts_b.abs().max()))
    band = threshold * _APPROX_MARGIN + scale * _ORIENTATION_MARGIN
    low, high = threshold - band, threshold + band
    chunk = max(1, _BLOCK_ELEMENTS // (s1 * 2 * s2))
    if pts_a.device.type != "cpu":
        chunk *= 64
    pair_valid = valid_a[:, :, None] & valid_b[:, None, :]
    close, unsure = [], []
    for start in range(0, n_batch, chunk):
        dist = _mdf_approx(a_t[start : start + chunk], b_t[start : start + chunk]).double()
        close.append(dist < low)
        unsure.append((dist >= low) & (dist <= high))
    close_all = torch.cat(close) & pair_valid
    i, j, k = (torch.cat(unsure) & pair_valid).nonzero(as_tuple=True)
    undecided: list[int] = []
    if len(i):
        decided, agree = _exact_decisions(feat_a[i, j], pts_a[i, j], feat_b[i, k], pts_b[i, k], threshold)
        close_all[i, j, k] = decided
        undecided = i[~agree].unique().tolist()
    frac_a = close_all.any(dim=2).sum(dim=1).double() / valid_a.sum(dim=1)
    frac_b = close_all.any(dim=1).sum(dim=1).double() / valid_b.sum(dim=1)
    return 0.5 * (frac_a + frac_b), undecided


def _symmetric_hash(feat: torch.Tensor) -> torch.Tensor:
    """(B, S) float64 hash of streamlines (B, S, P, 3), equal for identical or reversed copies.

    Each term pairs point p with point P-1-p (float addition commutes) and the terms are summed
    in a fixed order, so copies hash identically; different streamlines rarely collide.
    """
    n_batch, n_str, n_pts, _ = feat.shape
    f = feat.double() + 0.0  # -0.0 -> 0.0, as dipy's distance sees them
    half = (n_pts + 1) // 2
    w = torch.linspace(1.0, 2.0, half * 3, dtype=torch.float64, device=feat.device).reshape(half, 3)
    terms = (f[:, :, :half] * w + f.flip(2)[:, :, :half] * w).reshape(n_batch, n_str, -1)
    h = terms[..., 0]
    for i in range(1, terms.shape[-1]):
        h = h + terms[..., i]
    return h


def _quickbundles_zero(items: list[np.ndarray]) -> list[np.ndarray]:
    """Centroids of dipy's QuickBundlesX with threshold 0 over float32 items (P, 3).

    An item joins the cluster whose centroid equals it (MDF 0 <= threshold 0); the centroid is
    dipy's float32 running mean ``((c * C) + x) / (C + 1)``, which can drift from ``x`` from the
    third member on, after which further copies open a new cluster.
    """
    centroids: list[np.ndarray] = []
    sizes: list[int] = []
    for item in items:
        for j, c in enumerate(centroids):
            if np.array_equal(c, item):
                centroids[j] = ((c * np.float32(sizes[j])) + item) / np.float32(sizes[j] + 1)
                sizes[j] += 1
                break
        else:
            centroids.append(item.copy())
            sizes.append(1)
    return centroids


def _merge_duplicates(first: torch.Tensor, valid: torch.Tensor, raise_on_duplicates: bool) -> list[int]:
    """Apply dipy's ``qbx_and_merge(clust_thr=[0])`` to groups of identical streamlines, in place.

    ``first`` (B, S, P, 3) float32 holds the QuickBundlesX features. Streamlines identical or
    identical once reversed (MDF 0) join one cluster; each group of k is replaced by the
    centroids dipy keeps for it (one for k <= 2; from k >= 3 the float32 running mean may drift
    and split the group), written into the group's first slots, with ``valid`` (B, S) cleared
    for the others. Distinct streamlines never merge (distance > 0). The orientation dipy gives
    each centroid is left to :func:`_adjacency_from_points`.

    Returns:
        Samples with a hash collision that this does not resolve, to be scored by dipy.

    Raises:
        ValueError: ``raise_on_duplicates`` and some sample holds identical or reversed copies.
    """
    if first.shape[1] < 2:
        return []
    h, order = _symmetric_hash(first).sort(dim=1, stable=True)
    same = h[:, 1:] == h[:, :-1]
    if not bool(same.any()):
        return []
    f = first.gather(1, order[:, :, None, None].expand_as(first)) + 0.0
    identical = (f[:, 1:] == f[:, :-1]).flatten(2).all(2)
    copy = same & (identical | (f[:, 1:] == f[:, :-1].flip(2)).flatten(2).all(2))
    if raise_on_duplicates and bool(copy.any()):
        raise ValueError(
            f"samples {copy.any(1).nonzero().flatten().tolist()} hold streamlines that are identical (or reversed "
            "copies) after resampling; dipy's QuickBundlesX merges them. Use duplicates='dipy' for dipy's value "
            "or 'keep' to count each."
        )
    unresolved = (same & ~copy).any(1)
    # every copy after the first of its run of identical streamlines (sorted order) is dropped
    valid &= ~torch.zeros_like(valid).scatter_(1, order[:, 1:], copy)
    # runs of 3+ copies: dipy's float32 running mean can drift from the third copy on
    pad = torch.zeros_like(copy[:, :1])
    prev, nxt = torch.cat([pad, copy[:, :-1]], 1), torch.cat([copy[:, 1:], pad], 1)
    b3, p3 = (copy & nxt & ~prev & ~torch.cat([nxt[:, 1:], pad], 1) & ~unresolved[:, None]).nonzero(as_tuple=True)
    slot = order[b3, p3]  # exactly 3 copies: one centroid, their float32 running mean
    first[b3, slot] = ((first[b3, slot] * np.float32(2)) + first[b3, slot]) / np.float32(3)
    links, order_np = copy.cpu().numpy(), order.cpu().numpy()
    longer = (copy & nxt & torch.cat([nxt[:, 1:], pad], 1)).any(1) & ~unresolved
    for b in longer.nonzero().flatten().tolist():  # 4+ copies: rare, simulated step by step
        edges = np.diff(np.concatenate([[0], links[b].astype(np.int8), [0]]))
        for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if stop - start < 3:
                continue
            idx = torch.from_numpy(order_np[b, start : stop + 1]).to(first.device)
            # level one (QuickBundlesX), then the merge pass over its centroids
            kept = _quickbundles_zero(_quickbundles_zero([first[b, idx[0]].cpu().numpy()] * len(idx)))
            valid[b, idx[: len(kept)]] = True
            first[b, idx[: len(kept)]] = torch.from_numpy(np.stack(kept)).to(first.device)
    return unresolved.nonzero().flatten().tolist()


def _check_bundle_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    for name, t in (("y_pred", pred), ("y", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor shaped (B, 3, S, P); got {type(t).__name__}.")
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(
                f"{name} must be a batch of bundles shaped (B, 3, S, P) = (batch, xyz, streamlines, "
                f"points per streamline); got shape {tuple(t.shape)}."
            )
        if not t.is_floating_point():
            raise ValueError(f"{name} coordinates must be floating point; got {t.dtype}.")
        if t.shape[3] < 2:
            raise ValueError(f"{name} streamlines need at least 2 points; got shape {tuple(t.shape)}.")
    if pred.shape != target.shape:
        raise ValueError(
            f"y_pred and y must have the same shape (B, 3, S, P); got {tuple(pred.shape)} and {tuple(target.shape)}."
        )
    for name, t in (("y_pred", pred), ("y", target)):
        # a finite sum proves finite entries; the full check only runs when it is not
        if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite coordinates; BUAN needs finite streamlines.")


def bundle_adjacency_batched(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float,
    n_points: int = 20,
    duplicates: str = "dipy",
    seed: int = 0,
) -> torch.Tensor:
    """Exact batched BUAN with ``clust_thr=[0]``: bundle adjacency of twice-resampled bundles.

    Equals ``buan_dipy(pred[b], target[b], threshold=threshold, clust_thr=(0,), seed=seed)``
    for every sample (Chandio et al. 2020 BUAN; bundle adjacency of Garyfallidis et al. 2012):
    both bundles are resampled to ``n_points`` points and cast to float32 (the QuickBundlesX
    centroids: one per streamline, identical copies merged as dipy merges them), resampled
    again (dipy's ``ba_analysis``); MDF distances (minimum over the two orientations) below
    ``threshold`` (strict) give A, the fraction of ``pred`` centroids with a close ``target``
    centroid, and B the converse; the score is 0.5 * (A + B). A sample with a distance so close
    to the threshold that dipy's random choice of centroid orientations decides it is scored by
    :func:`buan_dipy` (rare: about 1e-6 relative; see the module notes). Besides the resampled
    bundles, memory is a (B, S, S) boolean matrix and one (chunk, S, 2S) block of distances.

    Args:
        pred: reconstructed bundles (B, 3, S, P) (the first bundle in dipy's call).
        target: reference bundles (B, 3, S, P).
        threshold: MDF threshold in coordinate units (0.05 in the normalised [-1, 1] space of
            the VQ-Diff paper; 6 is dipy's default for mm).
        n_points: resampling length (dipy uses 20; with other values there is no dipy
            counterpart and orientation-dependent decisions keep the stored orientation).
        duplicates: streamlines identical after resampling, directly or reversed (e.g. groups
            padded by drawing streamlines again): ``"dipy"`` merges them as dipy does;
            ``"raise"`` raises; ``"keep"`` counts every streamline (plain bundle adjacency,
            which differs from dipy when there are copies).
        seed: seed of dipy's random generator, used by the :func:`buan_dipy` fallback.

    Returns:
        (B,) float64 tensor of scores in [0, 1] on the input device (0 for empty bundles).

    Raises:
        ValueError: bad shapes, non-finite coordinates, threshold <= 0, an unknown
            ``duplicates`` policy, duplicates with ``"raise"``, or more streamlines than dipy
            clusters (500000).

    Example:
        >>> t = torch.linspace(-1, 1, 64)
        >>> line = torch.stack([t, 0 * t, 0 * t])  # (3, P)
        >>> bundle = torch.stack([line + 0.2 * i for i in range(8)], 1)[None]  # (1, 3, 8, 64)
        >>> bundle_adjacency_batched(bundle, bundle, threshold=0.05)
        tensor([1.], dtype=torch.float64)
    """
    threshold = _check_threshold(threshold)
    if duplicates not in _DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {_DUPLICATE_POLICIES}; got {duplicates!r}.")
    _check_bundle_pair(pred, target)
    pred, target = pred.detach(), target.detach()
    n_batch, _, n_str, _ = pred.shape
    if n_str == 0:
        return torch.zeros(n_batch, dtype=torch.float64, device=pred.device)
    if n_str > _DIPY_SELECT_RANDOMLY:
        raise ValueError(
            f"dipy clusters only {_DIPY_SELECT_RANDOMLY} randomly chosen streamlines of larger bundles; use buan_dipy."
        )

    firsts, valids, fallback = [], [], set()
    for x in (pred, target):
        first = _resample_planes(x.transpose(0, 1).reshape(3, n_batch * n_str, -1), n_points).float()
        first = first.reshape(3, n_batch, n_str, n_points).permute(1, 2, 3, 0).contiguous()  # (B, S, n, 3)
        valid = torch.ones(n_batch, n_str, dtype=torch.bool, device=x.device)
        if duplicates != "keep":
            fallback.update(_merge_duplicates(first, valid, raise_on_duplicates=duplicates == "raise"))
        firsts.append(first)
        valids.append(valid)

    def points(first: torch.Tensor) -> torch.Tensor:  # dipy's ba_analysis resamples the centroids again
        planes = first.permute(3, 0, 1, 2).reshape(3, n_batch * n_str, n_points)
        return _resample_planes(planes, n_points).reshape(3, n_batch, n_str, n_points).permute(1, 2, 3, 0)

    scores, undecided = _adjacency_from_points(
        firsts[0], points(firsts[0]), valids[0], firsts[1], points(firsts[1]), valids[1], threshold
    )
    if n_points == 20:
        fallback.update(undecided)
    elif fallback:
        raise ValueError("resolving a streamline hash collision needs dipy, hence n_points=20 (dipy's length).")
    for i in sorted(fallback):
        scores[i] = buan_dipy(
            pred[i].permute(1, 2, 0).cpu().numpy(),
            target[i].permute(1, 2, 0).cpu().numpy(),
            threshold=threshold,
            clust_thr=(0,),
            seed=seed,
        )
    return scores


class BUANMetric(CumulativeIterationMetric):
    """BUAN bundle shape similarity between reconstructed and reference bundles.

    Chandio et al. 2020 (BUAN), built on the bundle adjacency of Garyfallidis et al. 2012, as
    dipy's ``bundle_shape_similarity(y_pred, y, rng, clust_thr, threshold)``. Inputs are
    batch-first tensors (B, 3, S, P) (xyz channels, S streamlines, P points) or lists of
    channel-first (3, S, P) tensors. Each iteration buffers one score per sample, shaped (B, 1);
    :meth:`aggregate` reduces them (mean by default) and ``get_buffer()`` returns them all.

    ``threshold`` is in the units of the coordinates: 0.05 in the normalised [-1, 1] space (the
    VQ-Diff paper), 6 for millimetres (dipy's default). ``space`` records which, for reports.

    Args:
        threshold: bundle adjacency (MDF) threshold in coordinate units, > 0.
        clust_thr: QuickBundlesX thresholds; ``(0,)`` (no clustering) allows the exact batched path.
        implementation: ``"batched"`` (:func:`bundle_adjacency_batched`; only for
            ``clust_thr=(0,)``), ``"dipy"`` (:func:`buan_dipy` per sample) or ``"auto"``
            (batched when possible). Both give identical values.
        seed: seed of dipy's random generator (fresh per sample, so scores do not depend on batching).
        space: descriptive label of the coordinate space, e.g. ``"normalised"`` or ``"mm"``.
        reduction: MONAI reduction mode for :meth:`aggregate` (``"mean"``, ``"none"``, ...).
        get_not_nans: whether :meth:`aggregate` also returns the count of non-NaN scores.

    Raises:
        ValueError: threshold <= 0, unknown implementation, or ``"batched"`` with clustering.

    Example:
        >>> metric = BUANMetric(threshold=0.05, space="normalised")
        >>> t = torch.linspace(-1, 1, 64)
        >>> bundle = torch.stack([torch.stack([t, 0 * t + 0.2 * i, 0 * t]) for i in range(8)], 1)[None]
        >>> _ = metric(bundle, bundle)
        >>> metric.aggregate().item()
        1.0
    """

    def __init__(
        self,
        threshold: float = 0.05,
        clust_thr: Sequence[float] = (0,),
        implementation: str = "auto",
        seed: int = 0,
        space: str = "normalised",
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__()
        self.threshold = _check_threshold(threshold)
        self.clust_thr = tuple(float(c) for c in clust_thr)
        if not self.clust_thr or any(c < 0 for c in self.clust_thr):
            raise ValueError(f"clust_thr must be a non-empty list of distances >= 0; got {clust_thr!r}.")
        if implementation not in _IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {_IMPLEMENTATIONS}; got {implementation!r}.")
        batched_ok = _is_zero_clustering(self.clust_thr)
        if implementation == "batched" and not batched_ok:
            raise ValueError(
                f"implementation='batched' is exact only for clust_thr=(0,) (no clustering); got {clust_thr!r}. "
                "Use implementation='dipy' or 'auto'."
            )
        if implementation == "auto":
            implementation = "batched" if batched_ok else "dipy"
        self.implementation = implementation
        self.seed = seed
        self.space = space
        self.reduction = reduction
        self.get_not_nans = get_not_nans

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        if y is None:
            raise ValueError("BUANMetric needs both y_pred (reconstruction) and y (reference bundle).")
        if self.implementation == "batched":
            scores = bundle_adjacency_batched(y_pred, y, threshold=self.threshold, duplicates="dipy", seed=self.seed)
        else:
            _check_bundle_pair(y_pred, y)
            values = [
                buan_dipy(
                    p.permute(1, 2, 0).cpu().numpy(),
                    t.permute(1, 2, 0).cpu().numpy(),
                    threshold=self.threshold,
                    clust_thr=self.clust_thr,
                    seed=self.seed,
                )
                for p, t in zip(y_pred, y)
            ]
            scores = torch.tensor(values, dtype=torch.float64, device=y_pred.device)
        return scores.unsqueeze(1)

    def _compute_list(self, y_pred: Any, y: Any = None, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        # Decollated engine outputs: stack same-shaped (3, S, P) items so they run as one batch.
        if y is not None and len(y_pred) == len(y) and len(y_pred) > 0:
            items = list(y_pred) + list(y)
            if all(isinstance(t, torch.Tensor) and t.shape == items[0].shape for t in items):
                return self._compute_tensor(torch.stack(list(y_pred)).detach(), torch.stack(list(y)).detach())
        return super()._compute_list(y_pred, y, **kwargs)  # type: ignore[return-value]

    def aggregate(
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reduce the buffered per-sample scores (mean by default).

        Args:
            reduction: overrides ``self.reduction`` for this call.

        Returns:
            The reduced score, or ``(score, not_nans)`` when ``get_not_nans`` is True.

        Raises:
            ValueError: nothing has been buffered yet.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError("BUANMetric has no scores to aggregate; call it on some bundles first.")
        f, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f


def summarize_buan(scores: Any, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation and count of BUAN scores per bundle name, plus ``"all"``.

    The standard deviation is the population one (numpy's default, ``ddof=0``).

    Args:
        scores: per-sample scores, a (N,) or (N, 1) tensor/array or a sequence of floats
            (e.g. ``BUANMetric.get_buffer()``).
        names: the bundle name of each sample (e.g. ``"AF_L"``), length N.

    Returns:
        ``{name: {"mean": float, "std": float, "n": int}}`` for each name (sorted) and ``"all"``.

    Raises:
        ValueError: lengths differ, scores are not one per sample, or a bundle is named ``"all"``.

    Example:
        >>> summarize_buan([1.0, 0.5, 0.0], ["AF_L", "AF_L", "CST_R"])["AF_L"]
        {'mean': 0.75, 'std': 0.25, 'n': 2}
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"scores must hold one value per sample, shaped (N,) or (N, 1); got {values.shape}.")
    names = [str(n) for n in names]
    if len(names) != len(values):
        raise ValueError(f"got {len(values)} scores but {len(names)} bundle names.")
    if "all" in names:
        raise ValueError("'all' is reserved for the summary over every bundle; rename that bundle.")

    summary = {name: mean_std(values[[n == name for n in names]]) for name in sorted(set(names))}
    summary["all"] = mean_std(values)
    return summary
