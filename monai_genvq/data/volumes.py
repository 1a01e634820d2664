"""Finding the volume files of a folder and reading them with the project's checks.

Volumes are read with MONAI's ``LoadImage`` (NIfTI, or MRC through :class:`~monai_genvq.data.mrc.MRCReader`)
wrapped by :class:`LoadVolume` / :class:`LoadVolumed`, the one place where a reader's error (a truncated
``.nii.gz``, a corrupt header, channels of different shapes, a zero / negative / non-finite voxel
spacing) becomes a :class:`~monai_genvq.data.errors.VolumeFileError` naming the file; they are written
with ``SaveImage`` in their own geometry, under names from :func:`volume_stem` (checked to be unique by
:func:`check_unique_output_names` before anything is written).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mrcfile
import nibabel as nib
import numpy as np
from monai.transforms import LoadImage, LoadImaged

from monai_genvq.data.errors import VolumeFileError
from monai_genvq.data.mrc import MRCReader

__all__ = [
    "LoadVolume",
    "LoadVolumed",
    "VOLUME_SUFFIXES",
    "check_unique_output_names",
    "discover_volumes",
    "nifti_spacing_problem",
    "volume_shape",
    "volume_stem",
]

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mrc.gz", ".mrc.bz2", ".mrc", ".map", ".rec", ".st")
"""File name endings removed by :func:`volume_stem` (longest first, case-insensitive)."""


def volume_stem(path: str | os.PathLike, suffixes: Sequence[str] = VOLUME_SUFFIXES) -> str:
    """The file name without its volume extension; every other dot is kept (``subj.run1.nii.gz`` -> ``subj.run1``).

    Example:
        >>> volume_stem("in/subj.run1.nii.gz"), volume_stem("model_0/reconstruction.MRC")
        ('subj.run1', 'reconstruction')
    """
    name = Path(path).name
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.lower().endswith(suffix.lower()) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def check_unique_output_names(
    files: Sequence[str | os.PathLike],
    stem: Callable[[str], str] = volume_stem,
    error: Callable[[str], Exception] = VolumeFileError,
) -> list[str]:
    """Refuse inputs that would be written to the same output name (one would overwrite the other).

    Call it before anything is written. Returns the output stems, in the order of ``files``.

    Raises:
        VolumeFileError (or ``error``): two inputs share a stem; the message names both.

    Example:
        >>> check_unique_output_names(["a/subj.run1.nii.gz", "a/subj.run2.nii.gz"])
        ['subj.run1', 'subj.run2']
    """
    seen: dict[str, str] = {}
    stems = []
    for f in files:
        s = stem(str(f))
        if s in seen:
            raise error(
                f"inputs '{seen[s]}' and '{f}' would both be written as '{s}' (same name without the extension), "
                "so one output would overwrite the other; rename one of them"
            )
        seen[s] = str(f)
        stems.append(s)
    return stems


def _is_nifti(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".nii", ".nii.gz"))


def raw_nifti_header(path: str | os.PathLike) -> Any:
    """The NIfTI-1/2 header of ``path`` exactly as stored (None for another format).

    nibabel "fixes" a header when it loads it (a zero or negative ``pixdim`` becomes positive);
    ``from_fileobj(check=False)`` reads it without those fixes, so the checks see what the file says.
    """
    header = nib.load(str(path)).header  # header only: the voxels stay on disk
    if not isinstance(header, nib.Nifti1Header):  # Nifti2Header is a subclass
        return None
    with nib.openers.ImageOpener(str(path)) as handle:
        return type(header).from_fileobj(handle, check=False)


def nifti_spacing_problem(path: str | os.PathLike, affine: Any = None) -> str | None:
    """What is wrong with a NIfTI file's voxel spacing (header ``pixdim``, and the affine if given), or None.

    Only spatial axes longer than one voxel are checked; the spacing must be finite and positive.

    Example:
        >>> nifti_spacing_problem("t1.nii.gz")  # doctest: +SKIP
        "voxel spacing (pixdim) of axis 1 is 0.0; it must be a finite positive size in mm"
    """
    try:
        header = raw_nifti_header(path)
    except Exception:  # unreadable headers are reported by the reader itself
        return None
    if header is None:
        return None
    dim, pixdim = np.asarray(header["dim"]), np.asarray(header["pixdim"])
    n = int(min(max(dim[0], 0), 3))
    for axis in range(1, n + 1):
        if dim[axis] > 1 and not (np.isfinite(pixdim[axis]) and pixdim[axis] > 0):
            return f"voxel spacing (pixdim) of axis {axis} is {float(pixdim[axis])}; it must be a finite positive size"
    if affine is not None:
        lin = np.asarray(affine, dtype=np.float64)[:3, :3]
        norms = np.linalg.norm(lin, axis=0) if np.isfinite(lin).all() else np.full(3, np.nan)
        for axis in range(min(n, 3)):
            if dim[axis + 1] > 1 and not (np.isfinite(norms[axis]) and norms[axis] > 0):
                return (
                    f"the affine gives axis {axis + 1} a voxel spacing of {float(norms[axis])}; "
                    "it must be a finite positive size"
                )
    return None


def volume_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """Spatial shape of a NIfTI (first three axes, from the header) or MRC (z, y, x) file, without reading the voxels.

    Raises:
        VolumeFileError: the file is missing or its header cannot be read (named).
    """
    path = Path(path)
    if not path.is_file():
        raise VolumeFileError(f"volume file '{path}' does not exist")
    try:
        if _is_nifti(path):
            return tuple(int(s) for s in nib.load(str(path)).shape[:3])
        compressed = path.suffix.lower() in (".gz", ".bz2")
        with (mrcfile.open if compressed else mrcfile.mmap)(str(path), mode="r", permissive=False) as mrc:
            return tuple(int(s) for s in mrc.data.shape)
    except Exception as exc:
        raise VolumeFileError(f"cannot read the header of '{path}': {type(exc).__name__}: {exc}") from exc


class LoadVolume(LoadImage):
    """MONAI ``LoadImage`` whose every failure is a :class:`VolumeFileError` naming the file(s).

    Reads NIfTI (MONAI's readers) and MRC (:class:`~monai_genvq.data.mrc.MRCReader`, registered when no
    reader is given). On top of ``LoadImage`` it refuses, naming the file: a truncated or corrupt file
    (e.g. a ``.nii.gz`` cut mid-data, whose header still reads: gzip/EOF errors), channel files of
    different shapes (naming both files and shapes), and a zero / negative / non-finite NIfTI voxel
    spacing (``pixdim``, which nibabel would silently replace by 1 or its absolute value).

    Example:
        >>> img = LoadVolume(image_only=True, ensure_channel_first=True)("t1.nii.gz")  # doctest: +SKIP
    """

    def __init__(self, reader: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(reader, *args, **kwargs)
        if reader is None:
            self.register(MRCReader())

    def __call__(self, filename: Any, reader: Any = None) -> Any:
        names = [filename] if isinstance(filename, (str, os.PathLike)) else list(filename)
        nifti = [str(n) for n in names if isinstance(n, (str, os.PathLike)) and _is_nifti(n)]
        if len(nifti) > 1:
            shapes = [(n, volume_shape(n)) for n in nifti]
            for n, shape in shapes[1:]:
                if shape != shapes[0][1]:
                    raise VolumeFileError(
                        f"channel files '{shapes[0][0]}' (shape {shapes[0][1]}) and '{n}' (shape {shape}) "
                        "differ in shape; the channels of one case must share their grid"
                    )
        try:
            out = super().__call__(filename, reader)
        except VolumeFileError:
            raise
        except Exception as exc:  # nibabel / gzip / zlib / EOF errors do not all name the file
            shown = names[0] if len(names) == 1 else [str(n) for n in names]
            raise VolumeFileError(
                f"cannot read '{shown}' (truncated, corrupt or not a volume?): {type(exc).__name__}: {exc}"
            ) from exc
        img = out[0] if isinstance(out, (tuple, list)) else out
        affine = getattr(img, "affine", None)
        for n in nifti:
            problem = nifti_spacing_problem(n, affine if len(nifti) == 1 else None)
            if problem:
                raise VolumeFileError(f"'{n}': {problem}")
        return out


class LoadVolumed(LoadImaged):
    """Dictionary version of :class:`LoadVolume`: ``LoadImaged`` with the project's file checks (same arguments).

    Example:
        In a bundle config: ``{"_target_": "monai_genvq.data.LoadVolumed", "keys": "image", "image_only": true}``
    """

    def __init__(self, keys: Any, reader: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(keys, reader, *args, **kwargs)
        loader = self._loader
        checked = LoadVolume.__new__(LoadVolume)
        checked.__dict__.update(loader.__dict__)  # the same readers and options, with LoadVolume's checks
        if reader is None:
            checked.register(MRCReader())
        self._loader = checked


def discover_volumes(
    folder: str | os.PathLike, patterns: Sequence[str] = ("*.nii", "*.nii.gz", "*.mrc", "*.mrc.gz")
) -> list[dict]:
    """Records ``{"image", "name"}`` of every volume file in ``folder`` (for inference on unlabelled inputs).

    Args:
        folder: the folder (not searched recursively).
        patterns: glob patterns of the files to take.

    Returns:
        one record per file, sorted by path; ``name`` is the file name without its NIfTI/MRC extension.

    Raises:
        FileNotFoundError: the folder does not exist or holds no matching file.
        VolumeFileError: two files would give the same output name (e.g. ``a.nii`` and ``a.nii.gz``).

    Example:
        >>> discover_volumes("bundles/hyperbolic_toy_seg/inputs")  # doctest: +SKIP
        [{'image': 'bundles/hyperbolic_toy_seg/inputs/case.nii.gz', 'name': 'case'}]
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder '{folder}' does not exist")
    files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
    if not files:
        raise FileNotFoundError(f"input folder '{folder}' holds no files matching {list(patterns)}")
    names = check_unique_output_names([str(p) for p in files])
    return [{"image": str(p), "name": name} for p, name in zip(files, names)]
