"""Train / validation / test datalists for the cardiac bundles (real folders or the embedded phantoms)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.data.cardiac import MNMS_SPLITS, _acdc_database, _mnms_root, discover_acdc, discover_mnms
from monai_genvq.data.synthetic_cardiac import ensure_synthetic_acdc, ensure_synthetic_mnms

__all__ = [
    "CARDIAC_DATASETS",
    "MissingSplit",
    "cardiac_datalists",
    "discover_cardiac_split",
    "expand_slice_offsets",
    "resolve_cardiac_dataset",
]

CARDIAC_DATASETS = ("acdc", "mnms")


def resolve_cardiac_dataset(
    dataset: str, dataset_dir: str | os.PathLike | None = None, synthetic: Mapping[str, Any] | None = None
) -> Path:
    """The dataset root: ``dataset_dir`` when given, else the phantom of that layout (generated on first use).

    Args:
        dataset: ``"acdc"`` or ``"mnms"`` (the on-disk layout).
        dataset_dir: a real dataset folder; empty / None -> embedded phantom.
        synthetic: parameters of :func:`ensure_synthetic_acdc` / :func:`ensure_synthetic_mnms`.
    """
    if dataset not in CARDIAC_DATASETS:
        raise ValueError(f"dataset must be one of {CARDIAC_DATASETS}; got {dataset!r}")
    if dataset_dir:
        return Path(dataset_dir).expanduser()
    ensure = ensure_synthetic_acdc if dataset == "acdc" else ensure_synthetic_mnms
    return ensure(**dict(synthetic or {}))


class MissingSplit(Sequence):
    """Stands for a split whose folder is absent: training runs without it, using it names the folder.

    It is falsy; slicing returns itself; ``len()``, iteration and indexing raise
    ``FileNotFoundError`` naming the missing folder (a MONAI ``Dataset`` built on it fails with
    that message when an evaluation reads it).

    Args:
        folder: the absent split folder.
        split: the split's name in the datalists (e.g. ``"test"``).

    Example:
        >>> missing = MissingSplit("/data/ACDC/database/testing", "test")
        >>> bool(missing), missing[:3] is missing
        (False, True)
    """

    def __init__(self, folder: str | os.PathLike, split: str = "test") -> None:
        self.folder, self.split = str(folder), split

    def error(self) -> FileNotFoundError:
        return FileNotFoundError(
            f"the {self.split!r} split folder '{self.folder}' does not exist: training does not need it, but "
            f"evaluating on the {self.split!r} split does (add the folder, or evaluate on 'validation')"
        )

    def __bool__(self) -> bool:
        return False

    def __len__(self) -> int:
        raise self.error()

    def __iter__(self) -> Iterator[dict]:
        raise self.error()

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self
        raise self.error()

    def __repr__(self) -> str:
        return f"MissingSplit({self.folder!r}, {self.split!r})"


def discover_cardiac_split(
    dataset: str, root: str | os.PathLike, split: str, label_convention: str | None = None, name: str = "test"
) -> list[dict[str, Any]] | MissingSplit:
    """Records of one split (:func:`discover_acdc` / :func:`discover_mnms`), or a :class:`MissingSplit` if its folder is absent.

    Args:
        dataset: ``"acdc"`` or ``"mnms"``.
        root: the dataset root.
        split: the dataset's split name (ACDC ``"testing"``, M&Ms ``"testing"``, ...).
        label_convention: passed to the discovery function.
        name: the split's name in the datalists (for the error message).
    """
    root = Path(root).expanduser()
    if dataset == "acdc":
        folder = _acdc_database(root) / split
        if not folder.is_dir():
            return MissingSplit(folder, name)
        return discover_acdc(root, split, label_convention=label_convention)
    folder = _mnms_root(root) / MNMS_SPLITS.get(split, split)
    if not folder.is_dir():
        return MissingSplit(folder, name)
    return discover_mnms(root, split, label_convention=label_convention)


def expand_slice_offsets(records: Sequence[dict], slice_offsets: Sequence[int]) -> list[dict]:
    """One copy of each record per short-axis slice offset (the ``slice_offset`` key the loaders read).

    A :class:`MissingSplit` is returned unchanged.

    Example:
        >>> expand_slice_offsets([{"subject": "p1"}], (-1, 0))
        [{'subject': 'p1', 'slice_offset': -1}, {'subject': 'p1', 'slice_offset': 0}]
    """
    if isinstance(records, MissingSplit):
        return records  # type: ignore[return-value]
    return [{**r, "slice_offset": int(o)} for r in records for o in slice_offsets]


def cardiac_datalists(
    dataset: str = "acdc",
    dataset_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    slice_offsets: Sequence[int] = (0,),
    seed: int = 0,
    synthetic: Mapping[str, Any] | None = None,
    max_train: int | None = None,
    test_slice_offsets: Sequence[int] = (0,),
    label_convention: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Datalists ``{"train", "validation", "test"}`` for an ACDC or M&Ms layout.

    ACDC: ``training`` patients split by subject into train/validation, ``testing`` is the test set
    (the challenge's split, as in Attri-SIVAE). M&Ms: ``Training/Labeled`` split into
    train/validation, ``Testing`` (all vendors) is the test set. Training items are repeated for
    each ``slice_offsets`` value (neighbouring short-axis slices of the same subject and
    attributes); validation uses the chosen slice only (offset 0), test uses ``test_slice_offsets``
    (default the chosen slice only; several offsets give several codes per test subject, each
    with the subject's attributes, which steadies the histogram-based metrics on small test sets).
    Without a test folder (ACDC ``database/testing``, M&Ms ``Testing``) training still works:
    ``"test"`` is then a :class:`MissingSplit`, and evaluating on it raises an error naming the folder.

    Args:
        dataset: ``"acdc"`` or ``"mnms"``.
        dataset_dir: real folder, or empty for the phantom.
        val_fraction: fraction of training subjects held out for validation (at least one).
        slice_offsets: slice offsets for training items.
        seed: seed of the subject split.
        synthetic: phantom parameters.
        max_train: keep at most this many training subjects (for quick runs).
        test_slice_offsets: slice offsets for test items.
        label_convention: numbering of the ground-truth files; None -> the dataset's own
            (``"acdc"``: 1 RV, 2 MYO, 3 LV; ``"mnms"``: 1 LV, 2 MYO, 3 RV).

    Example:
        >>> lists = cardiac_datalists("acdc")  # doctest: +SKIP
        >>> sorted(lists), lists["train"][0]["slice_offset"]  # doctest: +SKIP
        (['test', 'train', 'validation'], 0)
    """
    root = resolve_cardiac_dataset(dataset, dataset_dir, synthetic)
    discover = discover_acdc if dataset == "acdc" else discover_mnms
    train_all = discover(root, "training", label_convention=label_convention)
    test = discover_cardiac_split(dataset, root, "testing", label_convention)
    order = np.random.default_rng(seed).permutation(len(train_all))
    n_val = max(1, int(round(val_fraction * len(train_all)))) if val_fraction > 0 else 0
    val = [train_all[i] for i in sorted(order[:n_val])]
    train = [train_all[i] for i in sorted(order[n_val:])]
    if max_train is not None:
        train = train[: int(max_train)]
    if not train:
        raise ValueError(f"no training subjects left in '{root}' after holding out {n_val} for validation")
    return {
        "train": expand_slice_offsets(train, slice_offsets),
        "validation": expand_slice_offsets(val, (0,)),
        "test": expand_slice_offsets(test, test_slice_offsets),
    }
