"""Issue 17 (cardiac part): wrong cardiac data is refused with the file named; orientation; no test split.

Every malformed-input case writes a tiny synthetic ACDC or M&Ms-1 layout
(:mod:`monai_genvq.data.synthetic_cardiac`), breaks one thing, and checks that discovery or
loading raises the expected error type with a message naming the file and the problem.
"""

import csv
import gzip
import shutil
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_genvq.data import (
    CardiacDataError,
    cardiac_datalists,
    discover_acdc,
    discover_mnms,
    generate_synthetic_acdc,
    generate_synthetic_mnms,
    load_cardiac_ed,
)
from monai_genvq.data.cardiac import (
    ENCLOSED_MARGIN,
    ENCLOSED_MIN,
    INPLANE_SPACING_MM,
    SLICE_SPACING_MM,
    canonical_axcodes,
    check_label_convention,
    map_labels,
)
from monai_genvq.data.cardiac_datalist import MissingSplit
from monai_genvq.transforms import CardiacAlignment, CardiacAlignmentd, LoadCardiacEDd

SMALL = {"shape": (96, 96), "n_slices": 6, "n_frames": 3}


@pytest.fixture(scope="module")
def acdc_src(tmp_path_factory):
    return generate_synthetic_acdc(tmp_path_factory.mktemp("acdc"), n_train=2, n_test=1, seed=3, **SMALL)


@pytest.fixture(scope="module")
def mnms_src(tmp_path_factory):
    return generate_synthetic_mnms(
        tmp_path_factory.mktemp("mnms"), n_train=2, n_val=0, n_test=1, n_unlabeled=0, seed=4, **SMALL
    )


# ------------------------------------------------------------------ helpers that break one thing
def _acdc_patient(root: Path) -> tuple[Path, dict]:
    folder = root / "database" / "training" / "patient001"
    info = dict(line.split(": ", 1) for line in (folder / "Info.cfg").read_text().splitlines())
    return folder, info


def _acdc_ed_files(root: Path) -> tuple[Path, Path]:
    folder, info = _acdc_patient(root)
    ed = int(info["ED"])
    return folder / f"patient001_frame{ed:02d}.nii.gz", folder / f"patient001_frame{ed:02d}_gt.nii.gz"


def _mnms_subject(root: Path) -> tuple[Path, Path, str]:
    folder = sorted((root / "OpenDataset" / "Training" / "Labeled").iterdir())[0]
    code = folder.name
    return folder / f"{code}_sa.nii.gz", folder / f"{code}_sa_gt.nii.gz", code


def _csv(root: Path) -> Path:
    return next((root / "OpenDataset").glob("*.csv"))


def _read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def _edit_csv(root: Path, code: str, column: str, value: str) -> None:
    rows = _read_rows(_csv(root))
    j = rows[0].index(column)
    for row in rows[1:]:
        if row[1] == code:
            row[j] = value
    _write_rows(_csv(root), rows)


def _rewrite(path: Path, fn) -> None:
    """Replace a NIfTI file's data by ``fn(data)`` keeping its header and affine."""
    img = nib.load(str(path))
    data = np.asarray(fn(np.asarray(img.dataobj)))
    header = img.header.copy()
    header.set_data_dtype(data.dtype)
    nib.save(nib.Nifti1Image(data, img.affine, header=header), str(path))


def _set_pixdim(path: Path, axis: int, value: float) -> None:
    """Write a raw ``pixdim`` value into the file's bytes (nibabel fixes zero / negative sizes when it saves)."""
    raw = bytearray(gzip.decompress(path.read_bytes()))
    offset = 76 + 4 * (axis + 1)  # NIfTI-1 header: pixdim is float32[8] at byte 76
    raw[offset : offset + 4] = struct.pack("<f", value)
    path.write_bytes(gzip.compress(bytes(raw)))


def _swap_lv_rv(data):
    out = data.copy()
    out[data == 1], out[data == 3] = 3, 1
    return out


def _load_acdc(root):
    return load_cardiac_ed(discover_acdc(root, "training")[0])


def _load_mnms(root):
    return load_cardiac_ed(discover_mnms(root, "training")[0])


