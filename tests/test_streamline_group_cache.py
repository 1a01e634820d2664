"""Prepared streamline groups cached per file (issue 21): a warm run reads the cache instead of loading and
resampling, gives exactly the uncached result, and never reads a stale or half-written entry."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from monai_genvq.apps.streamlines import (
    StreamlineGroups,
    StreamlineSamples,
    build_streamline_samples,
    default_group_cache_dir,
    discover_tractoinferno,
    save_streamlines,
)
from monai_genvq.apps.streamlines import dataset as dataset_module
from monai_genvq.apps.streamlines import group_cache as group_cache_module
from monai_genvq.apps.streamlines.group_cache import group_cache_entry

OPTIONS = {"n_points": 12, "group_size": 16}
# groups of 16: AF_L 4 + 2, CST_R 3 + 1, so balancing keeps 4 of each
FILES = {("sub-01", "AF_L"): 70, ("sub-01", "CST_R"): 50, ("sub-02", "AF_L"): 40, ("sub-02", "CST_R"): 20}


def _bundle(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        n = int(rng.integers(8, 30))
        base = np.stack([np.linspace(-30, 30, n), np.zeros(n), np.linspace(0, 10, n)], axis=1)
        lines.append((base + rng.normal(0, 2, 3) + rng.normal(0, 0.2, (n, 3))).astype(np.float32))
    return lines


def _write(root: Path, subject: str, bundle: str, count: int, seed: int = 0) -> Path:
    path = root / "derivatives" / "trainset" / subject / "tractography" / f"{subject}__{bundle}.trk"
    return save_streamlines(path, _bundle(count, seed))


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "ti"
    for seed, ((subject, bundle), count) in enumerate(FILES.items()):
        _write(root, subject, bundle, count, seed)
    return root


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x["bundle"], y["bundle"]) and {**x, "bundle": 0} == {**y, "bundle": 0} for x, y in zip(a, b)
    )


class _Counting:
    """Wraps the resampler of the dataset module and counts its calls."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = dataset_module.resample_streamlines

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(dataset_module, "resample_streamlines", counted)


def test_warm_run_reads_the_cache_and_equals_the_uncached_result(dataset, tmp_path, monkeypatch):
    records = discover_tractoinferno(dataset)
    cache = tmp_path / "cache"
    uncached = build_streamline_samples(records, group_cache=False, **OPTIONS)
    counting = _Counting(monkeypatch)
    cold = build_streamline_samples(records, group_cache=cache, **OPTIONS)
    assert counting.calls == len(records) and len(list(cache.glob("*.npy"))) == len(records)
    warm = build_streamline_samples(records, group_cache=cache, **OPTIONS)
    assert counting.calls == len(records)  # nothing loaded or resampled again
    assert _same(uncached, cold) and _same(uncached, warm) and len(warm) == 8
    assert warm[0]["bundle"].flags.writeable and warm[0]["bundle"].dtype == np.float32

    # the whole StreamlineGroups (split, streaming normaliser fit, normalise on access) is unchanged too
    reference = StreamlineGroups(dataset, dataset="tractoinferno", group_cache=False, val_fraction=0.5, **OPTIONS)
    cached = StreamlineGroups(dataset, dataset="tractoinferno", group_cache=cache, val_fraction=0.5, **OPTIONS)
    assert cached.normalizer.to_dict() == reference.normalizer.to_dict()
    assert counting.calls == 2 * len(records)  # the uncached one prepared every file again, the cached one none
    assert _same(cached.train, reference.train) and _same(cached.validation, reference.validation)
    assert np.stack([s["bundle"] for s in cached.train]).min() == -1.0


