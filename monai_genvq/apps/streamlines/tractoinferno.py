"""TractoInferno layout: discover bundle files.

Layout (the public dataset's own)::

    <dataset_dir>/derivatives/{trainset,validset,testset}/sub-XXXX/tractography/sub-XXXX__<BUNDLE>.trk
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_genvq.apps.streamlines.io import count_streamlines

__all__ = ["VQDIFF_TABLE1_BUNDLES", "discover_tractoinferno", "select_bundles_by_count"]

logger = logging.getLogger(__name__)

#: The 12 TractoInferno bundles of the VQ-Diff paper's Table 1 (section 2.2: the tracts that
#: "consistently had over 1000 streamlines"), in the paper's order.
VQDIFF_TABLE1_BUNDLES: tuple[str, ...] = (
    "MCP",
    "FPT_R",
    "ILF_R",
    "IFOF_L",
    "FPT_L",
    "ILF_L",
    "POPT_L",
    "IFOF_R",
    "POPT_R",
    "CC_Fr_1",
    "PYT_L",
    "PYT_R",
)


def _splits_in(derivatives: Path) -> list[str]:
    return sorted(p.name for p in derivatives.iterdir() if p.is_dir() and any(p.glob("sub-*")))


def _derivatives_dir(dataset_dir: Path) -> Path:
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"TractoInferno folder '{dataset_dir}' does not exist or is not a folder")
    derivatives = dataset_dir / "derivatives"
    if derivatives.is_dir():
        return derivatives
    if any(dataset_dir.glob("*/sub-*/tractography")):  # the user pointed at derivatives/ itself
        return dataset_dir
    raise FileNotFoundError(
        f"TractoInferno folder '{dataset_dir}' has no 'derivatives' subfolder; expected "
        "derivatives/{trainset,validset,testset}/sub-XXXX/tractography/sub-XXXX__<BUNDLE>.trk"
    )


def discover_tractoinferno(
    dataset_dir: str | os.PathLike,
    split: str | Sequence[str] = "trainset",
    bundles: str | Sequence[str] | None = None,
    extensions: Sequence[str] = (".trk", ".tck"),
) -> list[dict[str, str]]:
    """List the bundle files of a TractoInferno-layout folder.

    Bundle names come from the file names (the part after ``__``), never from a fixed list. When a
    subject has the same bundle in several formats, the first extension in ``extensions`` wins.

    Args:
        dataset_dir: the dataset root (holding ``derivatives/``); ``derivatives/`` itself is accepted too.
        split: ``"trainset"``, ``"validset"``, ``"testset"``, a list of them, or ``"all"`` (every split folder).
        bundles: keep only these bundle names (``None``: all).
        extensions: file extensions to consider, in order of preference.

    Returns:
        Records ``{"path", "subject", "bundle", "split"}`` sorted by split, subject, bundle.

    Raises:
        FileNotFoundError: the folder, its ``derivatives/<split>`` folder, or any streamline file is missing
            (the message names the folder).
        ValueError: a requested bundle name is absent (the message lists the names that exist).

    Example:
        >>> records = discover_tractoinferno("/data/TractoInferno", bundles=["AF_L", "PYT_L"])  # doctest: +SKIP
        >>> records[0]  # doctest: +SKIP
        {'path': '.../sub-1006__AF_L.trk', 'subject': 'sub-1006', 'bundle': 'AF_L', 'split': 'trainset'}
    """
    dataset_dir = Path(dataset_dir).expanduser()
    derivatives = _derivatives_dir(dataset_dir)
    if isinstance(split, str):
        splits = _splits_in(derivatives) if split == "all" else [split]
        if not splits:
            raise FileNotFoundError(f"TractoInferno folder '{derivatives}' holds no split folders with sub-* subjects")
    else:
        splits = list(split)
    extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)

    found: dict[tuple[str, str, str], tuple[int, Path]] = {}
    for split_name in splits:
        split_dir = derivatives / split_name
        if not split_dir.is_dir():
            available = ", ".join(_splits_in(derivatives)) or "none"
            raise FileNotFoundError(
                f"TractoInferno split folder '{split_dir}' does not exist (available splits: {available})"
            )
        n_before = len(found)
        for path in split_dir.glob("sub-*/tractography/sub-*__*"):
            ext = path.suffix.lower()
            if ext not in extensions or not path.is_file():
                continue
            subject = path.parent.parent.name
            bundle = path.name[: -len(path.suffix)].split("__", 1)[1]
            rank = extensions.index(ext)
            key = (split_name, subject, bundle)
            if key not in found or rank < found[key][0]:
                found[key] = (rank, path)
        if len(found) == n_before:
            raise FileNotFoundError(
                f"TractoInferno split folder '{split_dir}' holds no streamline files matching "
                f"sub-*/tractography/sub-*__<BUNDLE>{{{','.join(extensions)}}}"
            )

    if bundles is not None:
        wanted = [bundles] if isinstance(bundles, str) else list(bundles)
        available = sorted({key[2] for key in found})
        missing = [name for name in wanted if name not in available]
        if missing:
            raise ValueError(
                f"bundle(s) {missing} not found under '{derivatives}' for split(s) {splits}; "
                f"available bundle names: {available}"
            )
        found = {key: value for key, value in found.items() if key[2] in wanted}

    return [
        {"path": str(path), "subject": subject, "bundle": bundle, "split": split_name}
        for (split_name, subject, bundle), (_, path) in sorted(found.items())
    ]


def select_bundles_by_count(records: Sequence[Mapping[str, str]], min_streamlines: int) -> list[dict[str, str]]:
    """Keep the bundle names whose every file holds more than ``min_streamlines`` streamlines.

    The VQ-Diff paper's selection (section 2.2): of TractoInferno's ~30 bundles it kept the tracts that
    "consistently had over 1000 streamlines", 12 of them (:data:`VQDIFF_TABLE1_BUNDLES`); here
    "consistently" means in every subject (every file) of ``records``. A name missing for some subject
    is judged on the files that exist. Counts come from the file headers
    (:func:`~monai_genvq.apps.streamlines.io.count_streamlines`), so no streamline is loaded for it.
    The dropped names are logged with their smallest count.

    Args:
        records: file records ``{"path", "bundle", ...}`` (e.g. from :func:`discover_tractoinferno`).
        min_streamlines: the threshold; 0 keeps everything (no file is opened).

    Returns:
        The records of the kept names, in input order.

    Raises:
        ValueError: ``min_streamlines`` is negative, or no bundle name passes (the message gives each
            name's smallest count).

    Example:
        >>> records = discover_tractoinferno("/data/TractoInferno")  # doctest: +SKIP
        >>> sorted({r["bundle"] for r in select_bundles_by_count(records, 1000)})  # doctest: +SKIP
        ['CC_Fr_1', 'FPT_L', 'FPT_R', 'IFOF_L', 'IFOF_R', 'ILF_L', 'ILF_R', 'MCP', 'POPT_L', 'POPT_R', 'PYT_L', 'PYT_R']
    """
    if int(min_streamlines) != min_streamlines or min_streamlines < 0:
        raise ValueError(f"min_streamlines must be a non-negative integer, got {min_streamlines!r}")
    records = [dict(r) for r in records]
    if min_streamlines == 0:
        return records
    smallest: dict[str, int] = defaultdict(lambda: -1)
    for record in records:
        count = count_streamlines(record["path"])
        name = record["bundle"]
        smallest[name] = count if smallest[name] < 0 else min(smallest[name], count)
    kept = {name for name, count in smallest.items() if count > min_streamlines}
    counts = ", ".join(f"{name}: {smallest[name]}" for name in sorted(smallest))
    if not kept:
        raise ValueError(
            f"min_streamlines={min_streamlines}: no bundle has more than {min_streamlines} streamlines in every "
            f"file (smallest count per bundle: {counts}); lower min_streamlines or set it to 0 to keep every bundle."
        )
    dropped = sorted(set(smallest) - kept)
    if dropped:
        logger.info(
            "min_streamlines=%d keeps %d bundle(s), drops %s (smallest count per bundle: %s)",
            min_streamlines,
            len(kept),
            dropped,
            counts,
        )
    return [r for r in records if r["bundle"] in kept]
