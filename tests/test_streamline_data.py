"""Streamline data layer: I/O, discovery, synthetic TractoInferno, grouping, splitting, normalisation."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from dipy.io.streamline import load_tractogram
from dipy.segment.bundles import bundle_adjacency
from dipy.tracking.streamline import Streamlines, set_number_of_points
from monai.transforms import Compose, EnsureTyped, Invertd
from nibabel.streamlines import Tractogram
from nibabel.streamlines.trk import TrkFile

from monai_genvq.apps.streamlines import (
    NormalizeStreamlines,
    NormalizeStreamlinesd,
    StreamlineFileError,
    StreamlineGroups,
    StreamlineNormalizer,
    StreamlinesToBundleTensord,
    build_streamline_samples,
    bundle_tensor_to_streamlines,
    discover_tractoinferno,
    ensure_synthetic_tractoinferno,
    generate_synthetic_tractoinferno,
    group_streamlines,
    load_streamlines,
    prepare_dipy_bundles,
    resample_streamlines,
    save_bundle_tensor,
    save_streamlines,
    split_samples,
    streamlines_to_bundle_tensor,
)
from monai_genvq.utils import materialize_dataset


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    return generate_synthetic_tractoinferno(tmp_path_factory.mktemp("synth") / "ti", n_subjects=3, n_streamlines=128)


@pytest.fixture(scope="module")
def dipy_root(tmp_path_factory) -> Path:
    return prepare_dipy_bundles(tmp_path_factory.mktemp("dipy") / "bundles")


def _write_raw_trk(path: Path, streamlines: list[np.ndarray]) -> Path:
    """Write a .trk with nibabel directly, bypassing our validation (to craft bad files)."""
    header = {"dimensions": np.array([200, 200, 200], np.int16), "voxel_to_rasmm": np.eye(4)}
    header["voxel_to_rasmm"][:3, 3] = -100
    TrkFile(Tractogram(streamlines, affine_to_rasmm=np.eye(4)), header=header).save(str(path))
    return path


def _line(n: int, offset: float = 0.0) -> np.ndarray:
    return np.stack([np.linspace(-30, 30, n), np.full(n, offset), np.linspace(0, 10, n)], axis=1).astype(np.float32)


def _aligned_mean(group: np.ndarray) -> np.ndarray:
    """Mean streamline of a group after flipping each streamline to the orientation of the first."""
    ref = group[0]
    flip = np.linalg.norm(group - ref, axis=2).mean(1) > np.linalg.norm(group[:, ::-1] - ref, axis=2).mean(1)
    return np.where(flip[:, None, None], group[:, ::-1], group).mean(0)


def _mdf_to_mean(group: np.ndarray) -> np.ndarray:
    """MDF (mm) of each streamline of a group to the group's mean streamline."""
    mean = _aligned_mean(group)
    direct = np.linalg.norm(group - mean, axis=2).mean(1)
    return np.minimum(direct, np.linalg.norm(group[:, ::-1] - mean, axis=2).mean(1))


# ---------------------------------------------------------------- I/O and round trip


def test_trk_tensor_trk_round_trip(synthetic_root, tmp_path):
    record = discover_tractoinferno(synthetic_root, bundles=["AF_L"])[0]
    streamlines = load_streamlines(record["path"], bbox_valid_check=True)
    assert all(s.dtype == np.float32 and s.shape[1] == 3 for s in streamlines)
    group = group_streamlines(resample_streamlines(streamlines, 64), 64, rng=0)[0]  # (64, 64, 3) mm
    bundle = streamlines_to_bundle_tensor(group)
    assert bundle.shape == (3, 64, 64)
    np.testing.assert_array_equal(bundle[:, 5, 7], group[5, 7])

    normalizer = StreamlineNormalizer().fit(group)
    restored = normalizer.denormalize(normalizer.normalize(bundle))
    out = save_bundle_tensor(tmp_path / "recon__AF_L.trk", normalizer.normalize(bundle), normalizer=normalizer)
    sft = load_tractogram(str(out), "same", bbox_valid_check=True)  # standard tools open it cleanly
    sft.to_rasmm()
    sft.to_center()
    np.testing.assert_allclose(np.stack(list(sft.streamlines)), group, atol=1e-3)
    np.testing.assert_allclose(np.stack(load_streamlines(out, bbox_valid_check=True)), group, atol=1e-3)
    np.testing.assert_allclose(bundle_tensor_to_streamlines(restored), group, atol=1e-4)

    # the original file as reference: same space as the source, and .tck also round-trips
    out = save_streamlines(tmp_path / "ref__AF_L.trk", group, reference=record["path"])
    assert load_tractogram(str(out), record["path"], bbox_valid_check=True)
    np.testing.assert_allclose(np.stack(load_streamlines(out)), group, atol=1e-3)
    out = save_streamlines(tmp_path / "recon__AF_L.tck", torch.as_tensor(group))
    np.testing.assert_allclose(np.stack(load_streamlines(out)), group, atol=1e-3)
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temporary files behind


