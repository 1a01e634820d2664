"""Generated datasets in a cache folder: made once, atomically, reused while their parameters match.

Every synthetic dataset of the package (streamlines, cardiac phantom, slices, toy hierarchy, BraTS,
cryo-ET, brain phantom) is written through :func:`ensure_generated_dataset` into
``$MONAI_GENVQ_CACHE`` (default ``~/.cache/monai_genvq``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "COMPLETION_MARKER",
    "default_cache_root",
    "ensure_generated_dataset",
    "materialize_dataset",
    "params_digest",
]

COMPLETION_MARKER = ".monai_genvq_complete.json"
_STALE_PARTIAL_SECONDS = 3600


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
