"""dipy's shipped real bundles, laid out as a small TractoInferno-style dataset (offline, no download).

Contents (files copied byte for byte, headers untouched):

* ``minimal_bundles.zip``: 5 subjects x (AF_L, CST_R, CC_ForcepsMajor) x 50 streamlines of 20 points ->
  ``derivatives/trainset/sub-0{1..5}/tractography/sub-0K__<BUNDLE>.trk``.
* ``tracks300.trk`` (dipy's ``fornix``: 300 streamlines of one subject, in a different coordinate frame
  from the minimal bundles) -> ``derivatives/trainset/sub-fornix/tractography/sub-fornix__FX.trk``.

Everything goes to ``trainset``: the set is too small for fixed splits, so callers hold out a subject
(e.g. ``StreamlineGroups(dataset="dipy", holdout_subjects=["sub-05"])``). The headers of these files
declare a reference volume that the streamlines fall outside (1x1x1 for the minimal bundles), so
:func:`~monai_genvq.apps.streamlines.io.load_streamlines` loads them with a warning.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

from monai_genvq.utils.dataset_cache import default_cache_root, materialize_dataset

__all__ = ["prepare_dipy_bundles", "dipy_data_file"]

_VERSION = 1


def dipy_data_file(name: str) -> Path:
    """Path of a data file that ships inside the dipy wheel; never downloads.

    Args:
        name: dipy's data name, ``"minimal_bundles"`` or ``"fornix"``.

    Raises:
        FileNotFoundError: the installed dipy does not ship the file.
    """
    import dipy.data

    path = Path(dipy.data.get_fnames(name=name))  # for these names dipy returns a path inside its package
    if not path.is_file():
        raise FileNotFoundError(
            f"dipy's '{name}' data file is not in the installed dipy package (expected '{path}'); "
            "reinstall dipy (>= 1.9) or use dataset='synthetic'"
        )
    return path


def _build(folder: Path, include_fornix: bool) -> None:
    tractography = folder / "derivatives" / "trainset"
    with zipfile.ZipFile(dipy_data_file("minimal_bundles")) as archive:
        for member in archive.namelist():
            match = re.fullmatch(r"sub_(\d+)/(\w+)\.trk", member)
            if match is None:
                continue
            subject = f"sub-{int(match.group(1)):02d}"
            target = tractography / subject / "tractography" / f"{subject}__{match.group(2)}.trk"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
    if include_fornix:
        target = tractography / "sub-fornix" / "tractography" / "sub-fornix__FX.trk"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dipy_data_file("fornix"), target)


def prepare_dipy_bundles(cache_dir: str | os.PathLike | None = None, include_fornix: bool = True) -> Path:
    """Lay out dipy's shipped real bundles as a TractoInferno-style folder (idempotent, atomic, offline).

    Args:
        cache_dir: dataset folder. Default: ``<cache root>/dipy_bundles_v1`` (``-nofornix`` appended when
            ``include_fornix`` is False); the cache root is ``$MONAI_GENVQ_CACHE`` or ``~/.cache/monai_genvq``.
        include_fornix: also add dipy's fornix (300 streamlines) as subject ``sub-fornix``, bundle ``FX``.

    Returns:
        The dataset folder (see the module docstring for its content).

    Raises:
        FileNotFoundError: the installed dipy lacks its shipped data files.

    Example:
        >>> records = discover_tractoinferno(prepare_dipy_bundles())  # doctest: +SKIP
        >>> sorted({r["bundle"] for r in records})  # doctest: +SKIP
        ['AF_L', 'CC_ForcepsMajor', 'CST_R', 'FX']
    """
    if cache_dir is None:
        cache_dir = default_cache_root() / f"dipy_bundles_v{_VERSION}{'' if include_fornix else '-nofornix'}"
    params = {"generator": "dipy_bundles", "version": _VERSION, "include_fornix": bool(include_fornix)}
    return materialize_dataset(cache_dir, params, lambda folder: _build(folder, include_fornix))