def test_bad_streamline_files_name_the_file(tmp_path):
    real = Path(__import__("dipy.data", fromlist=["get_fnames"]).get_fnames(name="fornix")).read_bytes()
    cases = {}
    cases["random.trk"] = np.random.default_rng(0).bytes(4000)
    cases["half.trk"] = real[: len(real) // 2]
    cases["header_only.trk"] = real[:1000]  # the header announces 300 streamlines, none follow
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    expectations = {
        "random.trk": "could not be read",
        "half.trk": "corrupt, truncated|truncated",
        "header_only.trk": "truncated",
        "empty.trk": "no streamlines",
        "one_point.trk": "streamline 1 has only 1 point",
        "nan.trk": "streamline 2 has non-finite",
        "missing.trk": "does not exist",
        "notes.vtk": "not a supported streamline format",
    }
    _write_raw_trk(tmp_path / "empty.trk", [])
    _write_raw_trk(tmp_path / "one_point.trk", [_line(10), _line(1), _line(5)])
    nan_line = _line(8)
    nan_line[3, 1] = np.nan
    _write_raw_trk(tmp_path / "nan.trk", [_line(10), _line(9), nan_line])
    (tmp_path / "notes.vtk").write_text("not streamlines")
    for name, pattern in expectations.items():
        with pytest.raises(StreamlineFileError, match=pattern) as info:
            load_streamlines(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
        assert isinstance(info.value, ValueError)

    with pytest.raises(StreamlineFileError, match="no streamlines"):
        save_streamlines(tmp_path / "out.trk", [])
    with pytest.raises(StreamlineFileError, match="non-finite"):
        save_streamlines(tmp_path / "out.trk", [nan_line])
    assert not (tmp_path / "out.trk").exists()


# ---------------------------------------------------------------- discovery


def test_discovery_on_synthetic_layout(synthetic_root, tmp_path):
    records = discover_tractoinferno(synthetic_root)
    names = {r["bundle"] for r in records}
    assert len(names) >= 8 and {"PYT_L", "AF_L", "CC_Fr_1", "UF_L"} <= names
    for r in records:
        path = Path(r["path"])
        assert path.name == f"{r['subject']}__{r['bundle']}.trk"
        assert path.parent.parent.name == r["subject"] and r["split"] == "trainset"
    assert records == sorted(records, key=lambda r: (r["split"], r["subject"], r["bundle"]))
    assert discover_tractoinferno(synthetic_root) == records  # deterministic

    everything = discover_tractoinferno(synthetic_root, split="all")
    assert {r["split"] for r in everything} == {"trainset", "validset", "testset"}
    assert discover_tractoinferno(synthetic_root, split=["validset", "testset"]) == [
        r for r in everything if r["split"] != "trainset"
    ]
    assert {r["bundle"] for r in discover_tractoinferno(synthetic_root, bundles=["AF_L", "PYT_R"])} == {"AF_L", "PYT_R"}
    assert discover_tractoinferno(synthetic_root / "derivatives") == records  # pointing at derivatives/ works

    with pytest.raises(ValueError, match=r"'NOPE'.*available bundle names: \[.*'AF_L'"):
        discover_tractoinferno(synthetic_root, bundles=["AF_L", "NOPE"])
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
        discover_tractoinferno(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="testset2.*available splits: testset, trainset, validset"):
        discover_tractoinferno(synthetic_root, split="testset2")
    (tmp_path / "ds" / "derivatives" / "trainset" / "sub-01" / "tractography").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no streamline files"):
        discover_tractoinferno(tmp_path / "ds")

    # .trk preferred over .tck for the same subject/bundle; .tck alone is found
    folder = tmp_path / "ds" / "derivatives" / "trainset" / "sub-01" / "tractography"
    save_streamlines(folder / "sub-01__AF_L.tck", [_line(10)])
    save_streamlines(folder / "sub-01__AF_L.trk", [_line(10)])
    save_streamlines(folder / "sub-01__MdLF_L.tck", [_line(10)])
    found = {r["bundle"]: Path(r["path"]).suffix for r in discover_tractoinferno(tmp_path / "ds")}
    assert found == {"AF_L": ".trk", "MdLF_L": ".tck"}


# ---------------------------------------------------------------- grouping, balancing, splitting


def test_group_streamlines_rules():
    streamlines = np.arange(150, dtype=np.float32)[:, None, None] * np.ones((150, 16, 3), np.float32)
    groups = group_streamlines(streamlines, 64, rng=3)
    assert groups.shape == (2, 64, 16, 3)
    ids = groups[:, :, 0, 0].ravel()
    assert len(np.unique(ids)) == 128  # disjoint groups, 150 % 64 = 22 leftovers dropped
    np.testing.assert_array_equal(groups, group_streamlines(streamlines, 64, rng=3))
    assert not np.array_equal(groups, group_streamlines(streamlines, 64, rng=4))

    few = streamlines[:50]
    message = r"'sub-01__AF_L.trk' has only 50 streamlines.*group size 64.*replacement='sample'"
    with pytest.raises(ValueError, match=message):
        group_streamlines(few, 64, rng=0, source="sub-01__AF_L.trk")
    sampled = group_streamlines(few, 64, rng=0, replacement="sample")
    assert sampled.shape == (1, 64, 16, 3)
    assert set(np.unique(sampled[0, :, 0, 0])) == set(range(50))  # every streamline kept, 14 drawn again
    with pytest.raises(ValueError, match="replacement"):
        group_streamlines(streamlines, 64, replacement="pad")


def test_build_samples_balance_and_determinism(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "derivatives" / "trainset"
    counts = {("sub-01", "AF_L"): 200, ("sub-02", "AF_L"): 140, ("sub-01", "CST_R"): 140, ("sub-01", "FX"): 50}
    for (subject, bundle), count in counts.items():
        lines = [_line(int(rng.integers(20, 80)), offset=float(rng.normal(0, 3))) for _ in range(count)]
        save_streamlines(folder / subject / "tractography" / f"{subject}__{bundle}.trk", lines)
    records = discover_tractoinferno(tmp_path, bundles=["AF_L", "CST_R"])

    unbalanced = build_streamline_samples(records, n_points=32, group_size=64, balance=False)
    assert [s["name"] for s in unbalanced].count("AF_L") == 5 and [s["name"] for s in unbalanced].count("CST_R") == 2
    samples = build_streamline_samples(records, n_points=32, group_size=64)
    assert sorted(s["name"] for s in samples) == ["AF_L", "AF_L", "CST_R", "CST_R"]
    for s in samples:
        assert s["bundle"].shape == (3, 64, 32) and s["bundle"].dtype == np.float32
        assert set(s) >= {"bundle", "name", "subject", "path", "split"}
        assert Path(s["path"]).name == f"{s['subject']}__{s['name']}.trk"
    again = build_streamline_samples(records, n_points=32, group_size=64)
    assert all(np.array_equal(a["bundle"], b["bundle"]) for a, b in zip(samples, again))
    other = build_streamline_samples(records, n_points=32, group_size=64, seed=1)
    assert not all(np.array_equal(a["bundle"], b["bundle"]) for a, b in zip(samples, other))
    # samples are in mm and come from the file: each streamline equals a resampled source streamline
    source = resample_streamlines(load_streamlines(samples[0]["path"]), 32)
    first = bundle_tensor_to_streamlines(samples[0]["bundle"])[0]
    assert np.min(np.abs(source - first).max(axis=(1, 2))) < 1e-5

    fx = discover_tractoinferno(tmp_path, bundles=["FX"])
    with pytest.raises(ValueError, match=r"sub-01__FX.trk' has only 50 streamlines"):
        build_streamline_samples(fx, group_size=64)
    assert len(build_streamline_samples(fx, group_size=64, replacement="sample")) == 1


def test_split_samples_stratified_and_deterministic():
    samples = [{"name": name, "i": i} for name, n in (("A", 40), ("B", 20), ("C", 3)) for i in range(n)]
    train, val = split_samples(samples, val_fraction=0.1, seed=0)
    count = lambda items, name: sum(s["name"] == name for s in items)  # noqa: E731
    assert (count(val, "A"), count(val, "B"), count(val, "C")) == (4, 2, 1)  # every name on both sides
    assert all(count(train, n) > 0 for n in "ABC")
    assert len(train) + len(val) == len(samples) and not {id(s) for s in train} & {id(s) for s in val}
    assert split_samples(samples, 0.1, seed=0) == (train, val)
    assert split_samples(samples, 0.1, seed=1)[1] != val
    assert split_samples(samples, 0.0)[1] == []
    with pytest.raises(ValueError, match="val_fraction"):
        split_samples(samples, 1.0)


# ---------------------------------------------------------------- normaliser and transforms


def test_normalizer_exact_bounds_round_trip_and_json(tmp_path):
    rng = np.random.default_rng(0)
    data = [rng.uniform(-90, 70, (int(n), 3)).astype(np.float32) for n in rng.integers(2, 50, 30)]
    norm = StreamlineNormalizer().fit(data)
    everything = np.concatenate(data)
    assert norm.minimum == float(everything.min()) and norm.maximum == float(everything.max())
    normalised = np.concatenate([norm.normalize(d) for d in data])
    assert normalised.dtype == np.float32 and normalised.min() == -1.0 and normalised.max() == 1.0
    back = np.concatenate([norm.denormalize(norm.normalize(d)) for d in data])
    assert np.abs(back - everything).max() < 1e-4
    # one scalar for every axis: distances scale uniformly (isotropic)
    a, b = everything[0].astype(np.float64), everything[1].astype(np.float64)
    ratio = np.linalg.norm(norm.normalize(a) - norm.normalize(b)) * norm.scale / np.linalg.norm(a - b)
    assert ratio == pytest.approx(1.0, abs=1e-9)
    # torch, any layout, dtype kept
    tensor = torch.as_tensor(everything[:64].T.copy())
    out = norm.normalize(tensor)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == tensor.shape
    assert torch.allclose(norm.denormalize(out), tensor, atol=1e-4)

    path = norm.save(tmp_path / "models" / "normalizer.json")
    loaded = StreamlineNormalizer.load(path)
    assert (loaded.minimum, loaded.maximum) == (norm.minimum, norm.maximum)  # exact through JSON
    assert json.loads(path.read_text())["units"] == "mm"

    with pytest.raises(ValueError, match="all coordinates are equal"):
        StreamlineNormalizer().fit(np.full((5, 3), 7.0))
    with pytest.raises(ValueError, match="empty"):
        StreamlineNormalizer().fit([])
    with pytest.raises(ValueError, match="NaN"):
        StreamlineNormalizer().fit(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(RuntimeError, match="not fitted"):
        StreamlineNormalizer().normalize(np.zeros(3))
    with pytest.raises(FileNotFoundError, match="absent.json"):
        StreamlineNormalizer.load(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        StreamlineNormalizer.load(tmp_path / "broken.json")


def test_normalize_transforms_are_invertible():
    norm = StreamlineNormalizer(-100.0, 80.0)
    x = np.random.default_rng(1).uniform(-100, 80, (3, 64, 64)).astype(np.float32)

    array_t = NormalizeStreamlines(norm)
    assert np.array_equal(array_t(x), norm.normalize(x))
    np.testing.assert_allclose(array_t.inverse(array_t(x)), x, atol=1e-4)

    dict_t = NormalizeStreamlinesd("bundle", norm)
    out = dict_t({"bundle": x, "name": "AF_L"})
    assert out["bundle"].min() >= -1 and out["bundle"].max() <= 1 and out["name"] == "AF_L"
    np.testing.assert_allclose(dict_t.inverse(out)["bundle"], x, atol=1e-4)

    # MONAI Invertd maps a prediction back to mm with the bounds recorded at preprocessing time
    pipeline = Compose([EnsureTyped("bundle"), NormalizeStreamlinesd("bundle", norm)])
    data = pipeline({"bundle": x})
    data["pred"] = data["bundle"] * 1.0
    inverted = Invertd(keys="pred", transform=pipeline, orig_keys="bundle")(data)
    np.testing.assert_allclose(np.asarray(inverted["pred"]), x, atol=1e-4)

    layout = StreamlinesToBundleTensord("streamlines")
    moved = layout({"streamlines": np.zeros((64, 32, 3))})
    assert moved["streamlines"].shape == (3, 64, 32)
    assert layout.inverse(moved)["streamlines"].shape == (64, 32, 3)


# ---------------------------------------------------------------- synthetic TractoInferno


def test_synthetic_generator_is_deterministic_and_varied(tmp_path):
    a = generate_synthetic_tractoinferno(tmp_path / "a", n_subjects=2, n_streamlines=64, seed=5)
    b = generate_synthetic_tractoinferno(tmp_path / "b", n_subjects=2, n_streamlines=64, seed=5)
    c = generate_synthetic_tractoinferno(tmp_path / "c", n_subjects=2, n_streamlines=64, seed=6)
    files = sorted(p.relative_to(a) for p in a.rglob("*.trk"))
    assert len(files) >= 2 * 8 and files == sorted(p.relative_to(b) for p in b.rglob("*.trk"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / files[0]).read_bytes() != (c / files[0]).read_bytes()
    assert json.loads((a / "dataset_description.json").read_text())["DatasetType"] == "derivative"


def test_synthetic_bundles_are_realistic(synthetic_root):
    records = discover_tractoinferno(synthetic_root)
    spreads, buan_of_mean, points = {}, [], []
    normalizer = StreamlineNormalizer().fit([np.concatenate(load_streamlines(r["path"])) for r in records])
    for record in records:
        streamlines = load_streamlines(record["path"], bbox_valid_check=True)
        points.append(np.concatenate(streamlines))
        lengths = np.array([len(s) for s in streamlines])
        assert len(np.unique(lengths)) > 20 and lengths.min() > 50  # variable ~0.5-1 mm steps
        steps = np.linalg.norm(np.diff(streamlines[0], axis=0), axis=1)
        assert 0.3 < np.median(steps) < 1.2
        group = resample_streamlines(streamlines, 64)[:64]
        start_near = np.linalg.norm(group[:, 0] - group[0, 0], axis=1)
        ends_match = start_near < np.linalg.norm(group[:, -1] - group[0, 0], axis=1)
        assert 0.2 < ends_match.mean() < 0.8  # random orientation of individual streamlines
        spreads[record["bundle"]] = _mdf_to_mean(group).mean()
        # a model that outputs the group's mean streamline 64 times fails BUAN at 0.05 (normalised space)
        mean = np.repeat(_aligned_mean(group)[None], 64, axis=0)
        real = Streamlines(set_number_of_points(list(normalizer.normalize(group)), 20))
        fake = Streamlines(set_number_of_points(list(normalizer.normalize(mean)), 20))
        buan_of_mean.append(bundle_adjacency(real, fake, 0.05))
    assert len(spreads) >= 8
    assert np.mean(list(spreads.values())) > 4.0 and min(spreads.values()) > 3.0, spreads  # mm
    assert np.mean(buan_of_mean) < 0.8
    points = np.concatenate(points)
    assert (points.min(0) > [-80, -110, -65]).all() and (points.max(0) < [80, 110, 90]).all()


def test_ensure_synthetic_is_cached_atomic_and_parameter_aware(tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_GENVQ_CACHE", str(tmp_path / "cache"))
    first = ensure_synthetic_tractoinferno(n_subjects=1, n_streamlines=64)
    assert first.parent == tmp_path / "cache" and first.name.startswith("synthetic_tractoinferno_v1-")
    marker = first / ".monai_genvq_complete.json"
    stamp = marker.stat().st_mtime_ns
    assert ensure_synthetic_tractoinferno(n_subjects=1, n_streamlines=64) == first
    assert marker.stat().st_mtime_ns == stamp  # reused, not regenerated
    assert ensure_synthetic_tractoinferno(n_subjects=1, n_streamlines=64, seed=1) != first

    explicit = tmp_path / "explicit"
    ensure_synthetic_tractoinferno(explicit, n_subjects=1, n_streamlines=64)
    ensure_synthetic_tractoinferno(explicit, n_subjects=2, n_streamlines=64)  # other parameters: rebuilt
    assert len(discover_tractoinferno(explicit, split="all")) == 2 * len(discover_tractoinferno(first))

    def killed(folder: Path) -> None:
        (folder / "derivatives").mkdir()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        materialize_dataset(tmp_path / "killed", {"a": 1}, killed)
    assert not (tmp_path / "killed").exists() and not list(tmp_path.glob(".killed*"))

    (tmp_path / "users_data").mkdir()
    (tmp_path / "users_data" / "scan.nii").write_text("x")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        ensure_synthetic_tractoinferno(tmp_path / "users_data", n_subjects=1)


# ---------------------------------------------------------------- dipy's real bundles and StreamlineGroups


def test_dipy_bundles_prepare_offline_and_load_with_a_warning(dipy_root):
    import dipy

    zip_path = Path(__import__("dipy.data", fromlist=["get_fnames"]).get_fnames(name="minimal_bundles"))
    assert Path(dipy.__file__).parent in zip_path.parents  # shipped with dipy: nothing downloaded
    records = discover_tractoinferno(dipy_root)
    assert {r["bundle"] for r in records} == {"AF_L", "CST_R", "CC_ForcepsMajor", "FX"}
    assert {r["subject"] for r in records} == {"sub-01", "sub-02", "sub-03", "sub-04", "sub-05", "sub-fornix"}
    with pytest.warns(UserWarning, match="outside the reference volume"):
        streamlines = load_streamlines(records[0]["path"])
    assert len(streamlines) == 50
    with pytest.raises(StreamlineFileError, match="outside the reference volume"):
        load_streamlines(records[0]["path"], bbox_valid_check=True)


def test_streamline_groups_on_dipy_bundles(dipy_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        groups = StreamlineGroups(dipy_root, dataset="dipy", holdout_subjects=["05"], bundles=["AF_L", "CST_R"])
        assert len(groups.train) == 6 and len(groups.validation) == 2  # 4 subjects x 2 bundles, 1 val each
        assert {s["subject"] for s in groups.test} == {"sub-05"} and len(groups.test) == 2
        assert all(s["subject"] != "sub-05" for s in groups.train + groups.validation)
        with pytest.raises(ValueError, match="has only 50 streamlines"):
            StreamlineGroups(dipy_root, dataset="dipy", replacement="error").train
        with pytest.raises(ValueError, match="holdout subject.*sub-99"):
            StreamlineGroups(dipy_root, dataset="dipy", holdout_subjects="sub-99").train


def test_streamline_groups_synthetic(synthetic_root, tmp_path):
    lazy = StreamlineGroups(tmp_path / "not_there", dataset="tractoinferno")  # nothing read yet
    with pytest.raises(FileNotFoundError, match="not_there"):
        lazy.train

    path = tmp_path / "normalizer.json"
    groups = StreamlineGroups(synthetic_root, n_points=32, group_size=64, normalizer_path=path, val_fraction=0.2)
    train = np.stack([s["bundle"] for s in groups.train])
    assert train.shape[1:] == (3, 64, 32) and train.dtype == np.float32
    assert train.min() == -1.0 and train.max() == 1.0  # fitted on train: exactly [-1, 1]
    assert len(groups.bundle_names) >= 8 and {s["name"] for s in groups.validation} == set(groups.bundle_names)
    names = [s["name"] for s in groups.train + groups.validation]
    assert len({names.count(n) for n in set(names)}) == 1  # balanced
    assert path.exists() and StreamlineNormalizer.load(path).minimum == groups.normalizer.minimum
    mm = groups.normalizer.denormalize(groups.train[0]["bundle"])
    source = resample_streamlines(load_streamlines(groups.train[0]["path"]), 32)
    assert np.min(np.abs(source - bundle_tensor_to_streamlines(mm)[0]).max(axis=(1, 2))) < 1e-3

    StreamlineNormalizer(-150.0, 150.0).save(path)  # an existing normaliser is loaded, not refitted
    reused = StreamlineGroups(
        synthetic_root, n_points=32, normalizer_path=path, split="all", holdout_subjects="sub-1003"
    )
    assert reused.normalizer.scale == 150.0 and np.abs(np.stack([s["bundle"] for s in reused.train])).max() < 1
    assert {s["subject"] for s in reused.test} == {"sub-1003"} and len(reused.test) == 2 * len(groups.bundle_names)


def test_evaluation_refuses_to_refit_a_missing_normalizer(synthetic_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json.*written by training"):
        StreamlineGroups(synthetic_root, normalizer_path=tmp_path / "missing.json", require_normalizer=True)
