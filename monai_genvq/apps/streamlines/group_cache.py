"""Prepared streamline groups cached per file, so a bundle file is loaded and resampled once, not every run.

Preparing a file (load, resample, group, canonical order) costs far more than reading its groups back.
Each file's groups, a float32 ``(G, 3, group_size, n_points)`` array in mm, are stored as one ``.npy``
under ``<cache root>/streamline_groups`` (the cache root is ``$MONAI_GENVQ_CACHE`` or
``~/.cache/monai_genvq``), named ``<file stem>-<key>.npy``. The key hashes the file's resolved path, size
and modification time (ns), every parameter that changes the result and :data:`GROUP_CACHE_VERSION`,
so a file changed on disk or other parameters get a new entry. Entries are written to a temporary
sibling and renamed (:func:`~monai_genvq.utils.fileio.atomic_path`): a killed run never leaves a half
entry under an entry's name, and an entry that cannot be read as the expected array is prepared again.
Entries are read back memory-mapped. Deleting the folder clears the cache.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.apps.streamlines.io import streamline_stem
from monai_genvq.utils.dataset_cache import default_cache_root, params_digest
from monai_genvq.utils.fileio import atomic_path

__all__ = [
    "GROUP_CACHE_VERSION",
    "default_group_cache_dir",
    "resolve_group_cache",
    "group_cache_entry",
    "cached_groups",
]

# bump when the preparation (loading, resampling, grouping, canonical order) changes its output
GROUP_CACHE_VERSION = 1


def default_group_cache_dir() -> Path:
    """``<cache root>/streamline_groups``, the cache root being ``$MONAI_GENVQ_CACHE`` or ``~/.cache/monai_genvq``."""
    return default_cache_root() / "streamline_groups"


def resolve_group_cache(group_cache: str | os.PathLike | bool | None) -> Path | None:
    """The cache folder a ``group_cache`` option means: ``None``, ``True`` or ``""``: the default folder;
    ``False`` (or ``"false"``/``"off"``, as ``--group_cache_dir false`` arrives from the command line): no
    cache (``None``); anything else: that folder.

    Example:
        >>> resolve_group_cache(False) is None and resolve_group_cache("false") is None
        True
        >>> resolve_group_cache("/data/groups")
        PosixPath('/data/groups')
    """
    if group_cache is False or (isinstance(group_cache, str) and group_cache.lower() in ("false", "off")):
        return None
    if group_cache is None or group_cache is True or str(group_cache) == "":
        return default_group_cache_dir()
    return Path(group_cache).expanduser()


def group_cache_entry(cache_dir: str | os.PathLike, source: str | os.PathLike, params: Mapping[str, Any]) -> Path:
    """The entry of ``source`` prepared with ``params`` (JSON-serialisable) in ``cache_dir``.

    Args:
        cache_dir: the cache folder.
        source: the streamline file (it must exist: its size and modification time are part of the key).
        params: everything besides the file that changes the prepared groups.

    Example:
        >>> group_cache_entry("/cache", "sub-01__AF_L.trk", {"n_points": 64})  # doctest: +SKIP
        PosixPath('/cache/sub-01__AF_L-3f1c0a9e2b.npy')
    """
    resolved = Path(source).resolve()
    stat = resolved.stat()
    key = {
        "version": GROUP_CACHE_VERSION,
        "path": str(resolved),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        **params,
    }
    return Path(cache_dir) / f"{streamline_stem(resolved)}-{params_digest(key)}.npy"


def _open_entry(entry: Path, group_shape: tuple[int, ...]) -> np.ndarray | None:
    """The entry memory-mapped, or None when it is missing or not a float32 ``(G, *group_shape)`` array."""
    try:
        groups = np.load(entry, mmap_mode="r")
    except (OSError, ValueError):
        return None
    ok = groups.dtype == np.float32 and groups.ndim == 1 + len(group_shape) and groups.shape[1:] == group_shape
    return groups if ok and len(groups) > 0 else None


def cached_groups(
    source: str | os.PathLike,
    params: Mapping[str, Any],
    prepare: Callable[[], np.ndarray],
    group_shape: tuple[int, ...],
    cache_dir: str | os.PathLike | None,
) -> np.ndarray:
    """The prepared groups of one file: read from the cache, or made by ``prepare()`` and stored there.

    Args:
        source: the streamline file.
        params: everything besides the file that changes the result (see :func:`group_cache_entry`).
        prepare: makes the float32 ``(G, *group_shape)`` array from the file.
        group_shape: the shape of one group, ``(3, group_size, n_points)``; an entry of another shape is
            prepared again.
        cache_dir: the cache folder; ``None`` prepares without a cache.

    Returns:
        The groups: a read-only ``np.memmap`` of the entry, or an array in memory without a cache (also
        when the file changed while it was prepared, or the entry could not be written: with a warning).

    Example:
        >>> groups = cached_groups("sub-01__AF_L.trk", {"n_points": 64}, prepare, (3, 64, 64), "/cache")  # doctest: +SKIP
    """
    if cache_dir is None or not Path(source).is_file():
        return prepare()  # a missing file is refused by the loader, with its own message
    entry = group_cache_entry(cache_dir, source, params)
    groups = _open_entry(entry, tuple(group_shape))
    if groups is not None:
        return groups
    groups = prepare()
    if group_cache_entry(cache_dir, source, params) != entry:  # the file changed while it was read
        return groups
    try:
        with atomic_path(entry) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(groups, dtype=np.float32))
    except OSError as err:
        warnings.warn(
            f"Streamline group cache: could not write '{entry}' ({err}); the groups of '{source}' stay in memory. "
            "Choose a writable folder with group_cache, or turn the cache off with group_cache=False.",
            stacklevel=2,
        )
        return groups
    return np.load(entry, mmap_mode="r")
