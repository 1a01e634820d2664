"""Wrong volume data is refused with the file (or option) named: BraTS, cryo-ET, toy, 2-D slices, checkpoints,
inference output names (issue 17). Every case is a tiny file in tmp_path; each asserts the error type, the
file name (or option) in the message, and a word of the problem."""

import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import mrcfile
import nibabel as nib
import numpy as np
import pytest
import torch

from monai_genvq.apps.hyperbolic import BraTSRegion, HyperbolicSegmentation, split_test_records
from monai_genvq.data import (
    DataSplitError,
    LoadVolume,
    LoadVolumed,
    VolumeFileError,
    discover_slices,
    discover_volumes,
    require_input_files,
    write_mrc,
)
from monai_genvq.handlers import CheckedCheckpointLoader, CorruptCheckpointError, load_checkpoint_file

REPO = Path(__file__).resolve().parents[1]
BUNDLES = REPO / "bundles"
SHAPE = (8, 8, 6)


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def _brats_case(root: Path, i: int, seg: np.ndarray | None = None, flair_shape=SHAPE, t1_shape=SHAPE) -> dict:
    name = f"BraTS2021_{i:05d}"
    case = root / name
    rng = np.random.default_rng(i)
    flair = _nifti(case / f"{name}_flair.nii.gz", rng.random(flair_shape, dtype=np.float32) + 1)
    t1 = _nifti(case / f"{name}_t1.nii.gz", rng.random(t1_shape, dtype=np.float32) + 1)
    if seg is None:
        seg = np.zeros(SHAPE, np.uint8)
        seg[2:5, 2:5, 2:4] = 2
    label = _nifti(case / f"{name}_seg.nii.gz", seg)
    return {"image": [str(flair), str(t1)], "label": str(label), "name": name}


class _Unused(torch.nn.Module):
    """The checks run before the network is used."""

    def forward(self, x):  # pragma: no cover
        raise AssertionError("the network must not run on refused data")


def _segmentation(records, levels, tmp_path, label_transforms=None, checkpoint=None):
    return HyperbolicSegmentation(
        _Unused(),
        records,
        levels,
        tmp_path / "eval",
        label_transforms=label_transforms,
        checkpoint=checkpoint,
        figures=False,
    )


def _assert_names(err: Exception, *parts: str) -> None:
    text = str(err)
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"


# ---------------------------------------------------------------- 1. labels without any tumour / foreground
EMPTY_LABEL_CASES = ["brats_2_cases", "brats_5_cases_shows_first_3", "cryoet_class_masks", "toy_level"]


@pytest.mark.parametrize("case", EMPTY_LABEL_CASES)
def test_all_empty_labels_refused_naming_the_label_files(case, tmp_path):
    if case.startswith("brats"):
        n = 2 if case == "brats_2_cases" else 5
        records = [_brats_case(tmp_path, i, seg=np.zeros(SHAPE, np.uint8)) for i in range(n)]
        levels = {"whole_tumour": ("label", 2, [0, 1])}
        transforms = {"whole_tumour": BraTSRegion("whole_tumour", "2021")}
        word, named = "no tumour", [Path(r["label"]).name for r in records[:3]]
    elif case == "cryoet_class_masks":
        records = []
        for i in range(2):
            folder = tmp_path / f"model_{i}"
            write_mrc(folder / "reconstruction.mrc", np.random.rand(6, 8, 8).astype(np.float32), voxel_size=10.0)
            write_mrc(folder / "class_mask.mrc", np.zeros((6, 8, 8), np.int16), voxel_size=10.0)
            records.append({"image": str(folder / "reconstruction.mrc"), "label": str(folder / "class_mask.mrc")})
        levels, transforms = {"classes": ("label", 3, None)}, None
        word, named = "holds no foreground", ["model_0/class_mask.mrc", "model_1/class_mask.mrc"]
    else:
        img = _nifti(tmp_path / "imagesTs" / "toy_ts000.nii.gz", np.random.rand(*SHAPE).astype(np.float32))
        lab = _nifti(tmp_path / "labelsTs" / "toy_ts000_level1.nii.gz", np.zeros(SHAPE, np.uint8))
        records = [{"image": str(img), "label_level1": str(lab)}]
        levels, transforms = {"level1": ("label_level1", 2, [0, 1])}, None
        word, named = "holds no foreground", ["toy_ts000_level1.nii.gz"]
    with pytest.raises(VolumeFileError) as info:
        _segmentation(records, levels, tmp_path, transforms).run()
    _assert_names(info.value, word, *named)
    if case == "brats_5_cases_shows_first_3":
        _assert_names(info.value, "and 2 more")
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_one_empty_label_among_tumours_is_accepted(tmp_path):
    """A set where only some cases lack tumour is legitimate: the check only refuses all-empty sets."""
    records = [_brats_case(tmp_path, 0, seg=np.zeros(SHAPE, np.uint8)), _brats_case(tmp_path, 1)]
    seg = _segmentation(
        records, {"whole_tumour": ("label", 2, [0, 1])}, tmp_path, {"whole_tumour": BraTSRegion("whole_tumour")}
    )
    seg.check_records()