# Each case: (layout, break(root) -> None, load(root), error type, file name fn(root), problem word).
def _case_acdc_swapped(root):
    _rewrite(_acdc_ed_files(root)[1], _swap_lv_rv)


def _case_mnms_swapped(root):
    _rewrite(_mnms_subject(root)[1], _swap_lv_rv)


def _case_acdc_spacing_zero(root):
    _set_pixdim(_acdc_ed_files(root)[0], 0, 0.0)


def _case_acdc_spacing_negative(root):
    _set_pixdim(_acdc_ed_files(root)[1], 1, -1.5)


def _case_acdc_spacing_nan(root):
    _set_pixdim(_acdc_ed_files(root)[0], 2, float("nan"))


def _case_mnms_slice_too_thick(root):
    _set_pixdim(_mnms_subject(root)[0], 2, 60.0)


def _case_mnms_inplane_too_small(root):
    _set_pixdim(_mnms_subject(root)[1], 0, 0.0015)  # metres written as mm


def _info_set(root, key, value):
    folder, info = _acdc_patient(root)
    info[key] = value
    (folder / "Info.cfg").write_text("".join(f"{k}: {v}\n" for k, v in info.items()))


def _case_acdc_ed_fractional(root):
    _info_set(root, "ED", "1.5")


def _case_acdc_es_fractional(root):
    _info_set(root, "ES", "2.5")


def _case_acdc_ed_beyond_nbframe(root):
    folder, info = _acdc_patient(root)
    _info_set(root, "ED", str(int(info["NbFrame"]) + 1))


def _case_acdc_ed_zero(root):
    _info_set(root, "ED", "0")


def _case_acdc_ed_beyond_4d(root):
    """Info.cfg claims 5 frames and ED=5 (a ground truth for it exists) but the 4-D file holds 3."""
    folder, info = _acdc_patient(root)
    frame, gt = _acdc_ed_files(root)
    frame.unlink()
    gt.rename(folder / "patient001_frame05_gt.nii.gz")
    _info_set(root, "NbFrame", "5")
    _info_set(root, "ED", "5")


def _mnms_code(root):
    return _mnms_subject(root)[2]


def _case_csv_ed_fractional(root):
    _edit_csv(root, _mnms_code(root), "ED", "1.5")


def _case_csv_ed_out_of_range(root):
    _edit_csv(root, _mnms_code(root), "ED", "7")


def _case_csv_ed_negative(root):
    _edit_csv(root, _mnms_code(root), "ED", "-1")


def _case_csv_ed_empty(root):
    _edit_csv(root, _mnms_code(root), "ED", "")


def _case_csv_short_row(root):
    rows = _read_rows(_csv(root))
    rows[1] = rows[1][:4]
    _write_rows(_csv(root), rows)


def _case_csv_not_utf8(root):
    path = _csv(root)
    path.write_bytes(path.read_bytes().replace(b"Siemens", "Siemens \xe9".encode("latin-1"), 1))


def _case_csv_subject_without_row(root):
    rows = _read_rows(_csv(root))
    _write_rows(_csv(root), [r for r in rows if r[1] != _mnms_code(root)])


def _case_csv_missing_column(root):
    rows = _read_rows(_csv(root))
    j = rows[0].index("ED")
    _write_rows(_csv(root), [r[:j] + r[j + 1 :] for r in rows])


def _case_csv_duplicate_subject(root):
    rows = _read_rows(_csv(root))
    _write_rows(_csv(root), rows + [rows[1]])


def _case_acdc_shape_mismatch(root):
    _rewrite(_acdc_ed_files(root)[1], lambda d: d[:-4])


def _case_mnms_shape_mismatch(root):
    _rewrite(_mnms_subject(root)[1], lambda d: d[:, :-2])


def _case_acdc_gt_mirrored(root):
    """Only the ground truth is rewritten with a mirrored affine: image and label no longer overlay."""
    _write_reoriented(_acdc_ed_files(root)[1], _acdc_ed_files(root)[1], "mirror_x")


def _case_acdc_label_value(root):
    _rewrite(_acdc_ed_files(root)[1], lambda d: np.where(d == 2, 5, d).astype(np.uint8))


def _case_mnms_label_value(root):
    _rewrite(_mnms_subject(root)[1], lambda d: np.where(d == 2, 7, d).astype(np.uint8))


