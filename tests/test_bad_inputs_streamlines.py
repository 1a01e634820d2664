"""Wrong streamline data is refused with the file named (issue 17): empty bundles, streamlines that are one
point, non-finite coordinates, inputs whose reconstructions would share a name; the TractoInferno split
default is stated in the bundle config. Each case asserts the error type, the file name and a word of the
problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nibabel.streamlines import Tractogram
from nibabel.streamlines.tck import TckFile
from nibabel.streamlines.trk import TrkFile

from monai_genvq.apps.streamlines import (
    StreamlineFileError,
    StreamlineNormalizer,
    StreamlineWriter,
    build_streamline_samples,
    load_streamlines,
    streamline_inference_items,
    streamline_stem,
)

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "streamlines_vqdiff"


def _write_raw(path: Path, streamlines: list[np.ndarray]) -> Path:
    """Write a .trk / .tck with nibabel directly, bypassing the package's validation (to craft bad files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tractogram = Tractogram(streamlines, affine_to_rasmm=np.eye(4))
    if path.suffix == ".trk":
        header = {"dimensions": np.array([200, 200, 200], np.int16), "voxel_to_rasmm": np.eye(4)}
        header["voxel_to_rasmm"][:3, 3] = -100
        TrkFile(tractogram, header=header).save(str(path))
    else:
        TckFile(tractogram).save(str(path))
    return path


def _line(n: int = 12, offset: float = 0.0) -> np.ndarray:
    return np.stack([np.linspace(-30, 30, n), np.full(n, offset), np.linspace(0, 10, n)], axis=1).astype(np.float32)


def _streamlines(defect: str) -> list[np.ndarray]:
    good = [_line(12, i) for i in range(6)]
    if defect == "empty":
        return []
    if defect == "all_one_point":  # every streamline a single point
        return [np.array([[float(i), 0.0, 0.0]], np.float32) for i in range(6)]
    if defect == "all_zero_length":  # several points, all the same point (today: SVD did not converge)
        return [np.full((5, 3), 7.0, np.float32) for _ in range(6)]
    if defect == "one_zero_length":
        return good[:3] + [np.full((4, 3), 2.0, np.float32)] + good[3:]
    if defect in ("nan", "inf"):
        bad = _line(12, 9)
        bad[4, 2] = np.nan if defect == "nan" else np.inf
        return good + [bad]
    raise AssertionError(defect)


DEFECTS = {
    "empty": "no streamlines",
    "all_one_point": "only 1 point",
    "all_zero_length": "zero length",
    "one_zero_length": "zero length",
    "nan": "non-finite",
    "inf": "non-finite",
}
USERS = ["load_streamlines", "training_samples", "inference_items"]


def _use(user: str, path: Path):
    if user == "load_streamlines":
        return load_streamlines(path)
    if user == "training_samples":
        record = {"path": str(path), "bundle": "AF_L", "subject": "sub-01"}
        return build_streamline_samples([record], n_points=16, group_size=2, replacement="sample")
    return streamline_inference_items([str(path)], StreamlineNormalizer(-50.0, 50.0), n_points=16, group_size=2)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # nibabel writing the inf file
@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_malformed_bundle_file_is_a_streamline_file_error(defect, user, tmp_path):
    path = _write_raw(tmp_path / "sub-01" / "sub-01__AF_L.trk", _streamlines(defect))
    with pytest.raises(StreamlineFileError) as info:
        _use(user, path)
    assert str(path) in str(info.value) and DEFECTS[defect] in str(info.value), str(info.value)


@pytest.mark.parametrize("defect", ["empty", "all_zero_length", "nan"])
def test_malformed_tck_file_is_a_streamline_file_error(defect, tmp_path):
    path = _write_raw(tmp_path / "sub-02__CST_R.tck", _streamlines(defect))
    with pytest.raises(StreamlineFileError) as info:
        load_streamlines(path)
    assert str(path) in str(info.value) and DEFECTS[defect] in str(info.value), str(info.value)


# ---------------------------------------------------------------- inference output names
CLASH_CASES = [
    ("subj.run1.trk", "subj.run1.tck"),
    ("a/sub-01__AF_L.trk", "b/sub-01__AF_L.trk"),
    ("x.y.z.trk", "x.y.z.tck"),
]


@pytest.mark.parametrize("first,second", CLASH_CASES)
def test_inputs_sharing_an_output_name_are_refused_before_anything_is_written(first, second, tmp_path):
    paths = [_write_raw(tmp_path / "in" / name, [_line(12, i) for i in range(4)]) for name in (first, second)]
    out = tmp_path / "out"
    with pytest.raises(StreamlineFileError) as info:
        streamline_inference_items([str(p) for p in paths], StreamlineNormalizer(-50.0, 50.0), 16, 2)
    assert str(paths[0]) in str(info.value) and str(paths[1]) in str(info.value), str(info.value)
    assert "overwrite" in str(info.value)
    assert not out.exists()


def test_multi_dot_inputs_get_their_own_outputs(tmp_path):
    """``subj.run1.trk`` and ``subj.run2.trk`` used to both be written as ``subj_recon.trk``."""
    normalizer = StreamlineNormalizer(-50.0, 50.0)
    sources = [str(_write_raw(tmp_path / "in" / f"subj.run{i}.trk", [_line(12, i)] * 3)) for i in (1, 2)]
    items = streamline_inference_items(sources, normalizer, n_points=12, group_size=2)
    assert {item["source"] for item in items} == set(sources)
    writer = StreamlineWriter(tmp_path / "out", normalizer)
    for i, source in enumerate(sources):
        writer._write(source, [normalizer.normalize(np.stack([_line(12, 10 * i)] * 2).astype(np.float64))])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["subj.run1_recon.trk", "subj.run2_recon.trk"]
    assert streamline_stem("in/sub-1.x__AF_L.tck") == "sub-1.x__AF_L"


# ---------------------------------------------------------------- TractoInferno split default in the config
def test_tractoinferno_split_default_is_a_visible_config_key():
    from monai.bundle import ConfigParser

    config = json.loads((BUNDLE / "configs" / "train.json").read_text())
    assert config["tractoinferno_split"] == "trainset"
    assert config["streamline_data"]["split"] == "@tractoinferno_split"
    assert "tractoinferno_split" in (BUNDLE / "docs" / "README.md").read_text()
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.update({"tractoinferno_split": "validset"})
    assert parser.get_parsed_content("streamline_data").split == "validset"
