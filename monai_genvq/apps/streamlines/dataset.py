"""Bundle samples for VQ-Diff: groups of resampled streamlines of one bundle as ``(3, group_size, n_points)``.

Pipeline: discover files -> per file (one file in memory at a time; cached, see ``group_cache``): load
(mm) -> resample each streamline to ``n_points`` -> shuffle and cut the streamlines into groups of
``group_size`` -> canonical order -> balance the number of groups per bundle name -> stratified
train/validation split -> fit one global min/max normaliser on the training groups (one streaming pass)
-> normalise each group to [-1, 1] when it is read (:class:`StreamlineSamples`).
"""

from __future__ import annotations

import functools
import math
import os
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.apps.streamlines.dipy_bundles import prepare_dipy_bundles
from monai_genvq.apps.streamlines.group_cache import cached_groups, resolve_group_cache
from monai_genvq.apps.streamlines.group_order import apply_group_order, canonical_group_order
from monai_genvq.apps.streamlines.io import load_streamlines
from monai_genvq.apps.streamlines.samples import StreamlineSamples
from monai_genvq.apps.streamlines.synthetic import ensure_synthetic_tractoinferno
from monai_genvq.apps.streamlines.tractoinferno import discover_tractoinferno, select_bundles_by_count
from monai_genvq.apps.streamlines.transforms import (
    StreamlineNormalizer,
    resample_streamlines,
    streamlines_to_bundle_tensor,
)

__all__ = ["group_streamlines", "build_streamline_samples", "balance_samples", "split_samples", "StreamlineGroups"]

_REPLACEMENT_RULES = ("error", "sample")
_DATASETS = ("synthetic", "dipy", "tractoinferno")


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def group_streamlines(
    streamlines: np.ndarray,
    group_size: int,
    rng: np.random.Generator | int | None = None,
    *,
    replacement: str = "error",
    source: str | os.PathLike | None = None,
) -> np.ndarray:
    """Shuffle the streamlines of ONE bundle file and cut them into groups of ``group_size``.

    Rule: with ``S >= group_size`` streamlines, ``S // group_size`` disjoint groups are formed from a
    random permutation and the ``S % group_size`` leftover streamlines are dropped (a different random
    subset for each seed). With ``S < group_size``: ``replacement="error"`` refuses; ``"sample"`` forms
    exactly ONE group holding every streamline once plus ``group_size - S`` streamlines drawn again at
    random (with replacement), so no streamline of the file is lost and none is invented.

    Args:
        streamlines: ``(S, P, 3)`` resampled streamlines of one bundle.
        group_size: streamlines per group.
        rng: numpy Generator or seed.
        replacement: ``"error"`` or ``"sample"`` (see above).
        source: file the streamlines came from, for error messages.

    Returns:
        ``(G, group_size, P, 3)`` array, same dtype as the input.

    Raises:
        ValueError: bad ``group_size``/``replacement``/shape, or too few streamlines with ``"error"``.

    Example:
        >>> group_streamlines(np.zeros((200, 64, 3)), 64, rng=0).shape
        (3, 64, 64, 3)
    """
    if replacement not in _REPLACEMENT_RULES:
        raise ValueError(f"replacement must be one of {_REPLACEMENT_RULES}, got {replacement!r}")
    if int(group_size) != group_size or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size}")
    streamlines = np.asarray(streamlines)
    if streamlines.ndim != 3 or streamlines.shape[-1] != 3:
        raise ValueError(f"expected resampled streamlines shaped (S, P, 3), got {streamlines.shape}")
    rng = _as_rng(rng)
    count = len(streamlines)
    where = f"'{source}'" if source is not None else "the bundle"
    if count == 0:
        raise ValueError(f"{where} has no streamlines to group")
    if count < group_size:
        if replacement == "error":
            raise ValueError(
                f"{where} has only {count} streamlines, fewer than the group size {group_size}. "
                "Use a smaller group_size, or pass replacement='sample' to fill one group by drawing "
                "streamlines again (with replacement)."
            )
        extra = rng.integers(0, count, group_size - count)
        order = rng.permutation(np.concatenate([np.arange(count), extra]))
        return streamlines[order][None]
    n_groups = count // group_size
    order = rng.permutation(count)[: n_groups * group_size]
    return streamlines[order].reshape(n_groups, group_size, *streamlines.shape[1:])


