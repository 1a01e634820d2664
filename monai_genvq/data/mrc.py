"""MRC volumes (cryo-EM / cryo-ET) through mrcfile.

MRC ``.data`` is (z, y, x); the package keeps the file's axis order, so a segmentation written back
with :func:`write_mrc` overlays the input voxel for voxel (same voxel size and origin). Large files
are memory-mapped (``mrcfile.mmap``); ``.mrc.gz``/``.bz2`` are read with ``mrcfile.open``.
``mrcfile.validate`` is deliberately not called (real EMDB maps fail it yet read fine).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from monai_genvq.data.errors import VolumeFileError

__all__ = ["read_mrc", "write_mrc"]


def read_mrc(path: str | os.PathLike, mmap: bool = True) -> tuple[np.ndarray, dict]:
    """(z, y, x) float32 data (memory-mapped when possible) and ``{"format": "mrc", "voxel_size", "origin"}``.

    Raises:
        VolumeFileError: missing, unreadable/truncated, or not 3-D.
    """
    import mrcfile

    path = Path(path)
    if not path.is_file():
        raise VolumeFileError(f"MRC file '{path}' does not exist")
    compressed = path.suffix.lower() in (".gz", ".bz2")
    try:
        opener = mrcfile.mmap if (mmap and not compressed) else mrcfile.open
        with opener(str(path), mode="r", permissive=False) as mrc:
            data = np.asarray(mrc.data, dtype=np.float32)
            voxel_size = tuple(float(v) for v in (mrc.voxel_size.z, mrc.voxel_size.y, mrc.voxel_size.x))
            origin = tuple(float(v) for v in (mrc.header.origin.z, mrc.header.origin.y, mrc.header.origin.x))
    except Exception as exc:  # mrcfile raises ValueError/OSError/EOFError for bad or truncated files
        raise VolumeFileError(f"cannot read MRC file '{path}': {exc}") from exc
    if data is None or data.ndim != 3:
        raise VolumeFileError(
            f"MRC file '{path}' does not hold a 3-D volume (shape {None if data is None else data.shape})"
        )
    return data, {"format": "mrc", "voxel_size": voxel_size, "origin": origin, "path": str(path)}


def write_mrc(path: str | os.PathLike, data: np.ndarray, voxel_size=None, origin=None) -> Path:
    """Write a (z, y, x) array as MRC with the given voxel size (Å, (z, y, x) or scalar) and origin."""
    import mrcfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(str(path), overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data))
        if voxel_size is not None:
            vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float32), (3,))
            mrc.voxel_size = (float(vs[2]), float(vs[1]), float(vs[0]))
        if origin is not None:
            o = np.broadcast_to(np.asarray(origin, dtype=np.float32), (3,))
            mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = float(o[2]), float(o[1]), float(o[0])
    return path
