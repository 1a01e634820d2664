"""Cardiac data layer: ACDC / M&Ms discovery and loading, label conventions, attributes, alignment, bad inputs."""

import csv
import gzip
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_genvq.apps.cardiac import CardiacAttributesd, cardiac_attributes
from monai_genvq.data import (
    CardiacDataError,
    cardiac_datalists,
    discover_acdc,
    discover_mnms,
    generate_synthetic_acdc,
    generate_synthetic_mnms,
    load_cardiac_ed,
    map_labels,
    read_acdc_info,
)
from monai_genvq.transforms import (
    CardiacAlignment,
    CardiacAlignmentd,
    LoadCardiacEDd,
    align_short_axis,
    select_short_axis_slice,
)

SMALL = {"shape": (96, 96), "n_slices": 6, "n_frames": 3}


@pytest.fixture(scope="module")
def acdc_root(tmp_path_factory):
    return generate_synthetic_acdc(tmp_path_factory.mktemp("acdc"), n_train=3, n_test=1, seed=3, **SMALL)


@pytest.fixture(scope="module")
def mnms_root(tmp_path_factory):
    return generate_synthetic_mnms(
        tmp_path_factory.mktemp("mnms"), n_train=2, n_val=1, n_test=2, n_unlabeled=1, seed=4, **SMALL
    )


def _save(path, data, spacing=(1.5, 1.5, 10.0)):
    img = nib.Nifti1Image(np.asarray(data), np.diag(list(spacing) + [1.0]))
    img.header.set_zooms(tuple(spacing) + ((1.0,) if np.ndim(data) == 4 else ()))
    nib.save(img, str(path))