def test_default_cache_folder_is_under_the_cache_root(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_GENVQ_CACHE", str(tmp_path / "root"))
    assert default_group_cache_dir() == tmp_path / "root" / "streamline_groups"
    build_streamline_samples(discover_tractoinferno(dataset), **OPTIONS)
    assert len(list(default_group_cache_dir().glob("*.npy"))) == len(FILES)


def test_a_changed_file_is_prepared_again(dataset, tmp_path, monkeypatch):
    records = discover_tractoinferno(dataset, bundles="AF_L")
    cache = tmp_path / "cache"
    build_streamline_samples(records, group_cache=cache, balance=False, **OPTIONS)
    counting = _Counting(monkeypatch)

    path = Path(records[0]["path"])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same bytes, newer time
    build_streamline_samples(records, group_cache=cache, balance=False, **OPTIONS)
    assert counting.calls == 1 and len(list(cache.glob("*.npy"))) == 3

    _write(dataset, "sub-01", "AF_L", 100, seed=7)  # rewritten with other streamlines
    rewritten = build_streamline_samples(records, group_cache=cache, balance=False, **OPTIONS)
    assert counting.calls == 2
    assert _same(rewritten, build_streamline_samples(records, group_cache=False, balance=False, **OPTIONS))
    assert rewritten.field("path").count(str(path)) == 100 // OPTIONS["group_size"]


def test_every_parameter_is_in_the_key(dataset):
    source = discover_tractoinferno(dataset)[0]["path"]
    params = {"n_points": 12, "group_size": 16, "replacement": "error", "seed": 0, "canonical_order": True}
    params["stream"] = "trainset/sub-01/AF_L/sub-01__AF_L.trk"
    entry = group_cache_entry("c", source, params)
    assert entry == group_cache_entry("c", source, dict(params)) and entry.name.startswith("sub-01__AF_L-")
    changed = [{"n_points": 13}, {"group_size": 8}, {"replacement": "sample"}, {"seed": 1}]
    changed += [{"canonical_order": False}, {"stream": "validset/sub-01/AF_L/sub-01__AF_L.trk"}]
    assert len({group_cache_entry("c", source, {**params, **change}) for change in changed} - {entry}) == 6
    other = discover_tractoinferno(dataset)[1]["path"]
    assert group_cache_entry("c", other, params) != entry


def test_an_interrupted_write_is_never_read(dataset, tmp_path, monkeypatch):
    records = discover_tractoinferno(dataset, bundles="CST_R", split="trainset")[:1]
    cache = tmp_path / "cache"
    real_save = np.save

    def killed(handle, array):  # half the bytes written, then the process is interrupted
        real_save(handle, array[: len(array) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(group_cache_module.np, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        build_streamline_samples(records, group_cache=cache, **OPTIONS)
    assert not list(cache.glob("*.npy"))  # no entry under its name, and no temporary file left
    monkeypatch.setattr(group_cache_module.np, "save", real_save)

    params = {**OPTIONS, "replacement": "error", "seed": 0, "canonical_order": True}
    params["stream"] = dataset_module._record_stream(records[0])
    entry = group_cache_entry(cache, records[0]["path"], params)
    # a temporary file left by a killed write (the name atomic_path uses) and a truncated entry are ignored
    (cache / f".{entry.name}.123.abcd1234.tmp.npy").write_bytes(b"\x93NUMPY half")
    entry.write_bytes(b"\x93NUMPY\x01\x00")
    samples = build_streamline_samples(records, group_cache=cache, **OPTIONS)
    assert _same(samples, build_streamline_samples(records, group_cache=False, **OPTIONS))
    assert np.load(entry).shape == (50 // 16, 3, 16, 12)  # prepared again and stored whole


def test_an_unwritable_cache_warns_and_keeps_the_groups_in_memory(dataset, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    records = discover_tractoinferno(dataset)[:1]
    with pytest.warns(UserWarning, match="could not write.*group_cache=False"):
        samples = build_streamline_samples(records, group_cache=blocker / "cache", **OPTIONS)
    assert _same(samples, build_streamline_samples(records, group_cache=False, **OPTIONS))


def test_samples_are_a_light_sequence(dataset, tmp_path):
    records = discover_tractoinferno(dataset)
    samples = build_streamline_samples(records, group_cache=tmp_path / "c", balance=False, **OPTIONS)
    assert len(samples) == 10 and _same(samples[1:3], [samples[1], samples[2]]) and _same([samples[-1]], [samples[9]])
    assert _same(pickle.loads(pickle.dumps(samples)), samples)  # DataLoader workers get a copy
    assert len(pickle.dumps(samples)) < 4000  # paths and indices, not bundles
    assert isinstance(samples + [], list) and len(samples + samples) == 20
    assert samples.field("name") == [s["name"] for s in samples]
    blocks = list(samples.bundle_blocks())
    assert sum(len(b) for b in blocks) == len(samples) and len(blocks) == len(FILES)
    assert isinstance(samples.subset([0]), StreamlineSamples)
