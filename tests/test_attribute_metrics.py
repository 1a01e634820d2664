"""Attribute-regularisation loss, disentanglement metrics and SSIM on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from monai_genvq.handlers import DisentanglementHandler
from monai_genvq.losses import AttributeRegularizationLoss, attribute_regularization
from monai_genvq.metrics import (
    DisentanglementMetric,
    compute_disentanglement,
    interpretability,
    mig,
    modularity,
    mutual_information_matrix,
    sap_score,
    scc_score,
)
from monai_genvq.metrics.disentanglement import entropy_discrete


def test_attribute_loss_hand_computed():
    # pairs (0,1) and (1,0): |tanh(∓δ) ∓ (−1)|... each 1 − tanh(1) = 0.23841; diagonal 0; mean over 4 pairs
    z, a = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
    expected = 2 * (1 - math.tanh(1.0)) / 4
    assert attribute_regularization(z, a, delta=1.0).item() == pytest.approx(expected, abs=1e-6)
    # reversed order: |tanh(−1) − 1| twice -> (1 + tanh 1) / 2
    assert attribute_regularization(-z, a, delta=1.0).item() == pytest.approx((1 + math.tanh(1.0)) / 2, abs=1e-6)
    # equal attributes: sign 0, so the loss is mean |tanh(δ D_r)|
    assert attribute_regularization(z, torch.ones(2), delta=1.0).item() == pytest.approx(math.tanh(1.0) / 2, abs=1e-6)


def test_attribute_loss_weights_and_dims():
    z = torch.zeros(3, 5)
    z[:, 4] = torch.tensor([0.0, 1.0, 2.0])
    a = torch.tensor([[3.0], [2.0], [1.0]])
    loss = AttributeRegularizationLoss(latent_dims=[4], gamma=10.0, delta=1.0)(z, a)
    pairs = [(i, j) for i in range(3) for j in range(3)]
    zr, ar = z[:, 4].tolist(), a[:, 0].tolist()
    manual = sum(abs(math.tanh(zr[i] - zr[j]) - np.sign(ar[i] - ar[j])) for i, j in pairs) / 9
    assert loss.item() == pytest.approx(10 * manual, rel=1e-5)
    with pytest.raises(ValueError, match="latent_dims"):
        AttributeRegularizationLoss(latent_dims=[7])(z, a)
    # gradient pushes the regularised dim toward the attribute order
    zz = z.clone().requires_grad_(True)
    AttributeRegularizationLoss(latent_dims=[4], delta=1.0)(zz, a).backward()
    assert zz.grad[0, 4] < 0 < zz.grad[2, 4]  # descend: raise z of the largest attribute, lower the smallest


def test_mutual_information_known_values_and_determinism():
    y = np.array([0, 0, 1, 1] * 5, float)[:, None]
    z = np.stack([y[:, 0], np.array([0, 1, 0, 1] * 5, float)], 1)
    mi = mutual_information_matrix(z, y, bins=2)
    np.testing.assert_allclose(mi[:, 0], [math.log(2), 0.0], atol=1e-12)
    np.testing.assert_allclose(entropy_discrete(y, bins=2), [math.log(2)])
    rng = np.random.default_rng(0)
    zz, yy = rng.normal(size=(500, 6)), rng.normal(size=(500, 3))
    assert np.array_equal(mutual_information_matrix(zz, yy), mutual_information_matrix(zz, yy))


def test_modularity_and_mig_hand_computed():
    mi = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])
    # code 0: θ=1, δ=0 -> 1; code 1: θ=.25, δ=(.5-.25)/.25 = 1 -> 0; code 2: θ=0 -> 0
    assert modularity(mi) == pytest.approx(1 / 3)
    # attribute 0: (1 - .5)/H0 ; attribute 1: (.5 - 0)/H1
    assert mig(mi, np.array([1.0, 2.0])) == pytest.approx((0.5 / 1 + 0.5 / 2) / 2)


def test_sap_scc_interpretability_hand_computed():
    t = np.arange(10, dtype=float)
    y = np.stack([t, t**3], 1)
    z = np.stack([2 * t + 1, np.ones(10), -(t**3)], 1)
    # S: z0 perfectly linear in y0 (1); constant z1 -> 0; z2 = -y1 -> 1; gaps: y0: 1 - corr(z2,y0)²; y1: 1 - corr(z0,y1)²
    r01 = np.corrcoef(t, t**3)[0, 1] ** 2
    assert sap_score(z, y) == pytest.approx(((1 - r01) + (1 - r01)) / 2)
    assert scc_score(z, y) == pytest.approx(1.0)  # ranks: all monotone
    assert scc_score(z[:, 1:2], y) == 0.0
    interp = interpretability(z, y, bins=10)
    assert interp["dims"] == [0, 0] or interp["dims"][0] == 0  # ties in MI resolve to the first code
    assert interp["scores"][0] == pytest.approx(1.0)
    noise = np.random.default_rng(1).normal(size=(10, 1))
    assert interpretability(noise, y, bins=5)["mean"] < 0.5


def _orthonormal_codes(n=2000, d=3, seed=0):
    """Codes with zero mean, unit variance and exactly uncorrelated columns (so R² values are known exactly)."""
    a = np.random.default_rng(seed).normal(size=(n, d))
    q, _ = np.linalg.qr(a - a.mean(0))
    return q * np.sqrt(n)


def test_interpretability_scores_each_attribute_against_its_own_code():
    """Three attributes with different, known relations to the codes: each is scored on its own code and values.

    With orthonormal codes, ``y = z_i + c z_j`` has R² = 1 / (1 + c²) on ``z_i`` and c² / (1 + c²) on ``z_j``.
    """
    z = _orthonormal_codes()
    y = np.stack(
        [
            2 * z[:, 1] + 1,  # on z1, exactly linear: R² = 1
            z[:, 2] + 0.5 * z[:, 0],  # mostly z2: R² = 1 / 1.25 = 0.8
            -z[:, 0] + z[:, 1] / np.sqrt(3),  # mostly z0: R² = 1 / (1 + 1/3) = 0.75
        ],
        1,
    )
    out = interpretability(z, y)
    assert out["dims"] == [1, 2, 0]
    np.testing.assert_allclose(out["scores"], [1.0, 0.8, 0.75], atol=1e-9)
    assert out["mean"] == pytest.approx(0.85, abs=1e-9)
    # the regression is on the code the MI matrix names, whatever it is: name z0 for attribute 1 (R² 0.2)
    mi = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [0.0, 0.5, 0.0]])
    forced = interpretability(z, y, mi=mi)
    assert forced["dims"] == [1, 0, 0]
    np.testing.assert_allclose(forced["scores"], [1.0, 0.2, 0.75], atol=1e-9)


def test_all_metrics_together_and_monai_metric_and_handler():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2000, 3))
    z_good = np.concatenate([y + 0.05 * rng.normal(size=y.shape), rng.normal(size=(2000, 5))], 1)
    z_bad = rng.normal(size=(2000, 8))
    good, bad = compute_disentanglement(z_good, y), compute_disentanglement(z_bad, y)
    for key in ("interpretability", "sap", "scc", "mig", "modularity"):
        assert good[key] > bad[key], key
    assert good["interpretability_per_attribute"]["dims"] == [0, 1, 2]
    metric = DisentanglementMetric("sap")
    for i in range(0, 2000, 500):
        metric(torch.as_tensor(z_good[i : i + 500]), torch.as_tensor(y[i : i + 500]))
    assert metric.aggregate().item() == pytest.approx(good["sap"], rel=1e-5)
    assert metric.aggregate_all()["scc"] == pytest.approx(good["scc"])
    with pytest.raises(ValueError, match="metric must be one of"):
        DisentanglementMetric("beta")

    from ignite.engine import Engine

    batches = [
        {"latent": torch.as_tensor(z_good[i : i + 400]), "attributes": torch.as_tensor(y[i : i + 400])}
        for i in range(0, 2000, 400)
    ]
    engine = Engine(lambda e, b: b)
    DisentanglementHandler("interpretability").attach(engine, "interp")
    engine.run(batches)
    assert engine.state.metrics["interp"] == pytest.approx(good["interpretability"], rel=1e-6)


def test_monai_ssim_matches_skimage_settings():
    from monai.metrics import SSIMMetric
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((48, 48)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1).astype(np.float32)
    ours = SSIMMetric(spatial_dims=2, data_range=1.0)(
        torch.as_tensor(b)[None, None], torch.as_tensor(a)[None, None]
    ).item()
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert ours == pytest.approx(ref, abs=1e-4)


def test_vectorised_ranks_equal_scipy_with_ties():
    from scipy.stats import rankdata

    from monai_genvq.metrics.disentanglement import _ranks

    x = np.random.default_rng(0).integers(0, 5, size=(40, 3)).astype(float)
    np.testing.assert_allclose(_ranks(x), rankdata(x, axis=0, method="average"))