def _record_stream(record: Mapping[str, Any]) -> str:
    # a stream per file (not per position in the list), so adding files does not reshuffle the others
    fields = (record.get("split", ""), record.get("subject", ""), record.get("bundle", ""), Path(record["path"]).name)
    return "/".join(str(f) for f in fields)


def _record_rng(seed: int, record: Mapping[str, Any]) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(_record_stream(record).encode())])


def _field(samples: Sequence[dict], key: str) -> list:
    """One field of every sample; a :class:`StreamlineSamples` answers without reading its bundles."""
    return samples.field(key) if isinstance(samples, StreamlineSamples) else [s[key] for s in samples]


def _take(samples: Sequence[dict], indices: Sequence[int]) -> Sequence[dict]:
    return samples.subset(indices) if isinstance(samples, StreamlineSamples) else [samples[i] for i in indices]


def balance_samples(samples: Sequence[dict], seed: int = 0, key: str = "name") -> Sequence[dict]:
    """Equalise the number of samples per bundle name by random downsampling to the rarest name.

    No sample is duplicated; the kept samples stay in their original order.

    Args:
        samples: sample dicts (a list, or a :class:`StreamlineSamples`, whose bundles are not read).
        seed: random seed.
        key: the field to balance on.

    Returns:
        The balanced samples: a list, or a :class:`StreamlineSamples` view for one.

    Example:
        >>> [s["i"] for s in balance_samples([{"name": "A", "i": 0}, {"name": "A", "i": 1}, {"name": "B", "i": 2}])]
        [1, 2]
    """
    by_name: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(_field(samples, key)):
        by_name[name].append(index)
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    smallest = min((len(indices) for indices in by_name.values()), default=0)
    for name in sorted(by_name):
        keep.update(rng.choice(by_name[name], size=smallest, replace=False).tolist())
    return _take(samples, sorted(keep))


def build_streamline_samples(
    records: Sequence[Mapping[str, Any]],
    *,
    n_points: int = 64,
    group_size: int = 64,
    balance: bool = True,
    replacement: str = "error",
    seed: int = 0,
    canonical_order: bool = True,
    group_cache: str | os.PathLike | bool | None = None,
) -> StreamlineSamples:
    """Load bundle files and turn them into grouped bundle samples in millimetres.

    Files are prepared one at a time (only one file's streamlines are in memory). With the group cache
    (the default) each file's prepared groups are stored once and memory-mapped afterwards, so later
    runs skip loading and resampling and the samples hold no bundle data in memory (see
    :mod:`~monai_genvq.apps.streamlines.group_cache`).

    Args:
        records: dicts with ``"path"``, ``"bundle"``, ``"subject"`` (and optionally ``"split"``), e.g. from
            :func:`~monai_genvq.apps.streamlines.tractoinferno.discover_tractoinferno`.
        n_points: points per resampled streamline.
        group_size: streamlines per sample.
        balance: downsample so every bundle name has as many groups as the rarest one (see
            :func:`balance_samples`); ``False`` keeps every group.
        replacement: rule for files with fewer than ``group_size`` streamlines (see :func:`group_streamlines`).
        seed: random seed (shuffling, replacement draws, balancing).
        canonical_order: orient every streamline of a group alike and sort the rows along the bundle
            (:func:`~monai_genvq.apps.streamlines.canonical_group_order`); BUAN is unchanged by it, training
            converges far faster.
        group_cache: folder of the prepared-groups cache; ``None``, ``True`` or ``""``: the default
            ``<cache root>/streamline_groups`` (``$MONAI_GENVQ_CACHE`` or ``~/.cache/monai_genvq``);
            ``False``: no cache (the groups stay in memory).

    Returns:
        A :class:`StreamlineSamples` sequence of sample dicts ``{"bundle": float32 (3, group_size,
        n_points) in mm, "name", "subject", "path", "split", "group"}`` in record order, each bundle read
        when the sample is accessed.

    Raises:
        StreamlineFileError: a file cannot be used (see :func:`~monai_genvq.apps.streamlines.io.load_streamlines`).
        ValueError: a file has too few streamlines and ``replacement="error"``.

    Example:
        >>> samples = build_streamline_samples(discover_tractoinferno("/data/TractoInferno"))  # doctest: +SKIP
        >>> samples[0]["bundle"].shape  # doctest: +SKIP
        (3, 64, 64)
    """
    cache_dir = resolve_group_cache(group_cache)
    options = {"n_points": int(n_points), "group_size": int(group_size), "replacement": replacement, "seed": int(seed)}
    options["canonical_order"] = bool(canonical_order)
    files = []
    for record in records:
        groups = cached_groups(
            record["path"],
            {**options, "stream": _record_stream(record)},
            functools.partial(_prepare_groups, record, **options),
            (3, group_size, n_points),
            cache_dir,
        )
        # a cache entry is kept as its path: an open map per file would run out of file descriptors
        source = groups.filename if isinstance(groups, np.memmap) else groups
        fields = {"name": record["bundle"], "subject": record.get("subject", ""), "path": str(record["path"])}
        files.append((source, {**fields, "split": record.get("split", "")}))
    samples = StreamlineSamples(files)
    return balance_samples(samples, seed) if balance else samples


