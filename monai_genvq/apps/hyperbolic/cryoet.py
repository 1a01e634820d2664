"""Cryo-ET tomograms: SHREC'21-like layout discovery (the MRC files are read by :mod:`monai_genvq.data.mrc`).

Layout (SHREC'21, verify against your copy)::

    <root>/model_{0..9}/reconstruction.mrc, class_mask.mrc, occupancy_mask.mrc, particle_locations.txt
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["discover_cryoet"]


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
