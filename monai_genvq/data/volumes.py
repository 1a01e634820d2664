"""Reading volumes (NIfTI, or MRC through :mod:`monai_genvq.apps.hyperbolic.cryoet`) and writing segmentations in their geometry."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from monai_genvq.data.errors import VolumeFileError
from monai_genvq.data.mrc import read_mrc, write_mrc

__all__ = [
    "VolumeFileError",
    "discover_volumes",
    "load_volume",
    "save_segmentation",
    "normalize_volume",
    "LoadVolume",
    "LoadVolumed",
    "is_mrc",
]


def is_mrc(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    return any(name.endswith(ext) for ext in (".mrc", ".mrc.gz", ".mrc.bz2", ".map", ".rec", ".st"))


def _read_one(path: str | os.PathLike, mmap: bool = True) -> tuple[np.ndarray, dict]:
    path = Path(path)
    if not path.is_file():
        raise VolumeFileError(f"volume file '{path}' does not exist")
    if is_mrc(path):
        return read_mrc(path, mmap=mmap)
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for corrupt/truncated files
        raise VolumeFileError(f"cannot read NIfTI file '{path}': {exc}") from exc
    if data.ndim != 3:
        raise VolumeFileError(f"'{path}' holds a {data.ndim}-D image of shape {data.shape}; expected a 3-D volume")
    return data, {"format": "nifti", "affine": img.affine, "header": img.header, "path": str(path)}


def normalize_volume(volume: np.ndarray, mode: str = "none", mask: np.ndarray | None = None) -> np.ndarray:
    """``"none"``; ``"percentile"``: 1st–99th percentile (of ``mask`` voxels, e.g. the brain) to [0, 1], clipped;
    ``"zscore"``: zero mean, unit variance (per channel)."""
    if mode == "none":
        return volume
    out = np.empty_like(volume, dtype=np.float32)
    for ch in range(volume.shape[0]):
        v = volume[ch]
        ref = v[mask] if mask is not None and mask.any() else v
        if mode == "percentile":
            lo, hi = np.percentile(ref, [1, 99])
            out[ch] = np.clip((v - lo) / max(hi - lo, 1e-8), 0, 1)
        elif mode == "zscore":
            out[ch] = (v - ref.mean()) / max(ref.std(), 1e-8)
        else:
            raise ValueError(f"normalisation must be 'none', 'percentile' or 'zscore', got {mode!r}")
    return out


def load_volume(
    paths: str | os.PathLike | Sequence[str | os.PathLike], normalize: str = "none", mmap: bool = True
) -> tuple[np.ndarray, dict]:
    """Load one file or several same-shape files (as channels) -> (C, *spatial) float32 and the first file's geometry.

    Raises:
        VolumeFileError: missing/unreadable file, channels of different shapes, or NaN/inf voxels.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    arrays, meta = [], None
    for p in paths:
        data, m = _read_one(p, mmap=mmap)
        if meta is None:
            meta = m
        elif data.shape != arrays[0].shape:
            raise VolumeFileError(
                f"'{p}' has shape {data.shape} but '{paths[0]}' has {arrays[0].shape}; channels must match"
            )
        arrays.append(np.asarray(data, dtype=np.float32))
    vol = np.stack(arrays)
    bad = ~np.isfinite(vol)
    if bad.any():
        raise VolumeFileError(
            f"'{paths[int(np.argwhere(bad.reshape(len(paths), -1).any(1))[0, 0])]}' contains {int(bad.sum())} NaN/inf voxels"
        )
    mask = (vol != 0).any(0) if normalize != "none" else None
    return normalize_volume(vol, normalize, mask), meta  # type: ignore[return-value]


def save_segmentation(seg: np.ndarray, meta: Mapping[str, Any], out_path: str | os.PathLike) -> Path:
    """Write a label volume in the input's geometry (NIfTI affine, or MRC voxel size/origin), atomically."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".tmp-{out_path.name}")
    if meta.get("format") == "mrc":
        write_mrc(tmp, seg.astype(np.int16), voxel_size=meta.get("voxel_size"), origin=meta.get("origin"))
    else:
        header = meta.get("header")
        img = nib.Nifti1Image(
            seg.astype(np.uint8), meta.get("affine", np.eye(4)), header=header.copy() if header is not None else None
        )
        img.set_data_dtype(np.uint8)
        nib.save(img, str(tmp))
    os.replace(tmp, out_path)
    return out_path


class LoadVolume(Transform):
    """Array transform: path(s) -> (C, *spatial) float32 numpy volume (see :func:`load_volume`).

    Example:
        >>> vol = LoadVolume(normalize="percentile")(["t1.nii.gz", "flair.nii.gz"])  # doctest: +SKIP
    """

    def __init__(self, normalize: str = "none") -> None:
        self.normalize = normalize

    def __call__(self, paths):
        return load_volume(paths, self.normalize)[0]


class LoadVolumed(MapTransform):
    """Dictionary version of :class:`LoadVolume`; also stores the source under ``<key>_path``.

    Example:
        >>> LoadVolumed("image")({"image": "toy_000.nii.gz"})["image"].shape  # doctest: +SKIP
        (1, 50, 50, 50)
    """

    def __init__(self, keys: KeysCollection, normalize: str = "none", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadVolume(normalize)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[f"{key}_path"] = d[key]
            d[key] = self.loader(d[key])
        return d


def discover_volumes(
    folder: str | os.PathLike, patterns: Sequence[str] = ("*.nii", "*.nii.gz", "*.mrc", "*.mrc.gz")
) -> list[dict]:
    """Records ``{"image", "name"}`` of every volume file in ``folder`` (for inference on unlabelled inputs).

    Raises:
        FileNotFoundError: the folder does not exist or holds no matching file.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder '{folder}' does not exist")
    files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
    if not files:
        raise FileNotFoundError(f"input folder '{folder}' holds no files matching {list(patterns)}")
    return [{"image": str(p), "name": p.name.split(".nii")[0].split(".mrc")[0]} for p in files]
