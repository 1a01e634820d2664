"""MRC volumes (cryo-EM / cryo-ET) for MONAI's ``LoadImage`` / ``SaveImage``: :class:`MRCReader`, :class:`MRCWriter`.

MRC stores its data as (z, y, x) and a voxel size and origin per axis, but no orientation. The
reader keeps the file's axis order (z, y, x) and puts the geometry into the MetaTensor's affine,
which maps the array index (i, j, k) to the world coordinates
``(x, y, z) = origin + (k · voxel_x, j · voxel_y, i · voxel_z)`` (Å), see :func:`mrc_affine`. The
writer reads that geometry back from any affine that only permutes, scales and flips the axes, so
a segmentation written from a loaded tomogram overlays it voxel for voxel (same shape, voxel size
and origin), and a NIfTI written from it (e.g. an embedding) sits at the same place in space.

Uncompressed files are read through a memory map (``mrcfile.mmap``): the voxels are copied once,
into the float32 array that ``LoadImage`` returns, without first reading the whole file into
memory; ``.mrc.gz`` / ``.bz2`` are read with ``mrcfile.open``. ``mrcfile.validate`` is deliberately
not called (real EMDB maps fail it yet read fine). Every bad file (missing, unreadable, truncated,
not 3-D, NaN/inf voxels, a zero / negative / non-finite voxel size on some axis) raises :class:`~monai_genvq.data.errors.VolumeFileError` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
from monai.data import ImageReader, ImageWriter
from monai.utils import MetaKeys, SpaceKeys, convert_data_type, ensure_tuple

from monai_genvq.data.errors import VolumeFileError

__all__ = ["MRC_SUFFIXES", "MRCReader", "MRCWriter", "is_mrc", "mrc_affine", "write_mrc"]

MRC_SUFFIXES = (".mrc", ".mrc.gz", ".mrc.bz2", ".map", ".rec", ".st")
"""File name endings read as MRC (case-insensitive)."""


def is_mrc(path: str | os.PathLike) -> bool:
    """Whether ``path`` ends with one of :data:`MRC_SUFFIXES`.

    Example:
        >>> is_mrc("tomo/reconstruction.MRC"), is_mrc("t1.nii.gz")
        (True, False)
    """
    return str(path).lower().endswith(MRC_SUFFIXES)


def mrc_affine(voxel_size: float | Sequence[float] = 1.0, origin: float | Sequence[float] = 0.0) -> np.ndarray:
    """The 4 × 4 affine of a (z, y, x) MRC array with the given voxel size and origin (both in (z, y, x) order, Å).

    Array axis 0 (z) moves along world z, axis 2 (x) along world x: the affine is an axis
    permutation with the voxel sizes on it and the origin as translation.

    Args:
        voxel_size: (z, y, x) voxel size or one value for all axes.
        origin: (z, y, x) world position of voxel (0, 0, 0), or one value.

    Example:
        >>> mrc_affine((10.0, 8.0, 6.0), (3.0, 2.0, 1.0))
        array([[ 0.,  0.,  6.,  1.],
               [ 0.,  8.,  0.,  2.],
               [10.,  0.,  0.,  3.],
               [ 0.,  0.,  0.,  1.]])
    """
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    o = np.broadcast_to(np.asarray(origin, dtype=np.float64), (3,))
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for axis in range(3):  # array axis 0 is z = world axis 2
        affine[2 - axis, axis] = vs[axis]
        affine[2 - axis, 3] = o[axis]
    return affine


def write_mrc(
    path: str | os.PathLike,
    data: np.ndarray,
    voxel_size: float | Sequence[float] | None = None,
    origin: float | Sequence[float] | None = None,
) -> Path:
    """Write a (z, y, x) array as an MRC file (the file's own axis order), voxel size and origin in (z, y, x), Å.

    The primitive under :class:`MRCWriter` (which takes the geometry from an affine instead); also
    what the synthetic cryo-ET generator writes with.

    Args:
        path: output file; its folder is created.
        data: 3-D array in (z, y, x) order, of a dtype MRC supports (int8, int16, uint16, float32, …).
        voxel_size: (z, y, x) voxel size or one value (None: mrcfile's default, 0).
        origin: (z, y, x) origin or one value (None: 0).

    Example:
        >>> import tempfile
        >>> path = write_mrc(Path(tempfile.mkdtemp()) / "t.mrc", np.zeros((2, 3, 4), np.float32), voxel_size=10.0)
        >>> path.name
        't.mrc'
    """
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


def _read_one(path: Path, mmap: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, y, x) float32 voxels, (z, y, x) voxel size and origin of one file, or VolumeFileError naming it."""
    if not path.is_file():
        raise VolumeFileError(f"MRC file '{path}' does not exist")
    compressed = path.suffix.lower() in (".gz", ".bz2")
    try:
        opener = mrcfile.mmap if (mmap and not compressed) else mrcfile.open
        with opener(str(path), mode="r", permissive=False) as mrc:
            if mrc.data is None or mrc.data.ndim != 3:
                raise VolumeFileError(
                    f"MRC file '{path}' does not hold a 3-D volume "
                    f"(shape {None if mrc.data is None else tuple(mrc.data.shape)})"
                )
            data = np.array(mrc.data, dtype=np.float32)  # the one copy, read through the memory map
            voxel_size = np.array([mrc.voxel_size.z, mrc.voxel_size.y, mrc.voxel_size.x], dtype=np.float64)
            origin = np.array([mrc.header.origin.z, mrc.header.origin.y, mrc.header.origin.x], dtype=np.float64)
    except VolumeFileError:
        raise
    except Exception as exc:  # mrcfile raises ValueError/OSError/EOFError for bad or truncated files
        raise VolumeFileError(f"cannot read MRC file '{path}': {exc}") from exc
    bad = ~np.isfinite(data)
    if bad.any():
        raise VolumeFileError(f"MRC file '{path}' contains {int(bad.sum())} NaN/inf voxels")
    unset = bool(np.all(voxel_size == 0))  # the MRC convention for "no voxel size": read as 1 Å
    if not unset and not (np.isfinite(voxel_size).all() and (voxel_size > 0).all()):
        raise VolumeFileError(
            f"MRC file '{path}' has voxel size (z, y, x) {tuple(float(v) for v in voxel_size)} Å; every axis "
            "must be a finite positive size (or all three 0, meaning unset)"
        )
    return data, voxel_size, origin


class MRCReader(ImageReader):
    """MONAI ``ImageReader`` for MRC volumes: use it with ``LoadImage`` / ``LoadImaged``.

    ``get_data`` returns the (z, y, x) float32 voxels (several files: stacked as channels, which
    must share shape and geometry) and the metadata ``affine`` / ``original_affine``
    (:func:`mrc_affine`; an unset voxel size, 0, reads as 1 Å), ``spatial_shape``,
    ``original_channel_dim``, ``space`` and, as read from the header, ``voxel_size`` and
    ``origin`` in (z, y, x) order.

    ``read`` only checks the names: the files are opened in ``get_data``, so that a bad file raises
    :class:`~monai_genvq.data.errors.VolumeFileError` naming it (``LoadImage`` would turn an error
    raised in ``read`` into a generic "cannot find a suitable reader").

    Args:
        mmap: read uncompressed files through a memory map (no full in-memory copy of the file).
        kwargs: accepted for ``LoadImage``'s reader construction and unused.

    Example:
        >>> from monai.transforms import LoadImage
        >>> img = LoadImage(reader=MRCReader(), ensure_channel_first=True)("reconstruction.mrc")  # doctest: +SKIP
        >>> img.shape, img.meta["voxel_size"]  # doctest: +SKIP
        (torch.Size([1, 48, 96, 96]), array([10., 10., 10.]))

        In a bundle config, NIfTI and MRC inputs alike (the last reader listed is tried first)::

            {"_target_": "LoadImaged", "keys": "image", "ensure_channel_first": true,
             "reader": ["monai_genvq.data.MRCReader", "NibabelReader"]}
    """

    def __init__(self, mmap: bool = True, **kwargs: Any) -> None:
        super().__init__()
        self.mmap = bool(mmap)
        self.kwargs = kwargs

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """Whether every file name ends with one of :data:`MRC_SUFFIXES`."""
        return all(is_mrc(f) for f in ensure_tuple(filename))

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs: Any) -> Path | list[Path]:
        """The file path(s), checked by name only (see the class docstring); ValueError for a non-MRC name."""
        names = ensure_tuple(data)
        if not names or not self.verify_suffix(names):
            raise ValueError(f"MRCReader reads files ending in {MRC_SUFFIXES}, got {[str(n) for n in names]}")
        paths = [Path(n) for n in names]
        return paths if len(paths) > 1 else paths[0]

    def get_data(self, img: Path | Sequence[Path]) -> tuple[np.ndarray, dict]:
        """Read the file(s): (z, y, x) or (C, z, y, x) float32 array and its metadata dict."""
        paths = [Path(p) for p in ensure_tuple(img)]
        arrays, first = [], None
        for path in paths:
            data, voxel_size, origin = _read_one(path, self.mmap)
            if first is None:
                first = (path, data.shape, voxel_size, origin)
            elif data.shape != first[1] or not (np.allclose(voxel_size, first[2]) and np.allclose(origin, first[3])):
                raise VolumeFileError(
                    f"'{path}' (shape {data.shape}, voxel size {tuple(voxel_size)}, origin {tuple(origin)}) does not "
                    f"match '{first[0]}' (shape {first[1]}, voxel size {tuple(first[2])}, origin {tuple(first[3])}); "
                    "channels must share their geometry"
                )
            arrays.append(data)
        assert first is not None
        _, shape, voxel_size, origin = first
        affine = mrc_affine(np.where(voxel_size > 0, voxel_size, 1.0), origin)
        meta = {
            MetaKeys.AFFINE: affine,
            MetaKeys.ORIGINAL_AFFINE: affine.copy(),
            MetaKeys.SPATIAL_SHAPE: np.asarray(shape),
            MetaKeys.SPACE: SpaceKeys.RAS,
            MetaKeys.ORIGINAL_CHANNEL_DIM: 0 if len(arrays) > 1 else float("nan"),
            "voxel_size": voxel_size,
            "origin": origin,
        }
        return (np.stack(arrays) if len(arrays) > 1 else arrays[0]), meta


def _file_geometry(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 3-D array and its affine -> the (z, y, x) file-order array, voxel size and origin.

    The affine may permute, scale and flip the axes (each array axis moves along one world axis);
    an oblique affine cannot be stored in MRC and raises ValueError.
    """
    linear, origin = np.asarray(affine, np.float64)[:3, :3], np.asarray(affine, np.float64)[:3, 3].copy()
    world_of_axis = np.abs(linear).argmax(0)
    for axis in range(3):
        off_axis = np.delete(linear[:, axis], world_of_axis[axis])
        if np.abs(off_axis).max() > 1e-6 * np.abs(linear[:, axis]).max():
            raise ValueError(f"MRC stores no orientation: cannot write an oblique affine\n{affine}")
    if sorted(world_of_axis) != [0, 1, 2]:
        raise ValueError(f"MRC needs one array axis per world axis; the affine maps two onto one\n{affine}")
    spacing = linear[world_of_axis, range(3)]
    for axis in range(3):
        if spacing[axis] < 0:  # store increasing coordinates: flip the axis and move the origin to its far end
            data = np.flip(data, axis)
            origin[world_of_axis[axis]] += spacing[axis] * (data.shape[axis] - 1)
            spacing[axis] = -spacing[axis]
    order = [int(np.flatnonzero(world_of_axis == w)[0]) for w in (2, 1, 0)]  # file axes z, y, x
    return data.transpose(order), spacing[order], origin[[2, 1, 0]]


class MRCWriter(ImageWriter):
    """MONAI ``ImageWriter`` for MRC: use it with ``SaveImage`` / ``SaveImaged`` (``writer=MRCWriter``).

    The voxel size and origin come from the affine (the MetaTensor's, or ``meta_dict["affine"]``):
    an image loaded with :class:`MRCReader` is written back in its own geometry, and a volume with
    any axis-aligned affine (permuted, scaled, flipped) is stored as (z, y, x) with positive voxel
    sizes. MRC holds one channel.

    Args:
        output_dtype: data type of the file (MRC supports int8, int16, uint16, float16/32, complex64).
        kwargs: passed to ``ImageWriter``.

    Example:
        >>> from monai.transforms import LoadImage, SaveImage
        >>> seg = LoadImage(reader=MRCReader(), ensure_channel_first=True)("reconstruction.mrc") > 0  # doctest: +SKIP
        >>> SaveImage(output_dir="out", output_ext=".mrc", writer=MRCWriter, output_dtype=np.int16)(seg)  # doctest: +SKIP
    """

    output_dtype: Any
    affine: Any

    def __init__(self, output_dtype: Any = np.float32, **kwargs: Any) -> None:
        super().__init__(output_dtype=output_dtype, affine=None, **kwargs)

    def set_data_array(
        self, data_array: Any, channel_dim: int | None = 0, squeeze_end_dims: bool = True, **kwargs: Any
    ) -> None:
        """Keep ``data_array`` as a 3-D numpy array (the channel dimension, of size 1, is removed)."""
        self.data_obj = self.convert_to_channel_last(
            data=data_array,
            channel_dim=channel_dim,
            squeeze_end_dims=squeeze_end_dims,
            spatial_ndim=kwargs.pop("spatial_ndim", 3),
        )

    def set_metadata(self, meta_dict: Mapping | None = None, resample: bool = False, **options: Any) -> None:
        """Take the affine from ``meta_dict`` (resampled to ``original_affine`` first when ``resample``)."""
        original_affine, affine, spatial_shape = self.get_meta_info(meta_dict)
        if self.output_dtype is None and self.data_obj is not None:
            self.output_dtype = self.data_obj.dtype
        self.data_obj, self.affine = self.resample_if_needed(
            data_array=self.data_obj,
            affine=affine,
            target_affine=original_affine if resample else None,
            output_spatial_shape=spatial_shape if resample else None,
            mode=options.pop("mode", "nearest"),
            padding_mode=options.pop("padding_mode", "border"),
            align_corners=options.pop("align_corners", False),
            dtype=options.pop("dtype", np.float64),
        )

    def write(self, filename: str | os.PathLike, verbose: bool = False, **kwargs: Any) -> None:
        """Write the array in file order with the voxel size and origin of the affine (identity if none)."""
        super().write(filename, verbose=verbose)
        data = convert_data_type(self.data_obj, np.ndarray)[0]
        if data.ndim != 3:
            raise ValueError(f"MRC holds one 3-D volume; got an array of shape {data.shape} for '{filename}'")
        affine = np.eye(4) if self.affine is None else convert_data_type(self.affine, np.ndarray)[0]
        data, voxel_size, origin = _file_geometry(data, affine)
        if self.output_dtype is not None:
            data = data.astype(self.output_dtype, copy=False)
        write_mrc(filename, data, voxel_size=voxel_size, origin=origin)
