"""Atomic file writes: every output of the package goes through :func:`atomic_path`.

A file is written under a temporary sibling name and moved over the target with ``os.replace``
(atomic on POSIX and Windows), so a reader or a killed run never sees half a file, and the previous
version stays valid until the new one is complete. The temporary name keeps the target's suffix
(``.nii.gz``, ``.trk``, ``.png`` …) because several writers pick the format from it, and the file
is created by the writer itself, so it gets the user's umask (``tempfile.mkstemp`` would make it 0600).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "write_json"]


def _suffixes(path: Path) -> str:
    name = path.name.lstrip(".")
    return name[name.index(".") :] if "." in name else ""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write to; on success it replaces ``path``.

    The parent folder is created. If the body raises, the temporary file is removed and ``path``
    keeps its previous content.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{_suffixes(path)}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path`` (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path`` (see :func:`atomic_path`).

    Example:
        >>> import tempfile
        >>> atomic_write_text(Path(tempfile.mkdtemp()) / "a" / "b.md", "# title\\n").read_text()
        '# title\\n'
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Atomically write ``data`` as indented UTF-8 JSON."""
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")
