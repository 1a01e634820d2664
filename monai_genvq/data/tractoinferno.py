"""TractoInferno layout: discover bundle files, and materialise generated copies of the layout in a cache.

Layout (the public dataset's own)::

    <dataset_dir>/derivatives/{trainset,validset,testset}/sub-XXXX/tractography/sub-XXXX__<BUNDLE>.trk
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["discover_tractoinferno", "default_cache_root", "materialize_dataset", "params_digest"]

COMPLETION_MARKER = ".monai_genvq_complete.json"
_STALE_PARTIAL_SECONDS = 3600


def _splits_in(derivatives: Path) -> list[str]:
    return sorted(p.name for p in derivatives.iterdir() if p.is_dir() and any(p.glob("sub-*")))


def _derivatives_dir(dataset_dir: Path) -> Path:
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"TractoInferno folder '{dataset_dir}' does not exist or is not a folder")
    derivatives = dataset_dir / "derivatives"
    if derivatives.is_dir():
        return derivatives
    if any(dataset_dir.glob("*/sub-*/tractography")):  # the user pointed at derivatives/ itself
        return dataset_dir
    raise FileNotFoundError(
        f"TractoInferno folder '{dataset_dir}' has no 'derivatives' subfolder; expected "
        "derivatives/{trainset,validset,testset}/sub-XXXX/tractography/sub-XXXX__<BUNDLE>.trk"
    )


def discover_tractoinferno(
    dataset_dir: str | os.PathLike,
    split: str | Sequence[str] = "trainset",
    bundles: str | Sequence[str] | None = None,
    extensions: Sequence[str] = (".trk", ".tck"),
) -> list[dict[str, str]]:
    """List the bundle files of a TractoInferno-layout folder.

    Bundle names come from the file names (the part after ``__``), never from a fixed list. When a
    subject has the same bundle in several formats, the first extension in ``extensions`` wins.

    Args:
        dataset_dir: the dataset root (holding ``derivatives/``); ``derivatives/`` itself is accepted too.
        split: ``"trainset"``, ``"validset"``, ``"testset"``, a list of them, or ``"all"`` (every split folder).
        bundles: keep only these bundle names (``None``: all).
        extensions: file extensions to consider, in order of preference.

    Returns:
        Records ``{"path", "subject", "bundle", "split"}`` sorted by split, subject, bundle.

    Raises:
        FileNotFoundError: the folder, its ``derivatives/<split>`` folder, or any streamline file is missing
            (the message names the folder).
        ValueError: a requested bundle name is absent (the message lists the names that exist).

    Example:
        >>> records = discover_tractoinferno("/data/TractoInferno", bundles=["AF_L", "PYT_L"])  # doctest: +SKIP
        >>> records[0]  # doctest: +SKIP
        {'path': '.../sub-1006__AF_L.trk', 'subject': 'sub-1006', 'bundle': 'AF_L', 'split': 'trainset'}
    """
    dataset_dir = Path(dataset_dir).expanduser()
    derivatives = _derivatives_dir(dataset_dir)
    if isinstance(split, str):
        splits = _splits_in(derivatives) if split == "all" else [split]
        if not splits:
            raise FileNotFoundError(f"TractoInferno folder '{derivatives}' holds no split folders with sub-* subjects")
    else:
        splits = list(split)
    extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)

    found: dict[tuple[str, str, str], tuple[int, Path]] = {}
    for split_name in splits:
        split_dir = derivatives / split_name
        if not split_dir.is_dir():
            available = ", ".join(_splits_in(derivatives)) or "none"
            raise FileNotFoundError(
                f"TractoInferno split folder '{split_dir}' does not exist (available splits: {available})"
            )
        n_before = len(found)
        for path in split_dir.glob("sub-*/tractography/sub-*__*"):
            ext = path.suffix.lower()
            if ext not in extensions or not path.is_file():
                continue
            subject = path.parent.parent.name
            bundle = path.name[: -len(path.suffix)].split("__", 1)[1]
            rank = extensions.index(ext)
            key = (split_name, subject, bundle)
            if key not in found or rank < found[key][0]:
                found[key] = (rank, path)
        if len(found) == n_before:
            raise FileNotFoundError(
                f"TractoInferno split folder '{split_dir}' holds no streamline files matching "
                f"sub-*/tractography/sub-*__<BUNDLE>{{{','.join(extensions)}}}"
            )

    if bundles is not None:
        wanted = [bundles] if isinstance(bundles, str) else list(bundles)
        available = sorted({key[2] for key in found})
        missing = [name for name in wanted if name not in available]
        if missing:
            raise ValueError(
                f"bundle(s) {missing} not found under '{derivatives}' for split(s) {splits}; "
                f"available bundle names: {available}"
            )
        found = {key: value for key, value in found.items() if key[2] in wanted}

    return [
        {"path": str(path), "subject": subject, "bundle": bundle, "split": split_name}
        for (split_name, subject, bundle), (_, path) in sorted(found.items())
    ]


def default_cache_root() -> Path:
    """``$MONAI_GENVQ_CACHE`` if set, else ``~/.cache/monai_genvq``."""
    return Path(os.environ.get("MONAI_GENVQ_CACHE") or "~/.cache/monai_genvq").expanduser()


def params_digest(params: Mapping[str, Any]) -> str:
    """Short stable hash of JSON-serialisable parameters (used in cache folder names)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]