# ---------------------------------------------------------------- 2. image / label shape mismatch
SHAPE_CASES = ["brats_seg", "brats_modalities", "cryoet_mask", "toy_label"]


@pytest.mark.parametrize("case", SHAPE_CASES)
def test_shape_mismatch_names_both_files_and_shapes(case, tmp_path):
    if case == "brats_seg":
        rec = _brats_case(tmp_path, 0, seg=np.ones((8, 8, 5), np.uint8))
        records, levels = [rec], {"whole_tumour": ("label", 2, [0, 1])}
        files, shapes = [rec["label"], rec["image"][0]], ["(8, 8, 5)", "(8, 8, 6)"]
    elif case == "brats_modalities":
        rec = _brats_case(tmp_path, 0, t1_shape=(8, 7, 6))
        records, levels = [rec], {"whole_tumour": ("label", 2, [0, 1])}
        files, shapes = rec["image"], ["(8, 8, 6)", "(8, 7, 6)"]
    elif case == "cryoet_mask":
        folder = tmp_path / "model_0"
        tomo = write_mrc(folder / "reconstruction.mrc", np.random.rand(6, 8, 8).astype(np.float32), voxel_size=10.0)
        mask = write_mrc(folder / "class_mask.mrc", np.ones((6, 8, 7), np.int16), voxel_size=10.0)
        records, levels = [{"image": str(tomo), "label": str(mask)}], {"classes": ("label", 3, None)}
        files, shapes = [str(mask), str(tomo)], ["(6, 8, 7)", "(6, 8, 8)"]
    else:
        img = _nifti(tmp_path / "imagesTs" / "toy_ts000.nii.gz", np.random.rand(*SHAPE).astype(np.float32))
        lab = _nifti(tmp_path / "labelsTs" / "toy_ts000_level2.nii.gz", np.ones((6, 8, 8), np.uint8))
        records, levels = [{"image": str(img), "label_level2": str(lab)}], {"level2": ("label_level2", 4, None)}
        files, shapes = [str(lab), str(img)], ["(6, 8, 8)", "(8, 8, 6)"]
    with pytest.raises(VolumeFileError) as info:
        _segmentation(records, levels, tmp_path).run()
    _assert_names(info.value, "shape", *files, *shapes)


def test_channel_shape_mismatch_refused_by_the_config_loader(tmp_path):
    rec = _brats_case(tmp_path, 0, t1_shape=(8, 7, 6))
    with pytest.raises(VolumeFileError) as info:
        LoadVolumed("image", image_only=True, ensure_channel_first=True)({"image": rec["image"]})
    _assert_names(info.value, "differ in shape", *rec["image"], "(8, 7, 6)")


# ---------------------------------------------------------------- 3. --n_test larger than the data
N_TEST_CASES = [(3, "train"), (3, "test"), (7, "train"), (7, "test"), (0, "train"), (-1, "test")]


@pytest.mark.parametrize("n_test,part", N_TEST_CASES)
def test_n_test_that_leaves_no_training_or_test_data_is_refused(n_test, part, tmp_path):
    with pytest.raises(DataSplitError) as info:
        split_test_records(["a", "b", "c"], n_test, tmp_path / "brats", part)
    _assert_names(info.value, f"n_test={n_test}", str(tmp_path / "brats"), "3 case")


