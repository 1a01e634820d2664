"""MNI152 from nilearn's wheel (monai_genvq.data.mni152): the label rule, the geometry of the written volumes, the
pseudo-subjects, and the two dataset options that read them (anatomical prior brain3d_mni152.json, hyperbolic
brats mni152.json)."""

import importlib.metadata
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_genvq.data import ensure_mni152, generate_mni152, mni152_file, mni152_label_map, mni152_records

REPO = Path(__file__).resolve().parents[1]
SMALL = {"n_subjects": 4, "spacing": 8.0}  # 24 x 29 x 23 voxels: seconds to generate, shared via the session cache


def _load(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = nib.load(str(folder / "imagesTr" / name))
    return np.asarray(img.dataobj), np.asarray(nib.load(str(folder / "labelsTr" / name)).dataobj), img.affine


def test_label_rule_known_answers():
    gm = np.array([0.6, 0.2, 0.1, 0.45, 0.9, 0.5])
    wm = np.array([0.3, 0.7, 0.1, 0.45, 0.0, 0.5])
    mask = np.array([True, True, True, True, False, True])
    # GM wins; WM wins; residual CSF 0.8 wins; GM = WM tie -> GM (lower label); outside the mask; GM = WM, CSF 0
    assert mni152_label_map(gm, wm, mask).tolist() == [2, 3, 1, 2, 0, 2]
    with pytest.raises(ValueError, match="one shape"):
        mni152_label_map(gm, wm[:3], mask)


def test_template_is_read_from_nilearns_wheel_which_does_not_need_torch():
    for kind in ("t1", "gm", "wm"):
        path = mni152_file(kind)
        assert path.is_file() and "nilearn" in path.parts and path.name.startswith(f"mni_icbm152_{kind}_")
    with pytest.raises(ValueError, match="must be one of"):
        mni152_file("csf")
    requires = importlib.metadata.requires("nilearn") or []
    assert not any(r.split(";")[0].strip().lower().startswith("torch") for r in requires), requires
    constraints = (REPO / "requirements" / "constraints.txt").read_text()
    assert f"nilearn=={importlib.metadata.version('nilearn')}" in constraints  # the pin is the version tested


def test_plain_template_keeps_world_coordinates_and_the_label_rule(tmp_path):
    """No deformation, bias or noise: the written volume is the template, resampled with an affine that keeps mm."""
    folder = generate_mni152(tmp_path, 1, 8.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)
    image, label, affine = _load(folder, "mni152_000.nii.gz")
    assert image.shape == (24, 29, 23) and image.dtype == np.float32 and label.dtype == np.uint8
    assert np.allclose(np.diag(affine)[:3], 8.0)
    t1 = nib.load(str(mni152_file("t1")))
    full = np.asarray(t1.dataobj) > 0
    world = lambda aff, mask: aff[:3, :3] @ np.argwhere(mask).mean(0) + aff[:3, 3]  # noqa: E731
    # the brain's centroid in mm agrees to well below the 3.5 mm a first-voxel-corner (not centre) affine would give
    assert np.abs(world(affine, label > 0) - world(t1.affine, full)).max() < 1.5
    assert sorted(np.unique(label).tolist()) == [0, 1, 2, 3]
    assert np.array_equal(image != 0, label > 0)  # skull-stripped: the brain is exactly the non-zero voxels
    means = [float(image[label == k].mean()) for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2], means  # T1: CSF < GM < WM


def test_pseudo_subjects_differ_and_feed_the_decathlon_loaders(cache_dir):
    folder = ensure_mni152(**SMALL)
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["numTraining"] == 4 and meta["labels"] == {"0": "background", "1": "CSF", "2": "GM", "3": "WM"}
    (a, la, aff_a), (b, lb, aff_b) = (_load(folder, f"mni152_00{i}.nii.gz") for i in (0, 1))
    assert np.array_equal(aff_a, aff_b) and a.shape == b.shape
    assert not np.array_equal(la, lb) and 0.7 < np.mean(la == lb) < 1.0  # another deformation of the same anatomy
    assert np.array_equal(a != 0, la > 0) and np.array_equal(b != 0, lb > 0)
    records = mni152_records(folder)
    assert [r["name"] for r in records] == [f"mni152_00{i}" for i in range(4)]
    assert all(Path(r["image"]).is_file() and Path(r["label"]).is_file() for r in records)
    with pytest.raises(TypeError, match="unknown MNI152 parameter"):
        ensure_mni152(voxel_size=2.0)
    with pytest.raises(ValueError, match="spacing must be >= 1 mm"):
        generate_mni152(cache_dir / "bad", spacing=0.5)


def test_anatomical_prior_mni152_option_reads_the_pseudo_subjects(cache_dir):
    from monai.bundle import ConfigParser

    configs = REPO / "bundles" / "anatomical_prior_seg" / "configs"
    p = ConfigParser()
    p.read_config([str(configs / f) for f in ("train.json", "brain3d.json", "brain3d_mni152.json")])
    p.update({"mni152": SMALL, "test_fraction": 0.25})
    lists = p.get_parsed_content("datalists")
    assert [len(lists[k]) for k in ("prior", "image", "test")] == [2, 1, 1]
    assert all("/mni152_v1-" in r["image"] and "imagesTr/mni152_" in r["image"] for v in lists.values() for r in v)
    assert p.get_parsed_content("variant") == "brain3d_mni152"


def test_hyperbolic_mni152_option_scores_gm_and_wm_per_tissue(tmp_path, cache_dir):
    """The bundle's intensity reference on the option's records: per-tissue Dice of k-means inside the brain mask.

    Intensity k-means must find GM and WM well on real T1 contrast: a label map misaligned with its image (a wrong
    warp or affine) or the wrong mask would drop these far below.
    """
    from monai.bundle import ConfigParser

    configs = REPO / "bundles" / "hyperbolic_brats_seg" / "configs"
    p = ConfigParser()
    p.read_config([str(configs / f) for f in ("train.json", "evaluate.json", "intensity.json", "mni152.json")])
    p.update(
        {
            "mni152": SMALL,
            "n_test": 1,
            "bundle_root": str(tmp_path),
            "variant": "mni152_intensity",
            "intensity_sigma": 0.0,
        }
    )
    assert len(p.get_parsed_content("train_records")) == 3 and p.get_parsed_content("network_def").curvature == 0
    metrics = p.get_parsed_content("evaluation").run()
    per_label = metrics["levels"]["tissue"]["per_label"]
    assert set(per_label) == {"1", "2", "3"}
    # measured 0.80 / 0.81 (GM / WM, 8 mm, raw intensities); the label map flipped front-back: 0.59 (GM)
    assert per_label["2"]["mean"] > 0.7 and per_label["3"]["mean"] > 0.7, per_label
    assert "MNI152" in metrics["dataset"]