def _copy(src, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ label conventions
def test_label_maps_of_both_datasets_to_internal_lv_myo_rv():
    values = np.array([0, 1, 2, 3])
    assert map_labels(values, "acdc").tolist() == [0, 3, 2, 1]  # ACDC 1 RV, 3 LV -> internal 1 LV, 3 RV
    assert map_labels(values, "mnms").tolist() == [0, 1, 2, 3]  # M&Ms already 1 LV, 2 MYO, 3 RV
    with pytest.raises(CardiacDataError, match=r"label values \[4\]"):
        map_labels(np.array([0, 4]), "acdc", "gt.nii.gz")


def test_acdc_file_labels_are_reversed_and_loader_restores_internal(acdc_root):
    rec = discover_acdc(acdc_root)[0]
    raw = np.asarray(nib.load(rec["label"]).dataobj)
    case = load_cardiac_ed(rec)
    # the loader maps file value 3 (ACDC LV) to 1 and 1 (ACDC RV) to 3, voxel for voxel
    assert np.array_equal(case["label"] == 1, raw == 3) and np.array_equal(case["label"] == 3, raw == 1)
    assert np.array_equal(case["label"] == 2, raw == 2)
    # the LV is the pool enclosed by the myocardium: the largest label-1 slice lies inside the ring
    info = read_acdc_info(acdc_root / "database" / rec["split"] / rec["subject"] / "Info.cfg")
    assert rec["ed_frame"] == info["ED"] - 1  # 1-based in Info.cfg, 0-based in the record


def test_mnms_ed_is_zero_based_and_domain_is_vendor_centre(mnms_root):
    recs = discover_mnms(mnms_root, "all")
    assert {r["split"] for r in recs} == {"training", "validation", "testing"}
    assert all(r["domain"].startswith("vendor ") for r in recs)
    rec = recs[0]
    gt4d = np.asarray(nib.load(rec["label"]).dataobj)
    filled = [t for t in range(gt4d.shape[3]) if gt4d[..., t].any()]
    assert rec["ed_frame"] in filled and rec["es_frame"] in filled and len(filled) == 2
    case = load_cardiac_ed(rec)
    assert np.array_equal(case["label"], gt4d[..., rec["ed_frame"]])  # M&Ms convention == internal


def test_both_layouts_give_same_internal_anatomy():
    """The same phantom written in both conventions loads to the same internal label map."""
    from monai_genvq.data.synthetic_cardiac import render_cardiac_phantom

    case = render_cardiac_phantom(np.random.default_rng(0), **SMALL)
    lab = case["label"][..., case["ed_frame"]]
    acdc_file = np.choose(lab, [0, 3, 2, 1])
    assert np.array_equal(map_labels(acdc_file, "acdc"), lab)
    lv, myo, rv = (lab == 1), (lab == 2), (lab == 3)
    assert lv.sum() > 0 and myo.sum() > 0 and rv.sum() > 0


# ------------------------------------------------------------------ attributes and alignment
def test_attribute_volumes_equal_voxel_counts_times_spacing():
    lab = np.zeros((10, 10, 3), np.uint8)
    lab[0:2, 0:3, 0] = 1  # 6 LV voxels
    lab[5, 5, 1:3] = 2  # 2 MYO voxels
    lab[7:10, 7:10, 2] = 3  # 9 RV voxels
    spacing = (1.25, 1.5, 8.0)  # 15 mm³ = 0.015 mL per voxel
    np.testing.assert_allclose(cardiac_attributes(lab, spacing), [6 * 0.015, 2 * 0.015, 9 * 0.015], rtol=1e-6)
    d = CardiacAttributesd()({"label": torch.as_tensor(lab)[None], "spacing": np.array(spacing)})
    np.testing.assert_allclose(d["attributes"].numpy(), [0.09, 0.03, 0.135], rtol=1e-6)
    with pytest.raises(ValueError, match="spacing"):
        cardiac_attributes(lab, (1.0, 0.0, 1.0))


def test_phantom_volumes_vary_independently(acdc_root, tmp_path):
    root = generate_synthetic_acdc(tmp_path / "a", n_train=12, n_test=0, seed=0, shape=(80, 80), n_slices=6, n_frames=2)
    attrs = np.stack(
        [cardiac_attributes(load_cardiac_ed(r)["label"], load_cardiac_ed(r)["spacing"]) for r in discover_acdc(root)]
    )
    assert np.all(attrs.std(0) / attrs.mean(0) > 0.15)  # each volume varies
    corr = np.corrcoef(attrs.T)
    assert abs(corr[0, 2]) < 0.9 and abs(corr[1, 2]) < 0.9  # not in lockstep


def test_acdc_size_coupling_decorrelates_volumes_like_acdc():
    from monai_genvq.data.synthetic_cardiac import render_cardiac_phantom

    def volumes(coupling):
        rng, out, poses = np.random.default_rng(1), [], []
        for _ in range(30):
            case = render_cardiac_phantom(rng, (128, 128), 8, 1, 0, size_coupling=coupling)
            out.append(cardiac_attributes(case["label"][..., 0], case["spacing"]))
            poses.append(case["anatomy"]["pose"])
        return np.corrcoef(np.stack(out).T), poses

    (shared, poses_shared), (acdc, poses_acdc) = volumes("shared"), volumes("acdc")
    assert poses_shared == poses_acdc  # same rng draws: only the size model differs
    assert shared[0, 1] > 0.35 and shared[0, 2] > 0.35  # version-2 phantom: every volume grows with the LV
    assert abs(acdc[0, 1]) < 0.25 and abs(acdc[0, 2]) < 0.45 and abs(acdc[1, 2]) < 0.45  # ACDC: -0.04, 0.35, 0.18
    with pytest.raises(ValueError, match="size_coupling"):
        render_cardiac_phantom(np.random.default_rng(0), (64, 64), 4, 1, 0, size_coupling="lockstep")


def test_shared_size_coupling_keeps_version_2_cache_parameters(tmp_path):
    import json

    from monai_genvq.data import ensure_synthetic_acdc
    from monai_genvq.utils.dataset_cache import COMPLETION_MARKER

    small = {"n_train": 1, "n_test": 0, "shape": (64, 64), "n_slices": 4, "n_frames": 2}
    marker = json.loads(
        (ensure_synthetic_acdc(tmp_path / "s", size_coupling="shared", **small) / COMPLETION_MARKER).read_text()
    )
    assert "size_coupling" not in marker  # caches written before the option existed stay valid
    marker = json.loads(
        (ensure_synthetic_acdc(tmp_path / "a", size_coupling="acdc", **small) / COMPLETION_MARKER).read_text()
    )
    assert marker["size_coupling"] == "acdc"


def test_alignment_puts_barycentres_where_it_says():
    h = w = 100
    yy, xx = np.mgrid[0:h, 0:w]
    lab = np.zeros((h, w), np.uint8)
    lab[(yy - 30) ** 2 + (xx - 62) ** 2 < 12**2] = 2
    lab[(yy - 30) ** 2 + (xx - 62) ** 2 < 7**2] = 1
    lab[(yy - 52) ** 2 + (xx - 45) ** 2 < 8**2] = 3  # RV below-left of the LV
    img = lab.astype(np.float32) * 10 + 5
    for rv_side, sign in (("left", -1), ("right", 1)):
        out_img, out_lab, params = align_short_axis(img, lab, size=64, rv_side=rv_side)
        c = (64 - 1) / 2
        lvmyo = np.argwhere((out_lab == 1) | (out_lab == 2)).mean(0)
        rv = np.argwhere(out_lab == 3).mean(0)
        np.testing.assert_allclose(lvmyo, [c, c], atol=0.6)
        assert abs(rv[0] - c) < 0.8  # on the horizontal line through the centre
        assert sign * (rv[1] - c) > 15  # on the requested side, at the input's LV-RV distance (~27 px)
        np.testing.assert_allclose(params["centre"], [30, 62], atol=0.1)
        assert out_img.min() >= 0 and out_img.max() <= 1 and np.all(out_img[out_lab == 0] == 0)


def test_alignment_options_of_the_oracle_pose_ablation():
    """Known answers: heart 2, surroundings 4. Attri-SIVAE (default) zeroes the surroundings and maps the heart's
    99th percentile (2) to 1; ``mask_outside=False`` keeps them; ``intensity_reference="crop"`` maps the crop's
    99th percentile (4, the surroundings) to 1, so the heart becomes 0.5."""
    h = w = 100
    yy, xx = np.mgrid[0:h, 0:w]
    lab = np.zeros((h, w), np.uint8)
    lab[(yy - 50) ** 2 + (xx - 55) ** 2 < 10**2] = 2
    lab[(yy - 50) ** 2 + (xx - 55) ** 2 < 6**2] = 1
    lab[(yy - 50) ** 2 + (xx - 33) ** 2 < 6**2] = 3
    img = np.where(lab > 0, 2.0, 4.0).astype(np.float32)
    size = 48  # the rotated crop stays inside the slice: no zero fill

    def run(**kwargs):
        out, out_lab = CardiacAlignment(size, **kwargs)(img, lab)
        return out[0].numpy(), out_lab[0].numpy()

    out, out_lab = run()
    assert np.all(out[out_lab == 0] == 0) and np.median(out[out_lab > 0]) == 1.0
    out, out_lab = run(mask_outside=False)  # surroundings 4 / 2, clipped: everything is 1
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    out, out_lab = run(mask_outside=False, intensity_reference="crop")
    assert np.median(out[out_lab > 0]) == pytest.approx(0.5) and np.median(out[out_lab == 0]) == pytest.approx(1.0)
    assert out.min() >= 0.5 - 1e-6 and out.max() <= 1.0
    centre = (size - 1) // 2
    assert out_lab[centre, centre] == 1 and out[centre, centre] == pytest.approx(0.5)
    # the dictionary form passes the options on; a bad reference is refused
    d = CardiacAlignmentd(("image", "label"), size, mask_outside=False, intensity_reference="crop")(
        {"image": img[..., None], "label": lab[..., None]}
    )
    np.testing.assert_array_equal(d["image"][0].numpy(), out)
    with pytest.raises(ValueError, match="intensity_reference"):
        CardiacAlignment(intensity_reference="image")
    with pytest.raises(ValueError, match="intensity_reference"):
        align_short_axis(img, lab, intensity_reference="image")


def test_mid_slice_choice_and_dict_transform(acdc_root):
    rec = discover_acdc(acdc_root)[0]
    case = LoadCardiacEDd()(rec)
    lab = case["label"]
    has_lv = np.flatnonzero((lab == 1).any((0, 1)))
    assert select_short_axis_slice(lab) == (has_lv[0] + has_lv[-1]) // 2
    out = CardiacAlignmentd(keys=("image", "label"), size=128)({**case, "slice_offset": 0})
    assert out["image"].shape == (1, 128, 128) and out["label"].shape == (1, 128, 128)
    assert out["image_alignment"]["slice"] == select_short_axis_slice(lab)
    img, _ = CardiacAlignment(size=128)(case["image"], lab)
    assert torch.equal(img, out["image"])


def test_datalists_split_by_subject_and_expand_offsets(acdc_root):
    lists = cardiac_datalists("acdc", acdc_root, val_fraction=0.34, slice_offsets=(-1, 0, 1))
    train_subjects = {r["subject"] for r in lists["train"]}
    assert not train_subjects & {r["subject"] for r in lists["validation"]}
    assert len(lists["train"]) == 3 * len(train_subjects) and len(lists["test"]) == 1
    test3 = cardiac_datalists("acdc", acdc_root, val_fraction=0.34, test_slice_offsets=(-1, 0, 1))["test"]
    assert [r["slice_offset"] for r in test3] == [-1, 0, 1] and len({r["subject"] for r in test3}) == 1


# ------------------------------------------------------------------ bad inputs
def test_missing_ed_frame_errors(acdc_root, tmp_path):
    root = _copy(acdc_root, tmp_path, "no_ed")
    info = next((root / "database" / "training").glob("patient*/Info.cfg"))
    info.write_text("ES: 2\nGroup: NOR\n")
    with pytest.raises(CardiacDataError, match="no 'ED' entry"):
        discover_acdc(root)
    info.write_text("ED: 3\nES: 2\n")  # ED gt file for frame 3 does not exist
    with pytest.raises(CardiacDataError, match="ED=3.*missing"):
        discover_acdc(root)


def test_mnms_subject_missing_from_csv_and_ed_out_of_range(mnms_root, tmp_path):
    root = _copy(mnms_root, tmp_path, "m")
    csv_path = next((root / "OpenDataset").glob("*.csv"))
    rows = list(csv.reader(open(csv_path)))
    code = rows[1][1]
    csv_path.write_text("\n".join(",".join(r) for r in rows if r[1] != code) + "\n")
    with pytest.raises(CardiacDataError, match=f"{code}.*end-diastolic"):
        discover_mnms(root, "training")
    rec = dict(discover_mnms(mnms_root, "training")[0], ed_frame=9)
    with pytest.raises(CardiacDataError, match="3 frames but the end-diastolic frame index is 9"):
        load_cardiac_ed(rec)


def test_empty_and_one_label_masks_error(mnms_root, tmp_path):
    rec = discover_mnms(mnms_root, "training")[0]
    gt = np.asarray(nib.load(rec["label"]).dataobj)
    empty_frame = next(t for t in range(gt.shape[3]) if not gt[..., t].any())
    with pytest.raises(CardiacDataError, match="empty at the end-diastolic frame"):
        load_cardiac_ed({**rec, "ed_frame": empty_frame})
    one = gt.copy()
    one[one > 1] = 0
    path = tmp_path / "one_sa_gt.nii.gz"
    _save(path, one)
    with pytest.raises(CardiacDataError, match=r"lacks \['MYO', 'RV'\]"):
        load_cardiac_ed({**rec, "label": str(path)})


def test_3d_where_4d_expected_nonfinite_and_unreadable(mnms_root, tmp_path):
    rec = discover_mnms(mnms_root, "training")[0]
    img4 = np.asarray(nib.load(rec["image"]).dataobj).astype(np.float32)
    p3 = tmp_path / "x_sa.nii.gz"
    _save(p3, img4[..., 0])
    with pytest.raises(CardiacDataError, match="3-D.*4-D cine"):
        load_cardiac_ed({**rec, "image": str(p3)})
    bad = img4.copy()
    bad[0, 0, 0, rec["ed_frame"]] = np.nan
    pn = tmp_path / "nan_sa.nii.gz"
    _save(pn, bad)
    with pytest.raises(CardiacDataError, match="1 non-finite voxels"):
        load_cardiac_ed({**rec, "image": str(pn)})
    pt = tmp_path / "trunc_sa.nii.gz"
    data = gzip.decompress(open(rec["image"], "rb").read())
    pt.write_bytes(gzip.compress(data[: len(data) // 3]))
    with pytest.raises(CardiacDataError, match="trunc_sa.nii.gz' cannot be read"):
        load_cardiac_ed({**rec, "image": str(pt)})
    with pytest.raises(CardiacDataError, match="does not exist"):
        load_cardiac_ed({**rec, "image": str(tmp_path / "nope.nii.gz")})


def test_plain_image_label_pairs_load_as_one_frame(acdc_root, tmp_path):
    """MONAI Label's ``{image, label}`` records (no ``ed_frame``): a 2-D slice or a 3-D stack, internal labels."""
    case = load_cardiac_ed(discover_acdc(acdc_root)[0])
    z = next(z for z in range(case["label"].shape[2]) if set(np.unique(case["label"][..., z])) >= {1, 2, 3})
    affine = np.diag([1.5, 1.5, 8.0, 1.0])
    nib.save(nib.Nifti1Image(case["image"][..., z], affine), tmp_path / "sa.nii.gz")
    nib.save(nib.Nifti1Image(case["label"][..., z].astype(np.uint8), affine), tmp_path / "sa_seg.nii.gz")
    pair = load_cardiac_ed({"image": str(tmp_path / "sa.nii.gz"), "label": str(tmp_path / "sa_seg.nii.gz")})
    assert pair["image"].shape == case["image"].shape[:2] + (1,)
    assert np.array_equal(pair["label"][..., 0], case["label"][..., z])  # the internal numbering is kept
    nib.save(
        nib.Nifti1Image(case["label"][..., z][..., None, None].repeat(3, 3).astype(np.uint8), affine),
        tmp_path / "cine.nii.gz",
    )
    with pytest.raises(CardiacDataError, match=r"cine.nii.gz.*without 'ed_frame'"):
        load_cardiac_ed({"image": str(tmp_path / "sa.nii.gz"), "label": str(tmp_path / "cine.nii.gz")})
    empty = np.zeros_like(case["label"][..., z], dtype=np.uint8)
    nib.save(nib.Nifti1Image(empty, affine), tmp_path / "empty.nii.gz")
    with pytest.raises(CardiacDataError, match=r"empty.nii.gz' is empty$"):
        load_cardiac_ed({"image": str(tmp_path / "sa.nii.gz"), "label": str(tmp_path / "empty.nii.gz")})
