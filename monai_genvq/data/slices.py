"""A folder of 2-D image slices (NIfTI) -> MONAI datalists, with the synthetic slice set as default."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib

from monai_genvq.data.errors import VolumeFileError
from monai_genvq.data.synthetic_slices import ensure_synthetic_slices
from monai_genvq.data.volumes import check_unique_output_names, nifti_spacing_problem, volume_stem

__all__ = ["discover_slices", "require_input_files", "SliceImageData", "SLICE_EXTENSIONS"]

SLICE_EXTENSIONS = (".nii.gz", ".nii")
_SPLIT_ALIASES = {
    "train": ("train", "training"),
    "validation": ("validation", "val", "valid"),
    "test": ("test", "testing"),
}


def _is_slice_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(SLICE_EXTENSIONS)


def _check_header(path: Path) -> None:
    try:
        image = nib.load(str(path))
        shape = image.shape
    except Exception as err:  # nibabel raises several types for corrupt files
        raise VolumeFileError(f"'{path}': cannot be read as NIfTI ({type(err).__name__}: {err}).") from err
    if len([s for s in shape if s != 1]) != 2:
        raise VolumeFileError(f"'{path}': expected a 2-D slice, the file holds an image of shape {tuple(shape)}.")
    problem = nifti_spacing_problem(path, image.affine)
    if problem:
        raise VolumeFileError(f"'{path}': {problem}.")


def discover_slices(dataset_dir: str | os.PathLike, split: str | None = None, check: bool = True) -> list[dict]:
    """List the 2-D NIfTI slices of a folder.

    Layouts: ``<dataset_dir>/<split>/*.nii[.gz]`` with split folders ``train``/``training``,
    ``validation``/``val``/``valid`` and ``test``/``testing``; or, with ``split=None``, every slice
    file directly in ``<dataset_dir>`` (sub-folders are searched recursively).

    Args:
        dataset_dir: the folder.
        split: "train", "validation", "test", or None for the whole folder.
        check: read every header and reject files that are unreadable or not 2-D.

    Returns:
        ``[{"image": path, "name": file stem}]`` sorted by path.

    Raises:
        FileNotFoundError: missing folder, split folder or no slice files (the message names the folder).
        VolumeFileError: an unreadable or non-2-D file, or one with a zero / negative / non-finite voxel
            spacing (a ValueError; the message names it).

    Example:
        >>> discover_slices("/data/slices", "train")[0]  # doctest: +SKIP
        {'image': '/data/slices/train/slice_0000.nii.gz', 'name': 'slice_0000'}
    """
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"slice folder '{root}' does not exist or is not a folder")
    if split is None:
        folder, files = root, sorted(p for p in root.rglob("*") if _is_slice_file(p))
    else:
        if split not in _SPLIT_ALIASES:
            raise ValueError(f"split must be one of {tuple(_SPLIT_ALIASES)} or None, got {split!r}")
        candidates = [root / alias for alias in _SPLIT_ALIASES[split] if (root / alias).is_dir()]
        if not candidates:
            raise FileNotFoundError(
                f"slice folder '{root}' has no '{split}' sub-folder (looked for {_SPLIT_ALIASES[split]})"
            )
        folder = candidates[0]
        files = sorted(p for p in folder.rglob("*") if _is_slice_file(p))
    if not files:
        raise FileNotFoundError(f"slice folder '{folder}' holds no NIfTI files ({', '.join(SLICE_EXTENSIONS)})")
    if check:
        for path in files:
            _check_header(path)
    return [{"image": str(p), "name": volume_stem(p)} for p in files]


def require_input_files(
    files: Sequence[str | os.PathLike], input_dir: str | os.PathLike, patterns: Sequence[str] = ("*.nii", "*.nii.gz")
) -> list[str]:
    """Return ``files`` (the inputs an inference config found), or raise FileNotFoundError if there are none.

    Bundle configs list their inputs with ``glob``; this turns "found nothing" into an error that
    says where they looked and how to fix it, instead of an evaluator that silently runs on nothing.

    Args:
        files: the files found (e.g. ``@input_files``).
        input_dir: the folder they were looked for in (named in the error).
        patterns: the file patterns that were looked for (named in the error).

    Returns:
        ``files`` as a list of strings.

    Raises:
        FileNotFoundError: ``files`` is empty.
        VolumeFileError: two inputs would be written under one output name (``a.nii`` and ``a.nii.gz``;
            names keep every dot but the extension's: ``subj.run1.nii.gz`` -> ``subj.run1``), naming both.

    Example:
        >>> require_input_files(["inputs/case.nii.gz"], "inputs")
        ['inputs/case.nii.gz']
        >>> require_input_files([], "inputs")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no input files (*.nii, *.nii.gz) in 'inputs'; put the inputs there or pass --input_dir
    """
    found = [str(f) for f in files]
    if not found:
        raise FileNotFoundError(
            f"no input files ({', '.join(patterns)}) in '{input_dir}'; put the inputs there or pass --input_dir"
        )
    check_unique_output_names(found)  # SaveImage names outputs by the stem: refuse before anything is written
    return found


class SliceImageData:
    """Train / validation / test datalists of 2-D slices for a bundle config.

    With ``dataset="synthetic"`` (default) and no ``dataset_dir`` the synthetic short-axis-like
    slice set is generated once into the cache (:func:`~monai_genvq.data.synthetic_slices.ensure_synthetic_slices`).
    A user folder either has split sub-folders (see :func:`discover_slices`) or is one flat folder,
    which is then split at random (seeded) into train / validation by ``val_fraction``; a missing
    test split falls back to the validation list.

    Args:
        dataset_dir: folder of 2-D NIfTI slices; empty for the synthetic default.
        dataset: "synthetic" or "folder" (the latter requires ``dataset_dir``).
        val_fraction: validation fraction for flat folders.
        seed: seed of the flat-folder split.
        synthetic_counts: slices per split of the synthetic set (None: 600/100/100).

    Example:
        >>> data = SliceImageData()  # doctest: +SKIP
        >>> len(data.train), data.train[0]["image"]  # doctest: +SKIP
        (600, '.../synthetic_cardiac_slices_v1/train/slice_0000.nii.gz')
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike | None = None,
        dataset: str = "synthetic",
        val_fraction: float = 0.1,
        seed: int = 0,
        synthetic_counts: dict | None = None,
    ) -> None:
        if dataset not in ("synthetic", "folder"):
            raise ValueError(f"dataset must be 'synthetic' or 'folder', got {dataset!r}")
        if dataset == "folder" and not dataset_dir:
            raise ValueError("dataset='folder' needs dataset_dir (a folder of 2-D NIfTI slices)")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.dataset_dir = Path(dataset_dir).expanduser() if dataset_dir else None
        self.dataset = dataset
        self.val_fraction = val_fraction
        self.seed = seed
        self.synthetic_counts = synthetic_counts
        self._splits: dict[str, list[dict]] | None = None

    @property
    def root(self) -> Path:
        if self.dataset_dir is not None:
            return self.dataset_dir
        return ensure_synthetic_slices(counts=self.synthetic_counts)

    def _build(self) -> dict[str, list[dict]]:
        if self._splits is not None:
            return self._splits
        root = self.root
        if not root.is_dir():
            raise FileNotFoundError(f"slice folder '{root}' does not exist or is not a folder")
        has_splits = any((root / a).is_dir() for a in _SPLIT_ALIASES["train"])
        if has_splits:
            splits = {"train": discover_slices(root, "train")}
            for name in ("validation", "test"):
                try:
                    splits[name] = discover_slices(root, name)
                except FileNotFoundError:
                    splits[name] = []
            if not splits["validation"]:
                raise FileNotFoundError(f"slice folder '{root}' has a train folder but no validation folder")
        else:
            items = discover_slices(root)
            random.Random(self.seed).shuffle(items)
            n_val = max(1, round(self.val_fraction * len(items)))
            if len(items) - n_val < 1:
                raise ValueError(f"slice folder '{root}' holds {len(items)} file(s); need at least 2 to split")
            splits = {
                "train": sorted(items[n_val:], key=lambda d: d["image"]),
                "validation": sorted(items[:n_val], key=lambda d: d["image"]),
                "test": [],
            }
        if not splits["test"]:
            splits["test"] = splits["validation"]
        self._splits = splits
        return splits

    def __getitem__(self, split: str) -> list[dict]:
        """``data["train"]``, ``data["validation"]``, ``data["test"]``: the datalist dict interface
        of :func:`~monai_genvq.data.cardiac_datalists`, so bundle configs index either the same way."""
        if split not in _SPLIT_ALIASES:
            raise KeyError(f"split must be one of {tuple(_SPLIT_ALIASES)}, got {split!r}")
        return self._build()[split]

    @property
    def train(self) -> list[dict]:
        return self._build()["train"]

    @property
    def validation(self) -> list[dict]:
        return self._build()["validation"]

    @property
    def test(self) -> list[dict]:
        return self._build()["test"]
