"""BUAN: the batched clust_thr=[0] path must equal dipy's bundle_shape_similarity exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dipy.segment.clustering import qbx_and_merge
from dipy.tracking.streamline import set_number_of_points
from ignite.engine import Engine

from monai_genvq.apps.streamlines import (
    BUANHandler,
    BUANMetric,
    buan_dipy,
    bundle_adjacency_batched,
    resample_streamlines_batched,
    summarize_buan,
)

THR = 0.05  # the VQ-Diff paper's threshold, normalised [-1, 1] space


def smooth_bundles(rng, n, s, p=64, spread=0.05, scale=1.0):
    """n bundles (n, s, p, 3) float32 of smooth curves around a random bundle shape."""
    t = np.linspace(0.0, 1.0, p)[:, None]
    out = np.empty((n, s, p, 3))
    for b in range(n):
        shape = rng.normal(size=(4, 3)) * 0.5
        for i in range(s):
            c = shape + rng.normal(scale=spread, size=(4, 3))
            out[b, i] = c[0] + t * c[1] + t**2 * c[2] + 0.3 * np.sin(3 * t) * c[3]
    return (out * scale).astype(np.float32)


def unit_vectors(rng, shape, length):
    v = rng.normal(size=(*shape, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True) * length


def to_batch(x):
    """(n, S, P, 3) array -> (n, 3, S, P) tensor."""
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)


def dipy_scores(pred, target, threshold):
    return np.array([buan_dipy(p, t, threshold=threshold, clust_thr=(0,)) for p, t in zip(pred, target)])


def assert_batched_equals_dipy(pred, target, threshold):
    ours = bundle_adjacency_batched(to_batch(pred), to_batch(target), threshold=threshold).numpy()
    ref = dipy_scores(pred, target, threshold)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    return ref


# ---------------------------------------------------------------- resampling
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_points", [3, 20, 64])
def test_resample_equals_dipy_set_number_of_points(dtype, n_points):
    rng = np.random.default_rng(0)
    x = (np.cumsum(rng.normal(size=(40, 37, 3)), axis=1) * rng.uniform(0.01, 30, (40, 1, 1))).astype(dtype)
    x[0, 5] = x[0, 4]  # a zero-length segment
    ours = resample_streamlines_batched(torch.from_numpy(x), n_points)
    ref = np.stack(set_number_of_points(list(x), nb_points=n_points))
    assert ours.dtype == torch.from_numpy(ref).dtype
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-6)
    assert np.array_equal(ours.numpy(), ref)  # bit for bit, which exactness near the threshold needs


def test_resample_keeps_leading_dims_and_rejects_bad_input():
    x = torch.rand(2, 3, 10, 3)
    assert resample_streamlines_batched(x, 20).shape == (2, 3, 20, 3)
    with pytest.raises(ValueError, match="n_points"):
        resample_streamlines_batched(x, 1)
    with pytest.raises(ValueError, match="points >= 2"):
        resample_streamlines_batched(torch.rand(4, 1, 3), 20)


def test_mdf_kernels_against_dipy_bundles_distances_mdf():
    from dipy.tracking.distances import bundles_distances_mdf

    from monai_genvq.apps.streamlines.buan import _mdf_approx, _mdf_exact

    rng = np.random.default_rng(10)
    a = (np.cumsum(rng.normal(size=(12, 20, 3)), axis=1) * 0.05).astype(np.float32)
    b = (a[::-1] + rng.normal(scale=0.05, size=a.shape)).astype(np.float32)
    ref = bundles_distances_mdf(list(a), list(b))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    rows, cols = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    exact = _mdf_exact(ta[rows.ravel()], tb[cols.ravel()]).double().numpy().reshape(12, 12)
    assert np.array_equal(exact, ref)
    approx = _mdf_approx(ta.permute(1, 2, 0)[None], tb.permute(1, 2, 0)[None])[0].double().numpy()
    np.testing.assert_allclose(approx, ref, rtol=2e-6)


# ---------------------------------------------------------------- batched == dipy
def test_batched_equals_dipy_random_smooth():
    rng = np.random.default_rng(1)
    target = smooth_bundles(rng, 8, 64)
    pred = (target + rng.normal(scale=0.02, size=target.shape)).astype(np.float32)
    ref = assert_batched_equals_dipy(pred, target, THR)
    assert len(np.unique(ref)) > 3  # scores spread over (0, 1), not a trivial all-ones case


def test_batched_equals_dipy_near_threshold():
    # every reconstructed streamline sits at MDF ~= threshold from its input: float32 rounding
    # decides each comparison, so only dipy's exact arithmetic reproduces the scores
    rng = np.random.default_rng(2)
    target = smooth_bundles(rng, 12, 32, spread=0.3)
    pred = (target + unit_vectors(rng, target.shape[:2], THR)[:, :, None]).astype(np.float32)
    ref = assert_batched_equals_dipy(pred, target, THR)

    # sanity check of the test itself: plain float64 MDF disagrees with dipy here
    a = resample_streamlines_batched(torch.from_numpy(pred).double(), 20)
    b = resample_streamlines_batched(torch.from_numpy(target).double(), 20)
    direct = (a[:, :, None] - b[:, None]).norm(dim=-1).mean(-1)
    flipped = (a[:, :, None] - b.flip(2)[:, None]).norm(dim=-1).mean(-1)
    close = torch.minimum(direct, flipped) < THR
    naive = 0.5 * (close.any(2).double().mean(1) + close.any(1).double().mean(1))
    assert (naive.numpy() != ref).any()


def test_batched_equals_dipy_flipped_orientation():
    rng = np.random.default_rng(3)
    target = smooth_bundles(rng, 6, 48)
    pred = (target[:, :, ::-1] + rng.normal(scale=0.015, size=target.shape)).astype(np.float32)
    pred[:, ::2] = target[:, ::2] + np.float32(0.01)  # half kept in the original direction
    ref = assert_batched_equals_dipy(pred, target, THR)
    assert ref.min() > 0.5  # flipped streamlines still match: MDF takes the better orientation


def test_batched_equals_dipy_mm_scale_float64():
    rng = np.random.default_rng(4)
    target = smooth_bundles(rng, 6, 40, scale=60.0).astype(np.float64)  # a few cm long, in mm
    pred = target + rng.normal(scale=3.0, size=target.shape)
    pred[:, :10] = target[:, :10] + unit_vectors(rng, (6, 10), 6.0)[:, :, None]
    assert_batched_equals_dipy(pred, target, 6.0)


def test_batched_equals_dipy_with_duplicate_streamlines():
    # groups padded by drawing streamlines again (as group_streamlines(replacement="sample") does)
    rng = np.random.default_rng(5)
    base = smooth_bundles(rng, 6, 24, spread=0.1)
    target = np.stack([b[rng.permutation(np.concatenate([np.arange(24), rng.integers(0, 3, 8)]))] for b in base])
    pred = (target + unit_vectors(rng, target.shape[:2], 0.8 * THR)[:, :, None]).astype(np.float32)
    pred[:, 3:9] = pred[:, 2:3]  # 7 identical reconstructed streamlines
    assert_batched_equals_dipy(pred, target, THR)


def test_duplicates_merge_in_dipy_and_policies():
    t = np.linspace(0, 1, 64)
    line = np.stack([t, 0 * t, 0 * t], 1)
    near = [line + [0, 0.3 * i, 0] for i in range(3)]
    far = [line + [0, 0, 5 + i] for i in range(4)]
    pred = np.stack([near[0], near[0], near[1], near[2], *far]).astype(np.float32)  # 8, one copy
    target = np.stack([line + [0, 0.3 * i, 0] for i in range(8)]).astype(np.float32)
    clusters = qbx_and_merge(list(pred), [0], nb_pts=20, rng=np.random.default_rng(0))
    assert len(clusters) == 7  # dipy merges the two identical streamlines
    ref = buan_dipy(pred, target, threshold=THR)
    assert ref == pytest.approx(0.5 * (3 / 7 + 3 / 8))
    p, g = to_batch(pred[None]), to_batch(target[None])
    assert bundle_adjacency_batched(p, g, threshold=THR).item() == pytest.approx(ref, abs=1e-12)
    kept = bundle_adjacency_batched(p, g, threshold=THR, duplicates="keep").item()
    assert kept == pytest.approx(0.5 * (4 / 8 + 3 / 8))
    with pytest.raises(ValueError, match="identical"):
        bundle_adjacency_batched(p, g, threshold=THR, duplicates="raise")


def test_reversed_copies_merge_like_copies():
    rng = np.random.default_rng(6)
    target = smooth_bundles(rng, 2, 8, spread=0.3)
    target[:, 1] = target[:, 0, ::-1]
    target[0, 2] = target[0, 0]
    clusters = qbx_and_merge(list(target[0]), [0], nb_pts=20, rng=np.random.default_rng(0))
    assert len(clusters) == 6  # streamline 0, its reversed copy and its copy form one cluster
    pred = (target + np.float32(0.04)).astype(np.float32)
    assert_batched_equals_dipy(pred, target, THR)


def test_centroids_stored_reversed_near_threshold():
    # dipy opens a new QuickBundlesX cluster with the flip flag of the nearest existing cluster,
    # so some centroids are stored reversed (depending on its random order); that moves their
    # resampled points by float32 ulps, which decides distances lying at the threshold (with
    # this seed, ignoring orientation gets sample 1 wrong by 1/64)
    rng = np.random.default_rng(16)
    target = smooth_bundles(rng, 4, 64, p=100, spread=0.3, scale=60.0)
    pred = (target + unit_vectors(rng, target.shape[:2], 2.0)[:, :, None]).astype(np.float32)
    n_reversed = 0
    for bundle in (*pred, *target):
        features = np.stack(set_number_of_points(list(bundle), nb_points=20)).astype(np.float32)
        for c in qbx_and_merge(list(bundle), [0], nb_pts=20, rng=np.random.default_rng(0)):
            n_reversed += np.array_equal(c.centroid, features[c.indices[0]][::-1])
    assert 0 < n_reversed < 8 * 64
    assert_batched_equals_dipy(pred, target, 2.0)


def test_hash_collision_is_left_to_dipy():
    from monai_genvq.apps.streamlines.buan import _merge_duplicates

    first = torch.rand(1, 3, 20, 3)
    first[0, 1] = first[0, 0]
    first[0, 1, [0, -1]] = first[0, 0, [-1, 0]]  # same pairwise sums, so the same hash; not a copy
    valid = torch.ones(1, 3, dtype=torch.bool)
    assert _merge_duplicates(first, valid, raise_on_duplicates=True) == [0]
    assert bool(valid.all())


# ---------------------------------------------------------------- known answers
def _lines(offsets, p=64):
    t = np.linspace(0, 1, p)
    return np.stack([np.stack([t, 0 * t + y, 0 * t + z], 1) for y, z in offsets]).astype(np.float32)


def test_known_answers():
    bundle = _lines([(0.1 * i, 0.0) for i in range(6)])
    p = to_batch(bundle[None])
    assert bundle_adjacency_batched(p, p, threshold=THR).item() == 1.0
    assert bundle_adjacency_batched(p, p + 10.0, threshold=THR).item() == 0.0
    # pred lines at y = 0, 1, 2, 3; target at y = 0, 0.02, 10, 11:
    # A = 1/4 of pred lines have a target line closer than 0.05, B = 2/4 of target lines
    pred, target = _lines([(0, 0), (1, 0), (2, 0), (3, 0)]), _lines([(0, 0), (0.02, 0), (10, 0), (11, 0)])
    assert bundle_adjacency_batched(to_batch(pred[None]), to_batch(target[None]), threshold=THR).item() == 0.375
    assert buan_dipy(pred, target, threshold=THR) == 0.5 * (1 / 4 + 2 / 4) == 0.375
    assert buan_dipy([], list(bundle), threshold=THR) == 0.0
    empty = torch.zeros(2, 3, 0, 64)
    assert bundle_adjacency_batched(empty, empty, threshold=THR).tolist() == [0.0, 0.0]


# ---------------------------------------------------------------- metric and handler
def test_metric_accumulates_and_resets():
    rng = np.random.default_rng(7)
    target = smooth_bundles(rng, 4, 16)
    pred = (target + rng.normal(scale=0.03, size=target.shape)).astype(np.float32)
    expected = dipy_scores(pred, target, THR)
    metric = BUANMetric(threshold=THR, space="normalised")
    assert metric.implementation == "batched"
    metric(to_batch(pred[:3]), to_batch(target[:3]))
    metric(list(to_batch(pred[3:])), list(to_batch(target[3:])))  # decollated channel-first items
    buffer = metric.get_buffer()
    assert buffer.shape == (4, 1)
    np.testing.assert_allclose(buffer[:, 0].numpy(), expected, atol=1e-6)
    assert metric.aggregate().item() == pytest.approx(expected.mean(), abs=1e-9)
    assert metric.aggregate("none").shape == (4, 1)
    metric.reset()
    with pytest.raises(ValueError, match="no scores"):
        metric.aggregate()

    dipy_metric = BUANMetric(threshold=THR, implementation="dipy", get_not_nans=True)
    dipy_metric(to_batch(pred), to_batch(target))
    value, not_nans = dipy_metric.aggregate()
    assert value.item() == pytest.approx(expected.mean(), abs=1e-9) and not_nans.item() == 4


def test_metric_with_clustering_uses_dipy():
    rng = np.random.default_rng(8)
    target = smooth_bundles(rng, 2, 16)
    pred = (target + np.float32(0.01)).astype(np.float32)
    metric = BUANMetric(threshold=THR, clust_thr=(0.1,))
    assert metric.implementation == "dipy"
    metric(to_batch(pred), to_batch(target))
    expected = [buan_dipy(p, t, threshold=THR, clust_thr=(0.1,)) for p, t in zip(pred, target)]
    np.testing.assert_allclose(metric.get_buffer()[:, 0].numpy(), expected)
    with pytest.raises(ValueError, match="clust_thr"):
        BUANMetric(clust_thr=(5, 3, 1.5), implementation="batched")


def test_summarize_buan():
    summary = summarize_buan(torch.tensor([[1.0], [0.5], [0.0], [0.25]]), ["AF_L", "AF_L", "CST_R", "CST_R"])
    assert summary["AF_L"] == {"mean": 0.75, "std": 0.25, "n": 2}
    assert summary["CST_R"] == {"mean": 0.125, "std": 0.125, "n": 2}
    assert summary["all"]["mean"] == pytest.approx(0.4375) and summary["all"]["n"] == 4
    assert summary["all"]["std"] == pytest.approx(np.std([1.0, 0.5, 0.0, 0.25]))
    with pytest.raises(ValueError, match="names"):
        summarize_buan([1.0], ["a", "b"])
    with pytest.raises(ValueError, match="reserved"):
        summarize_buan([1.0], ["all"])


def test_handler_on_engine():
    rng = np.random.default_rng(9)
    target = smooth_bundles(rng, 4, 16)
    pred = (target + rng.normal(scale=0.03, size=target.shape)).astype(np.float32)
    batches = [{"pred": to_batch(pred[i : i + 2]), "label": to_batch(target[i : i + 2])} for i in (0, 2)]
    engine = Engine(lambda engine, batch: batch)
    BUANHandler(threshold=THR).attach(engine, "buan")
    engine.run(batches, max_epochs=1)
    expected = dipy_scores(pred, target, THR)
    assert engine.state.metrics["buan"] == pytest.approx(expected.mean(), abs=1e-9)
    np.testing.assert_allclose(engine.state.metric_details["buan"][:, 0].numpy(), expected, atol=1e-6)


# ---------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    good = torch.rand(2, 3, 8, 16)
    with pytest.raises(ValueError, match=r"\(B, 3, S, P\)"):
        bundle_adjacency_batched(good[0], good[0], threshold=THR)
    with pytest.raises(ValueError, match=r"\(B, 3, S, P\)"):
        bundle_adjacency_batched(torch.rand(2, 2, 8, 16), torch.rand(2, 2, 8, 16), threshold=THR)
    with pytest.raises(ValueError, match="same shape"):
        bundle_adjacency_batched(good, torch.rand(2, 3, 9, 16), threshold=THR)
    bad = good.clone()
    bad[1, 0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        bundle_adjacency_batched(good, bad, threshold=THR)
    bad[1, 0, 3, 4] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        BUANMetric()(bad, good)
    for threshold in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            bundle_adjacency_batched(good, good, threshold=threshold)
        with pytest.raises(ValueError, match="threshold"):
            BUANMetric(threshold=threshold)
    with pytest.raises(ValueError, match="implementation"):
        BUANMetric(implementation="fast")
    with pytest.raises(ValueError, match="duplicates"):
        bundle_adjacency_batched(good, good, threshold=THR, duplicates="drop")
    with pytest.raises(TypeError, match="torch.Tensor"):
        bundle_adjacency_batched(good.numpy(), good, threshold=THR)