def _case_acdc_label_fractional(root):
    _rewrite(_acdc_ed_files(root)[1], lambda d: np.where(d == 2, 2.5, d).astype(np.float32))


_IMAGE_A = lambda r: _acdc_ed_files(r)[0].name  # noqa: E731
_GT_A = lambda r: _acdc_ed_files(r)[1].name  # noqa: E731
_IMAGE_M = lambda r: _mnms_subject(r)[0].name  # noqa: E731
_GT_M = lambda r: _mnms_subject(r)[1].name  # noqa: E731
_INFO = lambda r: "Info.cfg"  # noqa: E731
_CSV = lambda r: _csv(r).name  # noqa: E731

CASES = {
    # label convention detected from anatomy
    "acdc_labels_in_mnms_numbering": ("acdc", _case_acdc_swapped, _load_acdc, CardiacDataError, _GT_A, "swapped"),
    "mnms_labels_in_acdc_numbering": ("mnms", _case_mnms_swapped, _load_mnms, CardiacDataError, _GT_M, "swapped"),
    # voxel spacing
    "acdc_spacing_zero": ("acdc", _case_acdc_spacing_zero, _load_acdc, CardiacDataError, _IMAGE_A, "spacing"),
    "acdc_spacing_negative": ("acdc", _case_acdc_spacing_negative, _load_acdc, CardiacDataError, _GT_A, "spacing"),
    "acdc_spacing_nan": ("acdc", _case_acdc_spacing_nan, _load_acdc, CardiacDataError, _IMAGE_A, "spacing"),
    "mnms_slice_too_thick": ("mnms", _case_mnms_slice_too_thick, _load_mnms, CardiacDataError, _IMAGE_M, "60.0"),
    "mnms_inplane_in_metres": ("mnms", _case_mnms_inplane_too_small, _load_mnms, CardiacDataError, _GT_M, "spacing"),
    # ED / ES indices
    "acdc_ed_fractional": ("acdc", _case_acdc_ed_fractional, _load_acdc, CardiacDataError, _INFO, "'1.5'"),
    "acdc_es_fractional": ("acdc", _case_acdc_es_fractional, _load_acdc, CardiacDataError, _INFO, "'2.5'"),
    "acdc_ed_beyond_nbframe": ("acdc", _case_acdc_ed_beyond_nbframe, _load_acdc, CardiacDataError, _INFO, "NbFrame"),
    "acdc_ed_zero": ("acdc", _case_acdc_ed_zero, _load_acdc, CardiacDataError, _INFO, "1-based"),
    "acdc_ed_beyond_4d_frames": (
        "acdc",
        _case_acdc_ed_beyond_4d,
        _load_acdc,
        CardiacDataError,
        lambda r: "patient001_4d.nii.gz",
        "out of range",
    ),
    "csv_ed_fractional": ("mnms", _case_csv_ed_fractional, _load_mnms, CardiacDataError, _CSV, "'1.5'"),
    "csv_ed_out_of_range": ("mnms", _case_csv_ed_out_of_range, discover_mnms, CardiacDataError, _CSV, "out of range"),
    "csv_ed_negative": ("mnms", _case_csv_ed_negative, _load_mnms, CardiacDataError, _CSV, "'-1'"),
    # M&Ms information CSV
    "csv_ed_empty": ("mnms", _case_csv_ed_empty, _load_mnms, CardiacDataError, _CSV, "empty"),
    "csv_short_row": ("mnms", _case_csv_short_row, _load_mnms, CardiacDataError, _CSV, "field(s) but the header"),
    "csv_not_utf8": ("mnms", _case_csv_not_utf8, _load_mnms, CardiacDataError, _CSV, "UTF-8"),
    "csv_subject_without_row": ("mnms", _case_csv_subject_without_row, _load_mnms, CardiacDataError, _CSV, "no row"),
    "csv_missing_column": ("mnms", _case_csv_missing_column, _load_mnms, CardiacDataError, _CSV, "lacks column"),
    "csv_duplicate_subject": ("mnms", _case_csv_duplicate_subject, _load_mnms, CardiacDataError, _CSV, "twice"),
    # image / label consistency
    "acdc_shape_mismatch": ("acdc", _case_acdc_shape_mismatch, _load_acdc, CardiacDataError, _GT_A, "shape"),
    "mnms_shape_mismatch": ("mnms", _case_mnms_shape_mismatch, _load_mnms, CardiacDataError, _GT_M, "shape"),
    "acdc_gt_orientation_differs": ("acdc", _case_acdc_gt_mirrored, _load_acdc, CardiacDataError, _GT_A, "orientation"),
    "acdc_label_value_5": ("acdc", _case_acdc_label_value, _load_acdc, CardiacDataError, _GT_A, "[5]"),
    "mnms_label_value_7": ("mnms", _case_mnms_label_value, _load_mnms, CardiacDataError, _GT_M, "[7]"),
    "acdc_label_fractional": ("acdc", _case_acdc_label_fractional, _load_acdc, CardiacDataError, _GT_A, "[2.5]"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_cardiac_input_is_refused_naming_the_file(name, acdc_src, mnms_src, tmp_path):
    """Each malformed input raises the expected error whose message names the file and the problem."""
    layout, breaker, load, error, file_name, word = CASES[name]
    root = tmp_path / layout
    shutil.copytree(acdc_src if layout == "acdc" else mnms_src, root)
    expected_file = file_name(root)  # before breaking: the break may rename or remove files
    breaker(root)
    with pytest.raises(error) as info:
        load(root)
    message = str(info.value)
    assert expected_file in message, message
    assert word in message, message


def test_shape_mismatch_names_both_files(acdc_src, tmp_path):
    root = tmp_path / "a"
    shutil.copytree(acdc_src, root)
    image, gt = _acdc_ed_files(root)
    _case_acdc_shape_mismatch(root)
    with pytest.raises(CardiacDataError) as info:
        _load_acdc(root)
    assert image.name in str(info.value) and gt.name in str(info.value)


def test_swapped_convention_message_names_the_option(acdc_src, mnms_src, tmp_path):
    """The refusal names the convention to use: ``--label_convention mnms`` for an ACDC folder, and reverse."""
    for layout, src, breaker, load, other in (
        ("acdc", acdc_src, _case_acdc_swapped, _load_acdc, "mnms"),
        ("mnms", mnms_src, _case_mnms_swapped, _load_mnms, "acdc"),
    ):
        root = tmp_path / layout
        shutil.copytree(src, root)
        breaker(root)
        with pytest.raises(CardiacDataError, match=f"--label_convention {other}"):
            load(root)
        # the option works: the same files load with the other numbering, LV and RV back in place
        discover = discover_acdc if layout == "acdc" else discover_mnms
        fixed = load_cardiac_ed(discover(root, "training", label_convention=other)[0])
        reference = load_cardiac_ed(discover(src, "training")[0])
        np.testing.assert_array_equal(fixed["label"], reference["label"])


@pytest.mark.parametrize("axis", [0, 2])
def test_spacing_at_the_bounds_is_accepted_and_beyond_refused(acdc_src, tmp_path, axis):
    """The bounds are inclusive: a spacing on a bound loads, one 10 % beyond it is refused."""
    lo, hi = INPLANE_SPACING_MM if axis < 2 else SLICE_SPACING_MM
    root = tmp_path / "a"
    shutil.copytree(acdc_src, root)
    image, gt = _acdc_ed_files(root)
    for bound, beyond in ((lo, lo * 0.9), (hi, hi * 1.1)):
        for path in (image, gt):
            _set_pixdim(path, axis, bound)
        _load_acdc(root)
        _set_pixdim(image, axis, beyond)
        with pytest.raises(CardiacDataError, match="implausible for cardiac cine MRI"):
            _load_acdc(root)


@pytest.mark.parametrize("value", [0.0, float("nan"), 50.0])
def test_single_slice_files_skip_the_spacing_check_of_their_one_slice(acdc_src, tmp_path, value):
    """A single-slice image and ground truth often leave the slice size unset: an axis of length 1 is not
    checked (as ``volumes.nifti_spacing_problem`` does), for the image and the ground truth alike."""
    root = tmp_path / "a"
    shutil.copytree(acdc_src, root)
    image, gt = _acdc_ed_files(root)
    heart = int(np.argmax(np.asarray(nib.load(str(gt)).dataobj).reshape(-1, nib.load(str(gt)).shape[2]).sum(0)))
    for path in (image, gt):
        _rewrite(path, lambda d: d[:, :, heart : heart + 1])
        _set_pixdim(path, 2, value)
    loaded = _load_acdc(root)
    assert loaded["image"].shape[2] == 1 and loaded["label"].shape == loaded["image"].shape
    _set_pixdim(gt, 0, 0.0)  # an axis longer than one voxel is still checked
    with pytest.raises(CardiacDataError, match="implausible for cardiac cine MRI"):
        _load_acdc(root)


# ------------------------------------------------------------------ label convention: known answers
def test_synthetic_hearts_pass_the_convention_check_both_layouts(acdc_src, mnms_src):
    """Known answer: the generator's LV is inside the myocardial ring, its RV is not -> every subject accepted."""
    records = discover_acdc(acdc_src, "all") + discover_mnms(mnms_src, "all")
    for rec in records:
        enclosure = check_label_convention(load_cardiac_ed(rec)["label"])
        assert enclosure["LV"] > 0.9 and enclosure["RV"] < 0.3, (rec["subject"], enclosure)


def test_convention_check_on_swapped_synthetic_labels(acdc_src):
    """Known answer the other way: the same synthetic map with 1 <-> 3 swapped is refused, naming the source."""
    label = load_cardiac_ed(discover_acdc(acdc_src)[0])["label"]
    check_label_convention(label, "acdc", "ground truth 'x_gt.nii.gz'")
    with pytest.raises(CardiacDataError, match=r"x_gt\.nii\.gz.*swapped.*label_convention='mnms'"):
        check_label_convention(_swap_lv_rv(label), "acdc", "ground truth 'x_gt.nii.gz'")


def _realistic_slice(open_fraction: float = 0.0) -> np.ndarray:
    """A short-axis slice whose RV crescent lies directly on the septum (no gap) and whose myocardial
    ring is open over ``open_fraction`` of its circumference (a basal slice at the outflow tract)."""
    x, y = np.meshgrid(np.arange(80) - 40.0, np.arange(80) - 40.0, indexing="ij")
    r, ang = np.hypot(x, y), np.arctan2(y, x)
    lab = np.zeros((80, 80), np.uint8)
    in_gap = np.abs(np.angle(np.exp(1j * (ang - np.pi / 2)))) < np.pi * open_fraction
    lab[(r < 18) & ~in_gap] = 2
    lab[r < 12] = 1
    rv = np.hypot(x + 14, (y + 4) / 1.6) < 24
    lab[rv & (r >= 18)] = 3
    return lab


def test_convention_check_accepts_realistic_hearts_and_refuses_their_swap():
    """RV touching the septum over a long stretch and a partly open basal LV ring are still accepted."""
    for open_fraction in (0.0, 0.15, 0.25):
        lab = np.stack([_realistic_slice(open_fraction)] * 3, axis=-1)
        enclosure = check_label_convention(lab, "mnms")
        assert enclosure["RV"] < ENCLOSED_MIN and enclosure["LV"] >= ENCLOSED_MIN, enclosure
        with pytest.raises(CardiacDataError, match="swapped"):
            check_label_convention(map_labels(lab, {0: 0, 1: 3, 2: 2, 3: 1}), "mnms")
    assert 0 < ENCLOSED_MARGIN < ENCLOSED_MIN


# ------------------------------------------------------------------ orientation
def _write_reoriented(src: Path, dst: Path, op: str) -> None:
    """Rewrite a NIfTI file with the same anatomy in world space but other voxel axes.

    ``"mirror_x"``: data flipped along x and the affine's x column negated (translation moved to
    the other end); ``"transpose_xy"``: x and y swapped in data and affine.
    """
    img = nib.load(str(src))
    data, affine = np.asarray(img.dataobj), img.affine.copy()
    if op == "mirror_x":
        flip = np.eye(4)
        flip[0, 0], flip[0, 3] = -1.0, data.shape[0] - 1
        data, affine = data[::-1].copy(), affine @ flip
    else:
        perm = np.eye(4)[:, [1, 0, 2, 3]]
        data, affine = np.swapaxes(data, 0, 1).copy(), affine @ perm
    nib.save(nib.Nifti1Image(data, affine), str(dst))


@pytest.mark.parametrize("op", ["mirror_x", "transpose_xy"])
def test_same_anatomy_with_other_voxel_axes_aligns_identically(acdc_src, tmp_path, op):
    """A subject stored mirrored (flipped data, negated affine column) aligns exactly like the original.

    Before the orientation step (``load_cardiac_ed`` passed the voxel arrays on as stored) the
    mirrored copy was aligned as the mirror image of the heart: the last assertion shows that
    the voxel-space alignment of the stored arrays differs.
    """
    root = tmp_path / "a"
    shutil.copytree(acdc_src, root)
    rec = discover_acdc(root)[0]
    align = CardiacAlignmentd(keys=("image", "label"), size=64)
    reference = align(LoadCardiacEDd()(rec))
    for key in ("image", "label"):
        _write_reoriented(Path(rec[key]), Path(rec[key]), op)
    moved = align(LoadCardiacEDd()(rec))
    torch.testing.assert_close(moved["image"], reference["image"])
    torch.testing.assert_close(moved["label"], reference["label"])
    # without the orientation step: the stored voxel arrays give a different (mirrored) result
    raw_image = np.asarray(nib.load(rec["image"]).dataobj, np.float32)
    raw_label = map_labels(np.asarray(nib.load(rec["label"]).dataobj), "acdc")
    stored = CardiacAlignment(size=64)(raw_image, raw_label)
    assert not torch.equal(stored[1], reference["label"])


def test_mirrored_mnms_4d_subject_aligns_identically(mnms_src, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(mnms_src, root)
    rec = discover_mnms(root)[0]
    align = CardiacAlignmentd(keys=("image", "label"), size=64)
    reference = align(LoadCardiacEDd()(rec))
    for key in ("image", "label"):
        _write_reoriented(Path(rec[key]), Path(rec[key]), "mirror_x")
    moved = align(LoadCardiacEDd()(rec))
    torch.testing.assert_close(moved["image"], reference["image"])
    torch.testing.assert_close(moved["label"], reference["label"])


def test_synthetic_data_is_stored_ras_so_loading_keeps_its_voxel_order(acdc_src):
    """The generator writes a positive diagonal affine (RAS): the orientation step leaves its arrays as stored."""
    rec = discover_acdc(acdc_src)[0]
    img = nib.load(rec["image"])
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S") and canonical_axcodes(img.affine) == "RAS"
    loaded = load_cardiac_ed(rec)
    np.testing.assert_array_equal(loaded["image"], np.asarray(img.dataobj, np.float32))
    np.testing.assert_allclose(loaded["spacing"], img.header.get_zooms()[:3])


def _oblique(angle: float, zooms) -> np.ndarray:
    """A double-oblique short-axis affine: rotated by ``angle`` in-plane, then tilted 30 degrees out of plane."""
    c, s = np.cos(angle), np.sin(angle)
    spin = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    t = np.deg2rad(30)
    tilt = np.array([[1.0, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3] = tilt @ spin @ np.diag(zooms)
    affine[:3, 3] = [-40.0, 25.0, 10.0]
    return affine


def test_orientation_near_45_degrees_compares_directions_with_a_tolerance(acdc_src, tmp_path):
    """A double-oblique stack near 45 degrees: the ground truth's affine differs from the image's by a 2e-6 rad
    rotation (qform / sform rounding), which flips its axis codes; it is the same orientation and loads, with
    the label reoriented exactly like the image. A truly different orientation (a few degrees) is refused."""
    root = tmp_path / "a"
    shutil.copytree(acdc_src, root)
    image, gt = _acdc_ed_files(root)
    zooms = nib.load(str(image)).header.get_zooms()[:3]
    near = (np.pi / 4 - 1e-6, np.pi / 4 + 1e-6)
    assert canonical_axcodes(_oblique(near[0], zooms), True) != canonical_axcodes(_oblique(near[1], zooms), True)

    def write(path, angle):
        nib.save(nib.Nifti1Image(np.asarray(nib.load(str(path)).dataobj), _oblique(angle, zooms)), str(path))

    write(image, near[0])
    write(gt, near[0])
    reference = _load_acdc(root)
    write(gt, near[1])
    loaded = _load_acdc(root)
    np.testing.assert_array_equal(loaded["label"], reference["label"])
    np.testing.assert_array_equal(loaded["image"], reference["image"])
    apart = near[0] - np.deg2rad(3)
    assert canonical_axcodes(_oblique(apart, zooms), True) == canonical_axcodes(_oblique(near[0], zooms), True)
    write(gt, apart)  # the same axis codes as the image (RAS), but 3 degrees apart
    with pytest.raises(CardiacDataError, match="different orientations") as err:
        _load_acdc(root)
    assert gt.name in str(err.value)


def test_orientation_keeps_the_slice_axis_of_an_oblique_stack():
    """A stack whose slice normal is closest to A stays a stack along the third axis (not moved in-plane)."""
    affine = np.array([[1.5, 0, 0, 0], [0, 0, 10.0, 0], [0, -1.5, 0, 0], [0, 0, 0, 1]])  # axes R, I, A
    assert canonical_axcodes(affine) == "RSA"


# ------------------------------------------------------------------ no testing split needed to train
def _trainable(lists):
    train = [LoadCardiacEDd()(r) for r in lists["train"]]
    return [CardiacAlignmentd(keys=("image", "label"), size=32)(d)["image"].shape for d in train]


def test_acdc_without_testing_folder_trains_and_evaluation_names_the_folder(acdc_src, tmp_path):
    from monai.data import Dataset

    root = tmp_path / "a"
    shutil.copytree(acdc_src, root)
    shutil.rmtree(root / "database" / "testing")
    lists = cardiac_datalists("acdc", root, val_fraction=0.5)
    assert len(lists["train"]) == 1 and len(lists["validation"]) == 1
    assert _trainable(lists) == [(1, 32, 32)]
    assert isinstance(lists["test"], MissingSplit) and not lists["test"]
    with pytest.raises(FileNotFoundError, match=r"database[/\\]testing' does not exist"):
        len(Dataset(data=lists["test"]))
    from monai_genvq.apps.anatomical_prior import anatomical_prior_datalists

    prior = anatomical_prior_datalists(root, max_subjects=1)
    assert prior["prior"] and prior["image"]
    with pytest.raises(FileNotFoundError, match="testing"):
        list(prior["test"])


def test_mnms_without_testing_folder_trains_and_evaluation_names_the_folder(mnms_src, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(mnms_src, root)
    shutil.rmtree(root / "OpenDataset" / "Testing")
    lists = cardiac_datalists("mnms", root, val_fraction=0.5)
    assert _trainable(lists) == [(1, 32, 32)]
    with pytest.raises(FileNotFoundError, match=r"OpenDataset[/\\]Testing' does not exist"):
        len(lists["test"])


@pytest.mark.parametrize("bundle", ["cardiac_attri_sivae", "vq_quantizers", "anatomical_prior_seg"])
def test_bundles_take_the_label_convention_option_the_refusal_names(acdc_src, tmp_path, bundle):
    """``--label_convention mnms`` (the option the message names) reaches the loader in every bundle on ACDC data:
    an ACDC folder with M&Ms numbering loads with LV and RV in place."""
    from conftest import REPO, parse_bundle

    root = tmp_path / "acdc"
    shutil.copytree(acdc_src, root)
    _case_acdc_swapped(root)
    config = [REPO / "bundles" / bundle / "configs" / "train.json"]
    swapped = _acdc_ed_files(root)[1].parent.name  # the subject whose ground truth has M&Ms numbering

    def record_of(*overrides):
        lists = parse_bundle(config, tmp_path, "--dataset_dir", str(root), *overrides).get_parsed_content("datalists")
        return next(r for v in lists.values() if v for r in v if r["subject"] == swapped)

    with pytest.raises(CardiacDataError, match="--label_convention mnms"):
        load_cardiac_ed(record_of())
    record = record_of("--label_convention", "mnms")
    assert record["label_convention"] == "mnms"
    reference = next(r for r in discover_acdc(acdc_src, "training") if r["subject"] == swapped)
    np.testing.assert_array_equal(load_cardiac_ed(record)["label"], load_cardiac_ed(reference)["label"])
