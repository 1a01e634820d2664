"""The one k-means-on-intensity reference (``monai_genvq.metrics.IntensityKMeans``): its features, its two paths
(a MONAI evaluator's network; HyperbolicSegmentation's embedding) and the bundles that use it."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import REPO
from sklearn.cluster import KMeans

from monai_genvq.apps.hyperbolic import HyperbolicSegmentation
from monai_genvq.metrics import IntensityKMeans, hungarian_match, kmeans_clusters


def test_raw_embedding_is_the_input_and_smoothing_keeps_constants():
    vol = torch.rand(2, 6, 7, 8)
    assert torch.equal(IntensityKMeans(sigma=0, spatial_dims=3).embed_volume(vol), vol)
    const = torch.full((1, 9, 9, 9), 3.5)
    # edges are extended, not zero-padded: a constant volume stays constant up to the border
    assert torch.allclose(IntensityKMeans(sigma=1.5, spatial_dims=3).embed_volume(const), const)
    # a batch of volumes is smoothed per volume and channel, never across them
    batch = torch.stack([const, torch.zeros_like(const)])
    assert torch.allclose(IntensityKMeans(sigma=1.5, spatial_dims=3).embed_volume(batch), batch)


def test_smoothing_reduces_white_noise_by_the_gaussian_factor():
    noise = torch.randn(1, 64, 64, 64, generator=torch.Generator().manual_seed(0))
    sigma = 1.0
    out = IntensityKMeans(sigma=sigma, spatial_dims=3).embed_volume(noise)[:, 8:-8, 8:-8, 8:-8]
    # unit white noise through a normalised 3-D Gaussian: std = (2 sqrt(pi) sigma)^(-3/2)
    expected = (2 * np.sqrt(np.pi) * sigma) ** -1.5
    assert abs(float(out.std()) - expected) < 0.05 * expected


def test_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        IntensityKMeans(sigma=-1)
    with pytest.raises(ValueError, match="volume"):
        IntensityKMeans(spatial_dims=3).embed_volume(torch.zeros(4, 4))
    bad = torch.zeros(1, 4, 4, 4)
    bad[0, 1, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        IntensityKMeans(sigma=1).embed_volume(bad)
    with pytest.raises(ValueError, match="NaN"):
        IntensityKMeans(2)(bad[None])


def test_kmeans_clusters_is_seeded_sklearn_kmeans():
    """Best of ``restarts`` k-means++ runs of scikit-learn, deterministic for a seed."""
    rng = np.random.default_rng(0)
    img = rng.normal(size=(2, 2, 9, 11)).astype(np.float32)
    img[:, :, :4] += 3.0
    ids = kmeans_clusters(img, 3, seed=4, restarts=3)
    assert ids.shape == (2, 9, 11) and np.array_equal(ids, kmeans_clusters(img, 3, seed=4, restarts=3))
    for b in range(2):
        expected = KMeans(3, n_init=3, random_state=4).fit_predict(img[b].reshape(2, -1).T.astype(np.float64))
        assert np.array_equal(ids[b].ravel(), expected)


def test_forward_clusters_the_smoothed_intensities_one_hot():
    """The evaluator path: one-hot maps of the k-means of the (smoothed) features, as many channels as clusters."""
    rng = np.random.default_rng(1)
    label = np.zeros((24, 24), np.int64)
    label[6:18, 6:18] = 1
    img = torch.as_tensor(label + rng.normal(scale=0.6, size=label.shape), dtype=torch.float32)[None, None]
    raw = IntensityKMeans(2)(img)
    smooth = IntensityKMeans(2, sigma=2.0)(img)
    assert raw.shape == smooth.shape == (1, 2, 24, 24) and torch.equal(smooth.sum(1), torch.ones(1, 24, 24))
    acc = {
        name: float((hungarian_match(out.argmax(1)[0].numpy(), label, 2) == label).mean())
        for name, out in (("raw", raw), ("smooth", smooth))
    }
    assert acc["raw"] < 0.85 < 0.95 < acc["smooth"], acc  # noise defeats a per-pixel threshold, smoothing fixes it


def test_both_bundles_use_the_one_reference():
    """anatomical_prior_seg's k-means evaluator and the hyperbolic bundles' intensity.json build the same class."""
    evaluate = json.loads((REPO / "bundles" / "anatomical_prior_seg" / "configs" / "evaluate.json").read_text())
    assert evaluate["kmeans_evaluator"]["network"]["_target_"] == "monai_genvq.metrics.IntensityKMeans"
    for name in ("hyperbolic_toy_seg", "hyperbolic_brats_seg", "hyperbolic_cryoet_seg"):
        intensity = json.loads((REPO / "bundles" / name / "configs" / "intensity.json").read_text())
        assert intensity["network_def"]["_target_"] == "monai_genvq.metrics.IntensityKMeans", name
    text = "\n".join(p.read_text() for p in (REPO / "bundles").glob("*/configs/*.json"))
    assert "IntensityEmbedding" not in text


def test_segmentation_with_intensity_kmeans_recovers_intensity_classes(tmp_path):
    rng = np.random.default_rng(0)
    label = np.zeros((20, 20, 20), np.uint8)
    label[4:12, 4:16, 5:15] = 1
    label[13:18, 2:9, 3:17] = 2
    image = np.array([0.1, 0.5, 0.9], np.float32)[label] + rng.normal(scale=0.03, size=label.shape).astype(np.float32)
    nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / "lab.nii.gz")
    records = [{"image": str(tmp_path / "img.nii.gz"), "label": str(tmp_path / "lab.nii.gz"), "name": "case"}]
    out = tmp_path / "outputs" / "intensity" / "eval"
    metrics = HyperbolicSegmentation(
        IntensityKMeans(sigma=0, spatial_dims=3),
        records,
        {"classes": ("label", 3, [0, 1, 2])},
        out,
        method="intensity",
        figures=False,
    ).run()
    assert metrics["clustering"] == "euclidean" and metrics["embedding"] == "input intensities per voxel"
    assert metrics["levels"]["classes"]["mean"] == pytest.approx(1.0)
    assert "intensity" in (tmp_path / "outputs" / "comparison.md").read_text()
    written = np.asarray(nib.load(out / "segmentations" / "case_classes.nii.gz").dataobj)
    assert np.array_equal(written, label)
    assert json.loads((out / "metrics.json").read_text())["method"] == "intensity"