@pytest.mark.parametrize(
    "bundle,key", [("brats", "train_records"), ("brats", "eval_records"), ("cryoet", "train_records")]
)
def test_bundle_configs_refuse_n_test_beyond_the_data(bundle, key, tmp_path):
    from monai.bundle import ConfigParser

    if bundle == "brats":
        for i in range(2):
            _brats_case(tmp_path / "data", i)
    else:
        for i in range(2):
            write_mrc(tmp_path / "data" / f"model_{i}" / "reconstruction.mrc", np.zeros((4, 4, 4), np.float32))
    folder = BUNDLES / f"hyperbolic_{bundle}_seg" / "configs"
    parser = ConfigParser()
    parser.read_config([str(folder / "train.json"), str(folder / "evaluate.json")])
    parser.update({"bundle_root": str(tmp_path), "dataset_dir": str(tmp_path / "data"), "n_test": 2})
    with pytest.raises(Exception) as info:  # ConfigParser wraps the error of the expression
        parser.get_parsed_content(key)
    err = info.value
    while not isinstance(err, DataSplitError) and err.__cause__ is not None:
        err = err.__cause__
    assert isinstance(err, DataSplitError), info.value
    _assert_names(err, "n_test=2", str(tmp_path / "data"), "2 case")
    parser.update({"n_test": 1})
    assert len(parser.get_parsed_content(key, lazy=False)) == 1


# ---------------------------------------------------------------- 4. voxel spacing zero / negative / non-finite
def _patched_nifti(
    path: Path, shape=SHAPE, pixdim: float = 1.0, axis: int = 1, sform_diag: float | None = None
) -> Path:
    """A NIfTI whose stored pixdim[axis] is ``pixdim`` (nibabel's writer would 'fix' 0 and negatives).

    With ``sform_diag`` the file also has an sform (code 2): the identity with ``sform_diag`` on ``axis``.
    """
    img = nib.Nifti1Image(np.ones(shape, np.float32), None)
    if sform_diag is not None:
        affine = np.eye(4)
        affine[axis - 1, axis - 1] = sform_diag
        img.header.set_sform(affine, code=2)
    raw = bytearray(img.header.binaryblock) + b"\0\0\0\0" + np.ones(shape, np.float32).tobytes(order="F")
    raw[76 + 4 * axis : 80 + 4 * axis] = struct.pack("<f", pixdim)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(bytes(raw)) if path.name.endswith(".gz") else bytes(raw))
    return path


# (kind, value, axis): "pixdim" = the header's pixdim is bad (the sform, if any, is fine);
# "sform" = the sform gives the axis a bad spacing (pixdim is fine)
SPACING_CASES = [
    ("pixdim", 0.0, 1),
    ("pixdim", -1.5, 2),
    ("pixdim_with_good_sform", float("nan"), 3),
    ("pixdim_with_good_sform", float("inf"), 1),
    ("sform", 0.0, 2),
    ("mrc", (-10.0, 10.0, 10.0), None),
    ("mrc", (10.0, float("nan"), 10.0), None),
    ("mrc", (10.0, 10.0, 0.0), None),
]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # nibabel on a NaN pixdim
@pytest.mark.parametrize("kind,value,axis", SPACING_CASES)
def test_bad_voxel_spacing_is_refused_naming_the_file(kind, value, axis, tmp_path):
    if kind != "mrc":
        path = tmp_path / "bad_spacing.nii.gz"
        if kind == "pixdim":
            _patched_nifti(path, pixdim=value, axis=axis)
        elif kind == "pixdim_with_good_sform":
            _patched_nifti(path, pixdim=value, axis=axis, sform_diag=1.0)
        else:
            _patched_nifti(path, pixdim=1.0, axis=axis, sform_diag=value)
        word = "spacing"
    else:
        path = write_mrc(tmp_path / "bad_voxel.mrc", np.ones((4, 5, 6), np.float32))
        with mrcfile.open(str(path), mode="r+") as mrc:  # set the cell directly: (x, y, z) Å per voxel
            z, y, x = value
            mrc.header.cella.x, mrc.header.cella.y, mrc.header.cella.z = x * 6, y * 5, z * 4
        word = "voxel size"
    with pytest.raises(VolumeFileError) as info:
        LoadVolume(image_only=True, ensure_channel_first=True)(str(path))
    _assert_names(info.value, path.name, word)


def test_unset_mrc_voxel_size_still_reads_as_one_angstrom(tmp_path):
    path = write_mrc(tmp_path / "unset.mrc", np.ones((4, 5, 6), np.float32))  # voxel size 0 on every axis
    img = LoadVolume(image_only=True, ensure_channel_first=True)(str(path))
    assert np.allclose(np.abs(np.asarray(img.affine)[:3, :3]).sum(0), 1.0)


