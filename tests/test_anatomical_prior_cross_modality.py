"""The seed's cross-modality setting (prior from T1 label maps, image model on FLAIR): the phantom's second contrast,
the datalists' image_contrast option and configs/brain3d_flair.json."""

import json
from pathlib import Path

import numpy as np
import pytest

from monai_genvq.apps.anatomical_prior import decathlon_prior_datalists, generate_synthetic_brain, render_brain_phantom

CONFIGS = Path(__file__).resolve().parents[1] / "bundles" / "anatomical_prior_seg" / "configs"
TINY = {"n_subjects": 8, "size": 16, "fov": 20}


def test_flair_contrast_leaves_t1_unchanged_and_has_flair_ordering():
    # the second subject drawn from one generator too: FLAIR draws must not shift the T1 stream of later subjects
    rng = np.random.default_rng(3)
    plain = [render_brain_phantom(rng, size=32) for _ in range(2)][1]
    rng, flair_rng = np.random.default_rng(3), np.random.default_rng(9)
    both = [render_brain_phantom(rng, size=32, flair_rng=flair_rng) for _ in range(2)][1]
    assert np.array_equal(plain["image"], both["image"]) and np.array_equal(plain["label"], both["label"])
    assert "image_flair" not in plain
    lab, t1, flair = both["label"], both["image"], both["image_flair"]
    m1 = [float(t1[lab == k].mean()) for k in range(4)]
    m2 = [float(flair[lab == k].mean()) for k in range(4)]
    assert m1[1] < m1[2] < m1[3], m1  # T1: CSF < GM < WM
    assert m2[1] < m2[3] < m2[2] and m2[1] - m2[0] < 0.15, m2  # FLAIR: CSF near background, GM > WM


def test_image_contrast_switches_stage2_and_test_images_only(tmp_path):
    root = generate_synthetic_brain(tmp_path, n_subjects=6, size=12, fov=14)
    assert json.loads((root / "dataset.json").read_text())["contrasts"] == {"image": "T1", "image_flair": "FLAIR"}
    same, cross = decathlon_prior_datalists(root), decathlon_prior_datalists(root, image_contrast="image_flair")
    for part in ("prior", "image", "test"):
        assert [r["subject"] for r in same[part]] == [r["subject"] for r in cross[part]]  # one split
        assert all("/imagesTr/" in r["image"] for r in same[part])
    assert all("/imagesTr/" in r["image"] for r in cross["prior"])  # the prior subjects keep their T1
    assert all("/imagesTr_flair/" in r["image"] for r in cross["image"] + cross["test"])
    assert all(Path(r["image"]).name == Path(r["label"]).name for r in cross["test"])  # same subject's label
    with pytest.raises(ValueError, match="image_contrast 'image_t2'"):
        decathlon_prior_datalists(root, image_contrast="image_t2")


def test_brain3d_flair_config_trains_stage2_on_flair_against_the_t1_prior(tmp_path, cache_dir):
    from monai.bundle import ConfigParser

    p = ConfigParser()
    p.read_config([str(CONFIGS / f) for f in ("train.json", "train_image.json", "brain3d.json", "brain3d_flair.json")])
    p.update({"bundle_root": str(tmp_path), "synthetic_brain": TINY})
    assert p.get_parsed_content("prior_checkpoint") == str(
        tmp_path / "outputs" / "brain3d" / "prior" / "models" / "model.pt"
    )
    data = p.get_parsed_content("train#dataset#data")
    assert data and all("/imagesTr_flair/" in r["image"] for r in data)
    p.read_config(
        [
            str(CONFIGS / f)
            for f in ("train.json", "train_image.json", "evaluate.json", "brain3d.json", "brain3d_flair.json")
        ]
    )
    p.update({"bundle_root": str(tmp_path), "synthetic_brain": TINY})
    assert all("/imagesTr_flair/" in r["image"] for r in p.get_parsed_content("test_dataset#data"))
    assert "applied to FLAIR" in p.get_parsed_content("unet_row")