def _read_marker(folder: Path) -> Any:
    try:
        return json.loads((folder / COMPLETION_MARKER).read_text())
    except (OSError, ValueError):
        return None


def _remove_stale_partials(target: Path) -> None:
    now = time.time()
    for partial in target.parent.glob(f".{target.name}.partial-*"):
        try:
            if now - partial.stat().st_mtime > _STALE_PARTIAL_SECONDS:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:
            pass


def ensure_generated_dataset(
    name: str,
    version: int,
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
    build: Callable[..., Any],
    target: str | os.PathLike | None = None,
    description: str = "",
) -> Path:
    """A synthetic dataset's folder, generated on first use with ``build(folder, **options)`` (atomic, idempotent).

    ``options`` are ``defaults`` updated with ``overrides`` (unknown names are refused). The default
    folder is ``<cache>/<name>_v<version>``, with a digest of the options appended when they differ
    from the defaults, so every parameter set has its own folder (see :func:`materialize_dataset`).

    Raises:
        TypeError: ``overrides`` names a parameter that ``defaults`` does not have.
    """
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise TypeError(f"unknown {description or name} parameter(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    options = {**defaults, **overrides}
    if "shape" in options:
        options["shape"] = [int(s) for s in options["shape"]]
    params = {"generator": name, "version": version, **options}
    if target is None:
        suffix = "" if options == dict(defaults) else f"-{params_digest(params)}"
        target = default_cache_root() / f"{name}_v{version}{suffix}"
    return materialize_dataset(target, params, lambda folder: build(folder, **options))


def materialize_dataset(target: str | os.PathLike, params: Mapping[str, Any], build: Callable[[Path], None]) -> Path:
    """Create a generated dataset folder once, atomically, and reuse it while ``params`` match.

    ``build(folder)`` writes the dataset into a temporary sibling folder; a completion marker holding
    ``params`` is written last and the folder is renamed onto ``target``. A killed build therefore never
    leaves a folder that is taken as complete, and a folder made with other ``params`` is rebuilt.
    A non-empty ``target`` without the marker is never touched (it may be the user's data).

    Args:
        target: the dataset folder.
        params: JSON-serialisable parameters that define the content.
        build: writes the dataset into the folder it is given.

    Returns:
        ``target``.

    Raises:
        FileExistsError: ``target`` is a non-empty folder that this package did not create.
    """
    target = Path(target).expanduser()
    params = json.loads(json.dumps(dict(params)))  # normalise (tuples -> lists) for comparison
    if _read_marker(target) == params:
        return target
    if target.exists() and _read_marker(target) is None and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(
            f"'{target}' already exists and was not created by monai_genvq; refusing to overwrite it. "
            "Choose another cache folder or remove it."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o777 & ~umask)  # mkdtemp creates 0700; a cache folder is readable like any other
    try:
        build(partial)
        (partial / COMPLETION_MARKER).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
        stale = None
        if target.exists():
            stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex[:8]}")
            os.rename(target, stale)
        try:
            os.rename(partial, target)
        except OSError:
            if _read_marker(target) != params:  # not a concurrent build of the same content
                raise
            shutil.rmtree(partial, ignore_errors=True)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target