def test_two_d_slice_with_zero_spacing_refused_at_discovery(tmp_path):
    _patched_nifti(tmp_path / "train" / "slice_0000.nii.gz", shape=(8, 8), pixdim=0.0, axis=2)
    with pytest.raises(VolumeFileError) as info:
        discover_slices(tmp_path, "train")
    _assert_names(info.value, "slice_0000.nii.gz", "spacing")


# ---------------------------------------------------------------- 5. truncated volume whose header reads
def _truncated(path: Path, shape) -> Path:
    _nifti(path, np.random.default_rng(0).random(shape, dtype=np.float32))
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
        path.write_bytes(gzip.compress(raw[: 352 + (len(raw) - 352) // 2]))  # header intact, data cut in half
    else:
        path.write_bytes(raw[: 352 + (len(raw) - 352) // 2])
    return path


TRUNCATED_CASES = ["slice_nii_gz", "slice_nii", "volume_nii_gz"]


@pytest.mark.parametrize("case", TRUNCATED_CASES)
def test_truncated_file_is_a_volume_file_error(case, tmp_path):
    shape = SHAPE if case.startswith("volume") else (16, 16)
    path = _truncated(tmp_path / ("cut.nii" if case == "slice_nii" else "cut.nii.gz"), shape)
    assert nib.load(str(path)).shape == shape  # the header still reads: only the data are short
    if case.startswith("slice"):  # the vq_quantizers slice pipeline (slices.json / inference.json) loader
        load = LoadVolumed("image", image_only=True)
        call = lambda: load({"image": str(path)})  # noqa: E731
    else:  # the hyperbolic evaluation's reader
        call = lambda: _segmentation(  # noqa: E731
            [{"image": str(path)}], {"c": (None, 2, None)}, tmp_path
        ).load(str(path))
    with pytest.raises(VolumeFileError) as info:
        call()
    _assert_names(info.value, str(path), "truncated")


def test_slice_configs_load_through_the_checked_loader():
    for config in ("slices.json", "inference.json"):
        text = (BUNDLES / "vq_quantizers" / "configs" / config).read_text()
        assert '"monai_genvq.data.LoadVolumed"' in text and '"LoadImaged"' not in text, config


# ---------------------------------------------------------------- 6. truncated / non-checkpoint model.pt
def _checkpoint(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "models" / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    net = torch.nn.Linear(3, 2)
    torch.save({"model": net.state_dict()}, path)
    if kind == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "code_object":  # a pickle that would run code / build arbitrary objects: refused by weights_only
        torch.save({"model": net}, path)
    return path


CHECKPOINT_KINDS = ["truncated", "empty", "text", "code_object"]
CHECKPOINT_USERS = ["load_checkpoint_file", "CheckedCheckpointLoader", "hyperbolic_evaluation", "prior_stage1_config"]


@pytest.mark.parametrize("user", CHECKPOINT_USERS)
@pytest.mark.parametrize("kind", CHECKPOINT_KINDS)
def test_bad_checkpoint_is_a_corrupt_checkpoint_error(kind, user, tmp_path):
    path = _checkpoint(tmp_path, kind)
    net = torch.nn.Linear(3, 2)
    if user == "load_checkpoint_file":
        call = lambda: load_checkpoint_file(path)  # noqa: E731
    elif user == "CheckedCheckpointLoader":
        from ignite.engine import Engine

        engine = Engine(lambda e, b: None)
        loader = CheckedCheckpointLoader(load_path=str(path), load_dict={"model": net})
        call = lambda: loader(engine)  # noqa: E731
    elif user == "hyperbolic_evaluation":
        img = _nifti(tmp_path / "in.nii.gz", np.random.rand(*SHAPE).astype(np.float32))
        seg = _segmentation([{"image": str(img)}], {"c": (None, 2, None)}, tmp_path, checkpoint=path)
        call = seg.run
    else:  # the prior configs' stage-1 weights (vq_quantizers, streamlines_vqdiff)
        from monai.bundle import ConfigParser

        bundle = "vq_quantizers" if kind in ("truncated", "text") else "streamlines_vqdiff"
        parser = ConfigParser()
        parser.read_config([str(BUNDLES / bundle / "configs" / c) for c in ("train.json", "prior.json")])
        parser.update({"ckpt_dir": str(path.parent)})
        call = lambda: parser.get_parsed_content("stage1_checkpoint")  # noqa: E731
    with pytest.raises(Exception) as info:  # ConfigParser wraps the error of an expression
        call()
    err = info.value
    while not isinstance(err, CorruptCheckpointError) and err.__cause__ is not None:
        err = err.__cause__
    assert isinstance(err, CorruptCheckpointError), repr(info.value)
    _assert_names(err, str(path), "retrain", "--checkpoint")


def test_checked_loader_still_loads_a_good_checkpoint_and_refuses_a_mismatch(tmp_path):
    from ignite.engine import Engine

    path = _checkpoint(tmp_path, "good")
    net = torch.nn.Linear(3, 2)
    CheckedCheckpointLoader(load_path=str(path), load_dict={"model": net})(Engine(lambda e, b: None))
    torch.testing.assert_close(net.weight, torch.load(path, weights_only=True)["model"]["weight"])
    with pytest.raises(CorruptCheckpointError) as info:
        CheckedCheckpointLoader(load_path=str(path), load_dict={"model": torch.nn.Linear(4, 2)})(
            Engine(lambda e, b: None)
        )
    _assert_names(info.value, str(path), "does not fit")


def test_every_checkpoint_load_is_weights_only_and_checked():
    """No bare ``CheckpointLoader`` in the bundles; every ``torch.load`` in the package passes weights_only=True."""
    for config in BUNDLES.glob("*/configs/*.json"):
        assert '"CheckpointLoader"' not in config.read_text(), config
    for source in (REPO / "monai_genvq").rglob("*.py"):
        for line in source.read_text().splitlines():
            if "torch.load(" in line and not line.lstrip().startswith(("#", ">>>", "``")) and "``" not in line:
                assert "weights_only=True" in line, f"{source}: {line.strip()}"


# ---------------------------------------------------------------- 8. two inputs, one output name
NAME_CLASH_CASES = [
    ("require_input_files", ["case.nii", "case.nii.gz"]),
    ("require_input_files", ["sub/a.nii.gz", "other/a.nii.gz"]),
    ("discover_volumes", ["vol.nii.gz", "vol.mrc"]),
    ("discover_volumes", ["subj.run1.nii", "subj.run1.nii.gz"]),
]


@pytest.mark.parametrize("user,names", NAME_CLASH_CASES)
def test_inputs_sharing_an_output_name_are_refused_before_writing(user, names, tmp_path):
    paths = []
    for name in names:
        p = tmp_path / "inputs" / name
        if name.endswith(".mrc"):
            write_mrc(p, np.zeros((2, 2, 2), np.float32))
        else:
            _nifti(p, np.zeros((4, 4), np.float32))
        paths.append(str(p))
    with pytest.raises(VolumeFileError) as info:
        if user == "require_input_files":
            require_input_files(paths, tmp_path / "inputs")
        else:
            discover_volumes(tmp_path / "inputs")
    _assert_names(info.value, *sorted(paths) if user == "discover_volumes" else paths)
    _assert_names(info.value, "overwrite")


def test_multi_dot_names_give_distinct_outputs(tmp_path):
    from monai.transforms import SaveImage

    paths = [str(_nifti(tmp_path / "in" / f"subj.run{i}.nii.gz", np.full((4, 4), i, np.float32))) for i in (1, 2)]
    assert require_input_files(paths, tmp_path / "in") == paths
    assert [r["name"] for r in discover_volumes(tmp_path / "in")] == ["subj.run1", "subj.run2"]
    assert [r["name"] for r in discover_slices(tmp_path / "in")] == ["subj.run1", "subj.run2"]
    saver = SaveImage(output_dir=str(tmp_path / "out"), output_postfix="recon", separate_folder=False, print_log=False)
    for p in paths:
        saver(LoadVolume(image_only=True, ensure_channel_first=True)(p))
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == [
        "subj.run1_recon.nii.gz",
        "subj.run2_recon.nii.gz",
    ]


# ---------------------------------------------------------------- 10. t-SNE on identical codes
def test_tsne_of_identical_codes_is_skipped_not_a_crash():
    """sklearn's t-SNE segfaults on identical codes: run in a subprocess so a crash cannot take pytest down."""
    code = (
        "import warnings, numpy as np\n"
        "from monai_genvq.visualize.projections import project_codes\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    xy = project_codes(np.ones((20, 4)), 'tsne')\n"
        "print(xy.shape, float(np.abs(xy).max()), any('identical' in str(x.message) for x in w))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.split() == ["(20,", "2)", "0.0", "True"], out.stdout


def test_config_json_still_valid():
    for config in BUNDLES.glob("*/configs/*.json"):
        json.loads(config.read_text())
