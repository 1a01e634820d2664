"""Finding the volume files of a folder; they are read with MONAI's ``LoadImage`` (NIfTI, or MRC through
:class:`~monai_genvq.data.mrc.MRCReader`) and written with ``SaveImage`` in their own geometry."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["discover_volumes"]


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
    return [{"image": str(p), "name": p.name.split(".nii")[0].split(".mrc")[0]} for p in files]
