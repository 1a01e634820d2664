"""Poincaré / Euclidean k-means, Fréchet mean, Hungarian Dice."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from monai_genvq.apps.hyperbolic import (
    as_curvature,
    dist,
    euclidean_kmeans,
    expmap0,
    frechet_mean,
    pairwise_dist,
    poincare_kmeans,
)
from monai_genvq.apps.hyperbolic.manifold import gmath
from monai_genvq.metrics import ClusterDiceMetric, dice_matrix, hungarian_dice


def test_pairwise_dist_equals_geoopt():
    torch.manual_seed(0)
    k = as_curvature(1.0, torch.zeros((), dtype=torch.float64))
    x = expmap0(torch.randn(30, 3, dtype=torch.float64), k)
    y = expmap0(torch.randn(5, 3, dtype=torch.float64), k)
    assert torch.allclose(pairwise_dist(x, y, 1.0), dist(x[:, None], y[None], k), atol=1e-9)
    assert torch.allclose(pairwise_dist(x, y, 0.0), 2 * torch.cdist(x, y), atol=1e-9)


def test_frechet_mean_symmetric_points_and_first_order_condition():
    pts = torch.tensor([[0.3, 0.0], [-0.3, 0.0], [0.0, 0.5], [0.0, -0.5]], dtype=torch.float64)
    assert torch.allclose(frechet_mean(pts, c=1.0), torch.zeros(2, dtype=torch.float64), atol=1e-8)
    torch.manual_seed(0)
    k = as_curvature(1.0, torch.zeros((), dtype=torch.float64))
    x = expmap0(torch.tensor([1.2, -0.4], dtype=torch.float64) + 0.5 * torch.randn(500, 2, dtype=torch.float64), k)
    m = frechet_mean(x, c=1.0, iters=300, tol=1e-12)
    grad = gmath.logmap(m.expand_as(x), x, k=k).mean(0)  # the Riemannian gradient of Σ d² vanishes at the mean
    assert grad.norm() < 1e-6
    # and it beats the Euclidean average projected onto the ball
    obj = lambda mu: float(pairwise_dist(x, mu[None], 1.0).square().sum())  # noqa: E731
    assert obj(m) < obj(x.mean(0))


@pytest.mark.parametrize("c", [1.0, 0.0])
def test_kmeans_recovers_separable_clusters(c):
    torch.manual_seed(0)
    centres = torch.tensor([[1.5, 0.0, 0.0], [-1.5, 0.2, 0.0], [0.0, 1.6, 0.3], [0.0, -0.5, -1.7], [0.1, 0.1, 0.1]])
    truth = torch.arange(5).repeat_interleave(400)
    pts = centres[truth] + 0.08 * torch.randn(2000, 3)
    if c > 0:
        pts = expmap0(pts, as_curvature(c))
    res = poincare_kmeans(pts, 5, c=c, seed=1)
    assert hungarian_dice(res.labels.numpy(), truth.numpy())[0] == 1.0
    assert res.centres.shape == (5, 3)
    again = poincare_kmeans(pts, 5, c=c, seed=1)
    assert torch.equal(again.labels, res.labels), "k-means must be deterministic for a seed"
    if c == 0:
        flat = euclidean_kmeans(pts, 5, seed=1)
        assert hungarian_dice(flat.labels.numpy(), truth.numpy())[0] == 1.0


def test_euclidean_kmeans_is_seeded_sklearn_kmeans():
    """The flat latents' k-means is scikit-learn's (k-means++, 2 restarts, random_state = seed); inertia in the
    flat model's metric d = 2‖x - y‖, as pairwise_dist(c=0) and poincare_kmeans(c=0) report it."""
    torch.manual_seed(0)
    pts = torch.randn(600, 3)
    res = euclidean_kmeans(pts, 4, seed=3)
    ref = KMeans(4, n_init=2, random_state=3).fit(pts.numpy())
    assert np.array_equal(res.labels.numpy(), ref.labels_) and np.allclose(res.centres.numpy(), ref.cluster_centers_)
    assert torch.equal(euclidean_kmeans(pts, 4, seed=3).labels, res.labels)
    flat_inertia = float(pairwise_dist(pts, res.centres, 0.0).gather(1, res.labels[:, None]).square().sum())
    assert res.inertia == pytest.approx(flat_inertia, rel=1e-4)
    with pytest.raises(ValueError, match="n_clusters"):
        euclidean_kmeans(torch.zeros(3, 2), 5)
    with pytest.raises(ValueError, match="NaN"):
        euclidean_kmeans(torch.tensor([[0.1, float("nan")], [0.0, 0.0]]), 1)


def test_kmeans_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        poincare_kmeans(torch.tensor([[0.1, float("nan")], [0.0, 0.0]]), 1)
    with pytest.raises(ValueError, match="n_clusters"):
        poincare_kmeans(torch.zeros(3, 2), 5)
    with pytest.raises(ValueError, match="non-empty"):
        poincare_kmeans(torch.zeros(0, 2), 1)


def test_hungarian_dice_is_one_on_a_permuted_labelling():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 6, size=(12, 11, 10))
    perm = rng.permutation(6) + 3
    score, mapping, per_label = hungarian_dice(perm[label], label)
    assert score == 1.0 and np.all(per_label == 1.0)
    assert mapping == {i: int(perm[i]) for i in range(6)}


def test_hungarian_dice_known_answer():
    label = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([5, 5, 5, 7, 7, 7, 7, 7])
    # Dice(5, 0) = 2·3/(3+4) = 6/7, Dice(7, 1) = 2·4/(5+4) = 8/9
    score, mapping, per_label = hungarian_dice(pred, label)
    assert mapping == {0: 5, 1: 7}
    assert np.allclose(per_label, [6 / 7, 8 / 9]) and np.isclose(score, (6 / 7 + 8 / 9) / 2)
    # a label absent from the map and unmatched: Dice 0 (more labels than clusters)
    assert np.isclose(hungarian_dice(np.zeros(4, int), np.array([0, 0, 1, 1]))[0], (2 * 2 / 6) / 2)
    # an empty label matched to an empty cluster scores empty_value
    assert (
        hungarian_dice(
            np.array([0, 0, 1]), np.array([0, 0, 1]), label_ids=[0, 1, 2], pred_ids=[0, 1, 2], empty_value=1.0
        )[0]
        == 1.0
    )
    assert hungarian_dice(
        np.array([0, 0, 1]), np.array([0, 0, 1]), label_ids=[0, 1, 2], pred_ids=[0, 1, 2], empty_value=0.0
    )[0] == pytest.approx(2 / 3)
    assert dice_matrix(np.array([0, 1]), np.array([0, 1]), [0, 1], [0, 1]).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_hungarian_dice_bad_inputs():
    with pytest.raises(ValueError, match="empty label map"):
        hungarian_dice(np.zeros((0,)), np.zeros((0,)))
    with pytest.raises(ValueError, match="shape"):
        hungarian_dice(np.zeros(3), np.zeros(4))


def test_cluster_dice_metric_accumulates_volumes():
    m = ClusterDiceMetric()
    m(torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]]), torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]))
    scores = m.get_buffer()
    assert scores.shape == (2,)
    assert float(scores[0]) == 1.0 and float(scores[1]) == pytest.approx((2 / 3 + 0.8) / 2)
    assert float(m.aggregate()) == pytest.approx((1.0 + (2 / 3 + 0.8) / 2) / 2)
    m.reset()
    with pytest.raises(ValueError, match="no scores"):
        m.aggregate()
