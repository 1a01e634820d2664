"""Cryo-ET tomograms in MRC files (mrcfile), SHREC'21-like layout discovery.

MRC ``.data`` is (z, y, x); the package keeps the file's axis order, so a segmentation written back
with :func:`write_mrc` overlays the input voxel for voxel (same voxel size and origin). Large files
are memory-mapped (``mrcfile.mmap``); ``.mrc.gz``/``.bz2`` are read with ``mrcfile.open``.
``mrcfile.validate`` is deliberately not called (real EMDB maps fail it yet read fine).

Layout (SHREC'21, verify against your copy)::

    <root>/model_{0..9}/reconstruction.mrc, class_mask.mrc, occupancy_mask.mrc, particle_locations.txt
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from monai_genvq.data.volumes import VolumeFileError

__all__ = ["read_mrc", "write_mrc", "discover_cryoet"]


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
        raise VolumeFileError(f"MRC file '{path}' does not hold a 3-D volume (shape {None if data is None else data.shape})")
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


def discover_cryoet(dataset_dir: str | os.PathLike, models: list[str] | None = None) -> list[dict]:
    """Records ``{"image": reconstruction.mrc, "label": class_mask.mrc, "name"}`` of a SHREC-like folder.

    Raises:
        FileNotFoundError: folder or a model's reconstruction missing (named).
    """
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"cryo-ET folder '{root}' does not exist")
    folders = sorted(p for p in root.glob("model_*") if p.is_dir())
    if models is not None:
        folders = [f for f in folders if f.name in models]
    if not folders:
        raise FileNotFoundError(f"'{root}' holds no model_*/ folders with reconstruction.mrc (SHREC'21 layout)")
    records = []
    for f in folders:
        rec = f / "reconstruction.mrc"
        if not rec.is_file():
            raise FileNotFoundError(f"tomogram '{rec}' is missing")
        item = {"image": str(rec), "name": f.name}
        if (f / "class_mask.mrc").is_file():
            item["label"] = str(f / "class_mask.mrc")
        records.append(item)
    return records
