"""Read and write streamline files (.trk, .tck, .trx) in RAS millimetres, with plain-word errors."""

from __future__ import annotations

import importlib.util
import os
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.streamlines import Field, Tractogram
from nibabel.streamlines.tck import TckFile
from nibabel.streamlines.trk import TrkFile

from monai_genvq.apps.streamlines.transforms import bundle_tensor_to_streamlines
from monai_genvq.utils.fileio import atomic_path

__all__ = [
    "SUPPORTED_STREAMLINE_EXTENSIONS",
    "StreamlineFileError",
    "check_unique_streamline_outputs",
    "count_streamlines",
    "streamline_stem",
    "load_streamlines",
    "save_streamlines",
    "save_bundle_tensor",
]

SUPPORTED_STREAMLINE_EXTENSIONS = (".trk", ".tck", ".trx")
_WRITABLE_EXTENSIONS = (".trk", ".tck")
# dipy's tolerance-free check (voxel corners in [0, dim]) rejects points a hair outside; allow 1e-3 voxel.
_BBOX_TOLERANCE = 1e-3


class StreamlineFileError(ValueError):
    """A streamline file is missing, unreadable or holds unusable streamlines.

    The message always names the file and says what is wrong with it.

    Args:
        path: the offending file.
        problem: what is wrong, in plain words.

    Example:
        >>> str(StreamlineFileError("sub-01__AF_L.trk", "it contains no streamlines"))
        "Streamline file 'sub-01__AF_L.trk': it contains no streamlines"
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"Streamline file '{self.path}': {problem}")

    def __reduce__(self):  # keep the exception picklable (e.g. across DataLoader workers)
        return (type(self), (self.path, self.problem))


def _extension(path: Path) -> str:
    return path.suffix.lower()


def _reference_geometry(reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """(voxel_to_rasmm affine, dimensions) of a .trk/.nii path, nibabel image/header or trk header dict."""
    from dipy.io.utils import get_reference_info

    affine, dimensions, _, _ = get_reference_info(str(reference) if isinstance(reference, Path) else reference)
    return np.asarray(affine, dtype=np.float64), np.asarray(dimensions, dtype=np.int64)


def _count_outside_volume(streamlines: Sequence[np.ndarray], affine: np.ndarray, dimensions: np.ndarray) -> int:
    """Number of streamlines with a point outside the reference volume (dipy's voxel-corner convention)."""
    lengths = np.fromiter((len(s) for s in streamlines), dtype=np.int64, count=len(streamlines))
    points = np.concatenate(streamlines, axis=0).astype(np.float64)
    vox = nib.affines.apply_affine(np.linalg.inv(affine), points) + 0.5
    bad_point = np.any(vox < -_BBOX_TOLERANCE, axis=1) | np.any(vox > dimensions + _BBOX_TOLERANCE, axis=1)
    owner = np.repeat(np.arange(len(streamlines)), lengths)
    return int(np.unique(owner[bad_point]).size)


def _declared_count(path: Path) -> int:
    """Streamline count announced by the file header (0 when absent); nibabel overwrites it with what it read."""
    try:
        with open(path, "rb") as handle:
            if _extension(path) == ".trk":
                raw = handle.read(1000)
                # TrackVis header: n_count (int32) at byte 988, hdr_size (int32, always 1000) at byte 996
                order = "<" if struct.unpack("<i", raw[996:1000])[0] == 1000 else ">"
                return max(struct.unpack(f"{order}i", raw[988:992])[0], 0)
            for raw_line in iter(handle.readline, b""):  # .tck: text header lines up to END
                line = raw_line.decode("latin-1").strip()
                if line == "END":
                    break
                if line.startswith("count:"):
                    return int(line.split(":", 1)[1])
    except (OSError, struct.error, ValueError):
        pass
    return 0


def count_streamlines(path: str | os.PathLike) -> int:
    """Number of streamlines in a file: from the header when it declares one (``.trk`` n_count, ``.tck``
    ``count``), otherwise by loading the file, so counting a TractoInferno subject reads 1 kB per file.

    Args:
        path: a ``.trk``, ``.tck`` or ``.trx`` file.

    Raises:
        StreamlineFileError: the file is missing, or it has to be loaded and cannot be (see :func:`load_streamlines`).

    Example:
        >>> count_streamlines("sub-1001__AF_L.trk")  # doctest: +SKIP
        256
    """
    path = Path(path)
    if not path.is_file():
        raise StreamlineFileError(path, "it does not exist")
    declared = _declared_count(path) if _extension(path) in (".trk", ".tck") else 0
    return declared if declared > 0 else len(load_streamlines(path, reference=None))


def _read_trk_or_tck(path: Path) -> tuple[list[np.ndarray], dict]:
    try:
        tractogram_file = nib.streamlines.load(str(path))
        streamlines = tractogram_file.streamlines
        header = tractogram_file.header
        arrays = [np.ascontiguousarray(s, dtype=np.float32) for s in streamlines]
    except Exception as err:  # nibabel raises many types (HeaderError, TypeError, ValueError, struct.error ...)
        raise StreamlineFileError(
            path,
            f"it could not be read; it may be corrupt, truncated or not a {_extension(path)} file "
            f"({type(err).__name__}: {err})",
        ) from err
    declared = _declared_count(path)
    if declared > 0 and declared != len(arrays):
        raise StreamlineFileError(
            path,
            f"its header announces {declared} streamlines but only {len(arrays)} could be read; "
            "the file is probably truncated (an interrupted copy or download)",
        )
    return arrays, header


def _read_trx(path: Path) -> list[np.ndarray]:
    if importlib.util.find_spec("trx") is None:
        raise StreamlineFileError(
            path, "reading .trx files needs the 'trx-python' package, which is not installed (pip install trx-python)"
        )
    try:
        import trx.trx_file_memmap as tmm

        trx_file = tmm.load(str(path))
        try:
            sft = trx_file.to_sft()
            sft.to_rasmm()
            sft.to_center()
            return [np.ascontiguousarray(s, dtype=np.float32) for s in sft.streamlines]
        finally:
            trx_file.close()
    except StreamlineFileError:
        raise
    except Exception as err:
        raise StreamlineFileError(
            path, f"it could not be read as a .trx file; it may be corrupt ({type(err).__name__}: {err})"
        ) from err


def _validate(path: Path, streamlines: list[np.ndarray]) -> None:
    if len(streamlines) == 0:
        raise StreamlineFileError(path, "it contains no streamlines (an empty bundle)")
    for index, streamline in enumerate(streamlines):
        if streamline.ndim != 2 or streamline.shape[1] != 3:
            raise StreamlineFileError(path, f"streamline {index} does not hold 3-D points (shape {streamline.shape})")
        if len(streamline) < 2:
            raise StreamlineFileError(
                path, f"streamline {index} has only {len(streamline)} point(s); every streamline needs at least 2"
            )
    points = np.concatenate(streamlines, axis=0)
    if not np.isfinite(points).all():
        lengths = np.fromiter((len(s) for s in streamlines), dtype=np.int64, count=len(streamlines))
        owner = np.repeat(np.arange(len(streamlines)), lengths)
        first = int(owner[~np.isfinite(points).all(axis=1)][0])
        raise StreamlineFileError(path, f"streamline {first} has non-finite (NaN or infinite) coordinates")


def _refuse_zero_length(path: Path, streamlines: list[np.ndarray]) -> None:
    """Streamlines whose points are all one point cannot be resampled (arc length 0: NaN points, then SVD errors)."""
    starts = np.cumsum([0] + [len(s) for s in streamlines[:-1]])
    points = np.concatenate(streamlines, axis=0)
    spread = np.maximum.reduceat(points, starts) > np.minimum.reduceat(points, starts)  # (S, 3), one pass
    degenerate = np.flatnonzero(~spread.any(axis=1)).tolist()
    if degenerate:
        which = "all" if len(degenerate) == len(streamlines) else f"{len(degenerate)} of"
        raise StreamlineFileError(
            path,
            f"{which} {len(streamlines)} streamlines have zero length (every point of streamline {degenerate[0]} "
            "is the same single point); they cannot be resampled along their length",
        )


def streamline_stem(path: str | os.PathLike) -> str:
    """The file name without its streamline extension; other dots are kept (``subj.run1.trk`` -> ``subj.run1``).

    Example:
        >>> streamline_stem("in/sub-01.run1__AF_L.trk")
        'sub-01.run1__AF_L'
    """
    name = Path(path).name
    suffix = Path(name).suffix
    return (
        name[: -len(suffix)] if suffix.lower() in SUPPORTED_STREAMLINE_EXTENSIONS and len(name) > len(suffix) else name
    )


def check_unique_streamline_outputs(files: Sequence[str | os.PathLike]) -> list[str]:
    """Refuse inputs whose outputs would share a name (:func:`streamline_stem`), naming both; returns the stems.

    Raises:
        StreamlineFileError: two inputs with the same stem (``a.trk`` and ``a.tck``, or the same name in two folders).
    """
    seen: dict[str, str] = {}
    for f in files:
        stem = streamline_stem(f)
        if stem in seen:
            raise StreamlineFileError(
                f,
                f"its output name '{stem}' is the same as that of input '{seen[stem]}', so one reconstruction "
                "would overwrite the other; rename one of them",
            )
        seen[stem] = str(f)
    return list(seen)


def load_streamlines(
    path: str | os.PathLike, *, reference: Any = "same", bbox_valid_check: bool = False
) -> list[np.ndarray]:
    """Load the streamlines of one file as float32 arrays in RAS millimetres.

    Files whose streamlines fall outside the reference volume declared in their header (for example
    dipy's shipped ``minimal_bundles``, whose header declares a 1x1x1 volume) are loaded anyway with a
    warning, unless ``bbox_valid_check`` is True.

    Args:
        path: a ``.trk``, ``.tck`` or ``.trx`` file (``.trx`` needs the ``trx-python`` package).
        reference: the volume the streamlines belong to, used only to check the bounding box: ``"same"``
            (the file's own header; .trk/.trx), ``None`` (no check), a .nii/.trk path, or a nibabel
            image/header. For .tck files, ``"same"`` means no check (a .tck header has no volume).
            Coordinates are always read in RAS mm from the file itself.
        bbox_valid_check: raise instead of warn when streamlines fall outside the reference volume.

    Returns:
        One ``(N_i, 3)`` float32 array per streamline, RAS mm, ``N_i >= 2``.

    Raises:
        StreamlineFileError: the file is missing, has an unsupported extension, cannot be read (corrupt,
            truncated), contains no streamlines, holds a streamline with fewer than 2 points, of zero length
            (all its points one point) or with NaN/infinite coordinates, or (with ``bbox_valid_check``) lies
            outside its reference volume.

    Example:
        >>> streamlines = load_streamlines("sub-1006__AF_L.trk")  # doctest: +SKIP
        >>> streamlines[0].shape  # doctest: +SKIP
        (143, 3)
    """
    path = Path(path)
    ext = _extension(path)
    if not path.exists():
        raise StreamlineFileError(path, "the file does not exist")
    if path.is_dir():
        raise StreamlineFileError(path, "this is a folder, not a streamline file")
    if ext not in SUPPORTED_STREAMLINE_EXTENSIONS:
        raise StreamlineFileError(
            path,
            f"the extension '{path.suffix}' is not a supported streamline format "
            f"(supported: {', '.join(SUPPORTED_STREAMLINE_EXTENSIONS)})",
        )
    if ext == ".trx":
        streamlines, header = _read_trx(path), None
    else:
        streamlines, header = _read_trk_or_tck(path)
    _validate(path, streamlines)
    _refuse_zero_length(path, streamlines)

    geometry = None
    if isinstance(reference, str) and reference == "same":
        if ext == ".trk":
            geometry = (np.asarray(header[Field.VOXEL_TO_RASMM], np.float64), np.asarray(header[Field.DIMENSIONS]))
    elif reference is not None:
        try:
            geometry = _reference_geometry(reference)
        except Exception as err:
            raise StreamlineFileError(path, f"its reference '{reference}' could not be read ({err})") from err
    if geometry is not None:
        n_outside = _count_outside_volume(streamlines, *geometry)
        if n_outside:
            problem = (
                f"{n_outside} of {len(streamlines)} streamlines lie outside the reference volume "
                f"(dimensions {tuple(int(d) for d in geometry[1])}) declared by "
                f"{'its header' if isinstance(reference, str) and reference == 'same' else 'the reference'}"
            )
            if bbox_valid_check:
                raise StreamlineFileError(path, problem)
            warnings.warn(f"Streamline file '{path}': {problem}; loading the coordinates as they are.", stacklevel=2)
    return streamlines


def _as_streamline_list(streamlines: Any) -> list[np.ndarray]:
    if hasattr(streamlines, "detach"):  # torch tensor
        streamlines = streamlines.detach().cpu().numpy()
    if isinstance(streamlines, np.ndarray):
        if streamlines.ndim != 3 or streamlines.shape[-1] != 3:
            raise ValueError(f"expected streamlines of shape (S, P, 3), got an array of shape {streamlines.shape}")
        return [np.asarray(s, dtype=np.float32) for s in streamlines]
    return [np.asarray(s.detach().cpu().numpy() if hasattr(s, "detach") else s, dtype=np.float32) for s in streamlines]


def _bounding_header(streamlines: list[np.ndarray]) -> dict:
    """A 1 mm RAS header whose volume holds every point with a 1-voxel margin."""
    points = np.concatenate(streamlines, axis=0).astype(np.float64)
    origin = np.floor(points.min(axis=0)) - 1.0
    dimensions = (np.ceil(points.max(axis=0) - origin) + 2).astype(np.int64)
    affine = np.eye(4)
    affine[:3, 3] = origin
    return {
        Field.VOXEL_TO_RASMM: affine,
        Field.DIMENSIONS: dimensions.astype(np.int16),
        Field.VOXEL_SIZES: np.ones(3, dtype=np.float32),
        Field.VOXEL_ORDER: "RAS",
    }


def _reference_header(reference: Any) -> dict:
    from dipy.io.utils import get_reference_info

    affine, dimensions, voxel_sizes, voxel_order = get_reference_info(
        str(reference) if isinstance(reference, Path) else reference
    )
    return {
        Field.VOXEL_TO_RASMM: np.asarray(affine, dtype=np.float64),
        Field.DIMENSIONS: np.asarray(dimensions, dtype=np.int16),
        Field.VOXEL_SIZES: np.asarray(voxel_sizes, dtype=np.float32),
        Field.VOXEL_ORDER: voxel_order if isinstance(voxel_order, str) else voxel_order.decode(),
    }


def save_streamlines(path: str | os.PathLike, streamlines: Any, *, reference: Any = None) -> Path:
    """Write streamlines given in RAS millimetres to a .trk or .tck file, atomically.

    The file is written to a temporary file in the same folder and then renamed, so a reader never sees
    a half-written file. Missing parent folders are created.

    Args:
        path: destination ending in ``.trk`` or ``.tck``.
        streamlines: a list of ``(N_i, 3)`` arrays/tensors or one ``(S, P, 3)`` array/tensor, RAS mm.
        reference: the volume the streamlines belong to: a .trk/.nii path, a nibabel image or header, or a
            trk header dict. ``None`` builds a 1 mm RAS volume that contains every point (with a margin),
            so dipy ``load_tractogram(..., bbox_valid_check=True)``, TrackVis and MI-Brain open the file
            cleanly. Ignored for .tck except for the bounding-box warning (a .tck has no volume).

    Returns:
        The written path.

    Raises:
        StreamlineFileError: unsupported extension, no streamlines, a streamline with fewer than 2 points,
            or non-finite coordinates.

    Example:
        >>> save_streamlines("recon__AF_L.trk", np.zeros((64, 64, 3)) + np.arange(64)[None, :, None])  # doctest: +SKIP
    """
    path = Path(path)
    ext = _extension(path)
    if ext not in _WRITABLE_EXTENSIONS:
        raise StreamlineFileError(
            path, f"cannot write the extension '{path.suffix}' (writable: {', '.join(_WRITABLE_EXTENSIONS)})"
        )
    arrays = _as_streamline_list(streamlines)
    _validate(path, arrays)

    header = _bounding_header(arrays) if reference is None else _reference_header(reference)
    if reference is not None:
        n_outside = _count_outside_volume(arrays, header[Field.VOXEL_TO_RASMM], header[Field.DIMENSIONS])
        if n_outside:
            warnings.warn(
                f"Streamline file '{path}': {n_outside} of {len(arrays)} streamlines lie outside the reference "
                "volume; tools that check the bounding box will refuse the file.",
                stacklevel=2,
            )
    tractogram = Tractogram(arrays, affine_to_rasmm=np.eye(4))
    tractogram_file = TrkFile(tractogram, header=header) if ext == ".trk" else TckFile(tractogram)

    with atomic_path(path) as tmp:
        tractogram_file.save(str(tmp))
    return path


def save_bundle_tensor(path: str | os.PathLike, bundle: Any, *, normalizer: Any = None, reference: Any = None) -> Path:
    """Write one bundle tensor ``(3, S, P)`` (the network layout) as a streamline file in millimetres.

    Args:
        path: destination ``.trk`` or ``.tck``.
        bundle: array or tensor ``(3, S, P)``: xyz channels, streamline index, point index.
        normalizer: a fitted :class:`monai_genvq.apps.streamlines.StreamlineNormalizer` when ``bundle`` is in the
            normalised [-1, 1] space; ``None`` when it is already in mm.
        reference: see :func:`save_streamlines`.

    Returns:
        The written path.

    Example:
        >>> save_bundle_tensor("recon__AF_L.trk", reconstruction[0], normalizer=normalizer)  # doctest: +SKIP
    """

    if hasattr(bundle, "detach"):
        bundle = bundle.detach().cpu().numpy()
    bundle = np.asarray(bundle)
    if normalizer is not None:
        bundle = normalizer.denormalize(bundle.astype(np.float64))
    return save_streamlines(path, bundle_tensor_to_streamlines(bundle), reference=reference)
