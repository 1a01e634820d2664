"""The k-means-on-intensity reference embedding and its path through HyperbolicSegmentation."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_genvq.apps.hyperbolic import HyperbolicSegmentation
from monai_genvq.networks import IntensityEmbedding


def test_raw_embedding_is_the_input_and_smoothing_keeps_constants():
    vol = torch.rand(2, 6, 7, 8)
    assert torch.equal(IntensityEmbedding(sigma=0).embed_volume(vol), vol)
    const = torch.full((1, 9, 9, 9), 3.5)
    # edges are extended, not zero-padded: a constant volume stays constant up to the border
    assert torch.allclose(IntensityEmbedding(sigma=1.5).embed_volume(const), const)


def test_smoothing_reduces_white_noise_by_the_gaussian_factor():
    noise = torch.randn(1, 64, 64, 64, generator=torch.Generator().manual_seed(0))
    sigma = 1.0
    out = IntensityEmbedding(sigma=sigma).embed_volume(noise)[:, 8:-8, 8:-8, 8:-8]
    # unit white noise through a normalised 3-D Gaussian: std = (2 sqrt(pi) sigma)^(-3/2)
    expected = (2 * np.sqrt(np.pi) * sigma) ** -1.5
    assert abs(float(out.std()) - expected) < 0.05 * expected


def test_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        IntensityEmbedding(sigma=-1)
    with pytest.raises(ValueError, match="volume"):
        IntensityEmbedding().embed_volume(torch.zeros(4, 4, 4))
    bad = torch.zeros(1, 4, 4, 4)
    bad[0, 1, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        IntensityEmbedding(sigma=1).embed_volume(bad)


def test_segmentation_with_intensity_embedding_recovers_intensity_classes(tmp_path):
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
        IntensityEmbedding(sigma=0),
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