def _prepare_groups(
    record: Mapping[str, Any], n_points: int, group_size: int, replacement: str, seed: int, canonical_order: bool
) -> np.ndarray:
    """One file's groups, float32 ``(G, 3, group_size, n_points)`` in mm (see :func:`build_streamline_samples`)."""
    streamlines = resample_streamlines(load_streamlines(record["path"]), n_points)
    groups = group_streamlines(
        streamlines, group_size, _record_rng(seed, record), replacement=replacement, source=record["path"]
    )
    if canonical_order:
        groups = np.stack([apply_group_order(group, *canonical_group_order(group)) for group in groups])
    return streamlines_to_bundle_tensor(groups).astype(np.float32)


def split_samples(
    samples: Sequence[dict], val_fraction: float = 0.1, seed: int = 0
) -> tuple[Sequence[dict], Sequence[dict]]:
    """Seeded train/validation split, stratified by bundle name.

    Each name contributes ``round(n * val_fraction)`` samples to validation, but at least one and at most
    ``n - 1`` when it has two samples or more (so every name appears on both sides when possible). Both
    lists keep the input order.

    Args:
        samples: sample dicts with a ``"name"`` (a list, or a :class:`StreamlineSamples`, whose bundles are
            not read).
        val_fraction: fraction for validation, in [0, 1).
        seed: random seed.

    Returns:
        ``(train, validation)``: lists, or :class:`StreamlineSamples` views for one.

    Raises:
        ValueError: ``val_fraction`` outside [0, 1).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    by_name: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(_field(samples, "name")):
        by_name[name].append(index)
    rng = np.random.default_rng(seed)
    validation: set[int] = set()
    for name in sorted(by_name):
        indices = by_name[name]
        n_val = int(math.floor(len(indices) * val_fraction + 0.5))
        if val_fraction > 0 and len(indices) >= 2:
            n_val = min(max(n_val, 1), len(indices) - 1)
        validation.update(rng.permutation(indices)[:n_val].tolist())
    train = [i for i in range(len(samples)) if i not in validation]
    return _take(samples, train), _take(samples, sorted(validation))


def _subject_id(subject: str) -> str:
    subject = str(subject)
    return subject if subject.startswith("sub-") else f"sub-{subject}"


class StreamlineGroups:
    """Train/validation/test bundle samples, normalised to [-1, 1], ready for a MONAI Dataset.

    The object bundle configs instantiate. It is lazy: nothing is read until the first access to
    ``train``, ``validation``, ``test``, ``normalizer`` or ``records``, and everything is built once.
    Files are prepared one at a time into the group cache (``group_cache``), which later runs read
    instead of loading and resampling again; the samples read and normalise each bundle when accessed
    (:class:`StreamlineSamples`), so memory does not grow with the dataset.

    Each sample is ``{"bundle": float32 (3, group_size, n_points) in [-1, 1], "name", "subject", "path",
    "split", "group"}``; ``normalizer.denormalize`` maps a bundle (or a reconstruction) back to mm.

    Args:
        dataset_dir: a TractoInferno-layout folder. Empty/None: ``"synthetic"`` generates (once, cached)
            the synthetic dataset, ``"dipy"`` lays out dipy's shipped bundles; ``"tractoinferno"`` needs it.
        dataset: ``"synthetic"``, ``"dipy"`` or ``"tractoinferno"`` (only picks the default folder and
            the default ``replacement``).
        split: split folder(s) to read, or ``"all"``.
        bundles: bundle names to keep (``None``: all found).
        min_streamlines: keep only the bundle names whose every file (of the splits read, held-out subjects
            included) has more than this many streamlines, the VQ-Diff paper's selection with 1000 (its 12
            Table 1 bundles, :data:`~monai_genvq.apps.streamlines.VQDIFF_TABLE1_BUNDLES`); see
            :func:`~monai_genvq.apps.streamlines.select_bundles_by_count`. 0 (default): no count filter.
        n_points: points per streamline.
        group_size: streamlines per sample.
        balance: equalise groups per bundle name (training pool only; the test set is not balanced).
        replacement: rule for files with fewer than ``group_size`` streamlines (see
            :func:`group_streamlines`); ``None`` means ``"sample"`` for ``dataset="dipy"`` (50 streamlines
            per file) and ``"error"`` otherwise.
        val_fraction: validation fraction of the (non-held-out) samples, stratified by name.
        seed: random seed for grouping, balancing and splitting.
        holdout_subjects: subjects (``"sub-05"`` or ``"05"``) whose samples form ``test`` instead of
            train/validation ("train on the rest, evaluate on one subject").
        normalizer_path: JSON normaliser. If the file exists it is loaded (inference/evaluation use the
            training bounds); otherwise the normaliser is fitted on ``train`` and saved there.
        require_normalizer: raise ``FileNotFoundError`` instead of fitting when ``normalizer_path``
            does not exist (evaluation must use the bounds the model was trained with).
        cache_dir: folder for the generated dataset (see ``ensure_synthetic_tractoinferno`` /
            ``prepare_dipy_bundles``).
        canonical_order: put each group in canonical order (see :func:`build_streamline_samples`).
        group_cache: folder of the prepared-groups cache; ``None``/``True``/``""``: the default
            ``<cache root>/streamline_groups``; ``False``: no cache, the groups are prepared on every
            run and kept in memory.

    Raises:
        ValueError: unknown ``dataset``, ``"tractoinferno"`` without ``dataset_dir``, unknown holdout
            subjects, or nothing left to train on (raised on first access).

    Example:
        >>> groups = StreamlineGroups(dataset="synthetic", n_points=64, group_size=64)
        >>> groups.train[0]["bundle"].shape  # doctest: +SKIP
        (3, 64, 64)
        >>> groups.normalizer.scale  # mm per normalised unit  # doctest: +SKIP
        87.1
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike | None = None,
        dataset: str = "synthetic",
        split: str | Sequence[str] = "trainset",
        bundles: str | Sequence[str] | None = None,
        n_points: int = 64,
        group_size: int = 64,
        balance: bool = True,
        replacement: str | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        holdout_subjects: str | Sequence[str] | None = None,
        normalizer_path: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        canonical_order: bool = True,
        require_normalizer: bool = False,
        group_cache: str | os.PathLike | bool | None = None,
        min_streamlines: int = 0,
    ) -> None:
        if dataset not in _DATASETS:
            raise ValueError(f"dataset must be one of {_DATASETS}, got {dataset!r}")
        if not dataset_dir and dataset == "tractoinferno":
            raise ValueError("dataset='tractoinferno' needs dataset_dir (the folder that holds derivatives/)")
        if replacement is None:
            replacement = "sample" if dataset == "dipy" else "error"
        if replacement not in _REPLACEMENT_RULES:
            raise ValueError(f"replacement must be one of {_REPLACEMENT_RULES}, got {replacement!r}")
        self.dataset_dir = Path(dataset_dir).expanduser() if dataset_dir else None
        self.dataset = dataset
        self.split = split
        self.bundles = bundles
        if int(min_streamlines) != min_streamlines or min_streamlines < 0:
            raise ValueError(f"min_streamlines must be a non-negative integer (0: no filter), got {min_streamlines!r}")
        self.min_streamlines = int(min_streamlines)
        self.n_points = n_points
        self.group_size = group_size
        self.balance = balance
        self.replacement = replacement
        self.val_fraction = val_fraction
        self.seed = seed
        if isinstance(holdout_subjects, str):
            holdout_subjects = [holdout_subjects]
        self.holdout_subjects = [_subject_id(s) for s in holdout_subjects or []]
        self.normalizer_path = Path(normalizer_path).expanduser() if normalizer_path else None
        if require_normalizer and (self.normalizer_path is None or not self.normalizer_path.exists()):
            raise FileNotFoundError(
                f"streamline normaliser {self.normalizer_path} not found: it is written by training next to "
                "the checkpoint, and evaluation must map data with the same bounds. Train first, or point "
                "normalizer_path at the training run's streamline_normalization.json."
            )
        self.cache_dir = cache_dir
        self.canonical_order = canonical_order
        self.group_cache = group_cache
        self._built: dict[str, Any] | None = None

    def _resolve_dir(self) -> Path:
        if self.dataset_dir is not None:
            return self.dataset_dir
        if self.dataset == "dipy":
            return prepare_dipy_bundles(self.cache_dir)
        return ensure_synthetic_tractoinferno(self.cache_dir)

    def _build(self) -> dict[str, Any]:
        if self._built is not None:
            return self._built
        dataset_dir = self._resolve_dir()
        records = discover_tractoinferno(dataset_dir, split=self.split, bundles=self.bundles)
        records = select_bundles_by_count(records, self.min_streamlines)
        subjects = sorted({r["subject"] for r in records})
        unknown = [s for s in self.holdout_subjects if s not in subjects]
        if unknown:
            raise ValueError(
                f"holdout subject(s) {unknown} not found in '{dataset_dir}'; available subjects: {subjects}"
            )
        test_records = [r for r in records if r["subject"] in self.holdout_subjects]
        pool_records = [r for r in records if r["subject"] not in self.holdout_subjects]
        if not pool_records:
            raise ValueError(f"every subject of '{dataset_dir}' is held out; nothing is left to train on")

        options = {
            "n_points": self.n_points,
            "group_size": self.group_size,
            "replacement": self.replacement,
            "canonical_order": self.canonical_order,
            "group_cache": self.group_cache,
        }
        pool = build_streamline_samples(pool_records, balance=self.balance, seed=self.seed, **options)
        train, validation = split_samples(pool, self.val_fraction, self.seed)
        test = build_streamline_samples(test_records, balance=False, seed=self.seed, **options)

        if self.normalizer_path is not None and self.normalizer_path.exists():
            normalizer = StreamlineNormalizer.load(self.normalizer_path)
        else:
            normalizer = StreamlineNormalizer().fit(train.bundle_blocks())
            if self.normalizer_path is not None:
                normalizer.save(self.normalizer_path)

        self._built = {
            "dataset_dir": dataset_dir,
            "records": records,
            "train": train.normalized(normalizer),
            "validation": validation.normalized(normalizer),
            "test": test.normalized(normalizer),
            "normalizer": normalizer,
        }
        return self._built

    @property
    def resolved_dataset_dir(self) -> Path:
        """The folder the samples were read from (generated on first use for synthetic/dipy)."""
        return self._build()["dataset_dir"]

    @property
    def records(self) -> list[dict]:
        """Every discovered file record (including held-out subjects)."""
        return self._build()["records"]

    @property
    def train(self) -> StreamlineSamples:
        """Training samples (normalised)."""
        return self._build()["train"]

    @property
    def validation(self) -> StreamlineSamples:
        """Validation samples (normalised), stratified by bundle name."""
        return self._build()["validation"]

    @property
    def test(self) -> StreamlineSamples:
        """Samples of ``holdout_subjects`` (normalised, not balanced); empty without held-out subjects."""
        return self._build()["test"]

    @property
    def normalizer(self) -> StreamlineNormalizer:
        """The global min/max normaliser (fitted on ``train`` or loaded from ``normalizer_path``)."""
        return self._build()["normalizer"]

    @property
    def bundle_names(self) -> list[str]:
        """Sorted bundle names present in the training samples."""
        return sorted(set(self.train.field("name")))

    def save_normalizer(self, path: str | os.PathLike) -> Path:
        """Write the normaliser as JSON (atomically); returns the path."""
        return self.normalizer.save(path)

    def __repr__(self) -> str:
        state = (
            "unbuilt"
            if self._built is None
            else (f"train={len(self.train)}, validation={len(self.validation)}, test={len(self.test)}")
        )
        return f"StreamlineGroups(dataset={self.dataset!r}, dataset_dir={self.dataset_dir}, {state})"
