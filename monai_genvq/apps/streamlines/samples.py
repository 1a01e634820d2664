"""Bundle samples read on access from each file's prepared groups, so the dataset is never all in memory."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from monai_genvq.apps.streamlines.transforms import StreamlineNormalizer

__all__ = ["StreamlineSamples"]

GroupSource = str | os.PathLike | np.ndarray


class StreamlineSamples(Sequence):
    """A sequence of bundle sample dicts, each read (and normalised, with a normaliser) when accessed.

    ``samples[i]`` is ``{"bundle": float32 (3, group_size, n_points), "name", "subject", "path", "split",
    "group"}``: group ``group`` of one file's prepared groups, in mm, or mapped to [-1, 1] by
    ``normalizer``. A file's groups are a ``.npy`` path (a group cache entry, memory-mapped for each
    access, so neither the data nor an open file per bundle stays in memory) or an array in memory.
    A sample costs two integers; slicing, :meth:`subset` and :meth:`normalized` are views over the same
    groups, and ``+`` with another sequence gives a list.

    Args:
        files: per file, ``(groups, fields)``: a ``.npy`` path or a float32 ``(G, 3, group_size, n_points)``
            array, and the sample fields ``{"name", "subject", "path", "split"}``.
        normalizer: applied to each bundle on access; ``None`` gives millimetres.

    Example:
        >>> fields = {"name": "AF_L", "subject": "sub-01", "path": "sub-01__AF_L.trk", "split": "trainset"}
        >>> samples = StreamlineSamples([(np.zeros((2, 3, 4, 5), np.float32), fields)])
        >>> len(samples), samples[1]["bundle"].shape, samples[1]["group"]
        (2, (3, 4, 5), 1)
    """

    def __init__(
        self,
        files: Iterable[tuple[GroupSource, Mapping[str, Any]]] = (),
        normalizer: StreamlineNormalizer | None = None,
    ) -> None:
        self._sources: list[GroupSource] = []
        self._fields: list[dict[str, Any]] = []
        counts = []
        for source, fields in files:
            source = source if isinstance(source, np.ndarray) else os.fspath(source)
            self._sources.append(source)
            self._fields.append(dict(fields))
            counts.append(len(self._read(len(self._sources) - 1)))
        self._file = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        self._group = np.concatenate([np.arange(n, dtype=np.int64) for n in counts]) if counts else self._file.copy()
        self._normalizer = normalizer

    def _view(self, file: np.ndarray, group: np.ndarray, normalizer: StreamlineNormalizer | None) -> StreamlineSamples:
        view = StreamlineSamples(normalizer=normalizer)
        view._sources, view._fields = self._sources, self._fields  # shared, never modified
        view._file, view._group = file, group
        return view

    def _read(self, file: int) -> np.ndarray:
        source = self._sources[file]
        if isinstance(source, np.ndarray):
            return source
        try:
            return np.load(source, mmap_mode="r")
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"prepared streamline groups '{source}' of '{self._fields[file].get('path')}' are gone: the group "
                "cache was cleared while in use. Run again to prepare them."
            ) from err

    def __len__(self) -> int:
        return len(self._file)

    def __getitem__(self, index: int | slice) -> dict[str, Any] | StreamlineSamples:
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        file, group = int(self._file[index]), int(self._group[index])
        bundle = np.array(self._read(file)[group], dtype=np.float32)
        if self._normalizer is not None:
            bundle = self._normalizer.normalize(bundle)
        return {"bundle": bundle, **self._fields[file], "group": group}

    def __add__(self, other: Sequence) -> list:
        return list(self) + list(other)

    def __radd__(self, other: Sequence) -> list:
        return list(other) + list(self)

    @property
    def normalizer(self) -> StreamlineNormalizer | None:
        """The normaliser applied on access (``None``: bundles in mm)."""
        return self._normalizer

    def field(self, key: str) -> list:
        """One field of every sample (``"name"``, ``"subject"``, ``"path"``, ``"split"`` or ``"group"``),
        without reading any bundle."""
        if key == "group":
            return self._group.tolist()
        return [self._fields[f][key] for f in self._file.tolist()]

    def subset(self, indices: Iterable[int]) -> StreamlineSamples:
        """The samples at ``indices``, in that order (a view)."""
        indices = np.fromiter(indices, dtype=np.int64)
        return self._view(self._file[indices], self._group[indices], self._normalizer)

    def normalized(self, normalizer: StreamlineNormalizer | None) -> StreamlineSamples:
        """The same samples, their bundles mapped by ``normalizer`` on access (``None``: mm)."""
        return self._view(self._file, self._group, normalizer)

    def bundle_blocks(self) -> Iterator[np.ndarray]:
        """The bundles in mm, one file at a time, as float32 ``(k, 3, group_size, n_points)`` arrays.

        One pass over the data holding one file's groups, e.g. to fit a normaliser:
        ``StreamlineNormalizer().fit(samples.bundle_blocks())``.
        """
        order = np.argsort(self._file, kind="stable")
        files = self._file[order]
        starts = np.flatnonzero(np.r_[True, files[1:] != files[:-1]]) if len(files) else np.zeros(0, np.int64)
        for start, stop in zip(starts.tolist(), starts[1:].tolist() + [len(files)]):
            yield np.array(self._read(int(files[start]))[np.sort(self._group[order[start:stop]])], dtype=np.float32)

    def __repr__(self) -> str:
        units = "normalised" if self._normalizer is not None else "mm"
        return f"StreamlineSamples({len(self)} samples from {len(set(self._file.tolist()))} files, {units})"
