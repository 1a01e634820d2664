"""BraTS layouts (2021 and 2023 GLI) -> datalists, with the label convention as a parameter.

2021: ``BraTS2021_NNNNN/BraTS2021_NNNNN_{flair,t1,t1ce,t2,seg}.nii.gz``, labels 1 necrotic core,
2 oedema, 4 enhancing. 2023 GLI: ``BraTS-GLI-NNNNN-MMM/BraTS-GLI-NNNNN-MMM-{t1c,t1n,t2f,t2w,seg}.nii.gz``,
labels 1, 2, 3 (enhancing). The Decathlon copy numbers labels differently again, hence ``label_map``.
Whole tumour = every tumour label; tumour core = necrotic + enhancing (+ non-enhancing); enhancing alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["BRATS_LAYOUTS", "BRATS_LABEL_MAPS", "discover_brats", "brats_region", "BraTSRegion"]

BRATS_LAYOUTS = {
    "2021": {"glob": "BraTS2021_*", "sep": "_", "modalities": ("flair", "t1", "t1ce", "t2")},
    "2023": {"glob": "BraTS-*-*", "sep": "-", "modalities": ("t2f", "t1n", "t1c", "t2w")},
}
"""Folder pattern, separator before the suffix, and modality suffixes (FLAIR first) per layout."""

BRATS_LABEL_MAPS = {
    "2021": {"necrotic": 1, "edema": 2, "enhancing": 4},
    "2023": {"necrotic": 1, "edema": 2, "enhancing": 3},
    "msd": {"edema": 1, "non_enhancing": 2, "enhancing": 3},
}
"""Tumour sub-region -> label value, per convention."""

_REGIONS = {
    "whole_tumour": ("necrotic", "edema", "enhancing", "non_enhancing"),
    "tumour_core": ("necrotic", "enhancing", "non_enhancing"),
    "enhancing": ("enhancing",),
}


def _detect_layout(root: Path) -> str:
    for name, spec in BRATS_LAYOUTS.items():
        if any(p.is_dir() for p in root.glob(spec["glob"])):
            return name
    raise FileNotFoundError(
        f"'{root}' holds no BraTS case folders (expected BraTS2021_NNNNN/ or BraTS-GLI-NNNNN-MMM/ subfolders)"
    )


def discover_brats(
    dataset_dir: str | os.PathLike,
    layout: str = "auto",
    modalities: str | Sequence[str] = "all",
    require_label: bool = True,
) -> list[dict]:
    """Records ``{"image": [paths per modality], "label": seg path, "name"}``.

    Args:
        dataset_dir: folder holding the case folders.
        layout: "2021", "2023" or "auto" (detected from the folder names).
        modalities: "all" (the layout's four, FLAIR first) or suffixes to use as channels, e.g. ["flair"]
            (the 2021 names also select the matching 2023 files: flair -> t2f, t1 -> t1n, t1ce -> t1c, t2 -> t2w).
        require_label: raise if a case has no ``seg`` file.

    Raises:
        FileNotFoundError: folder, case folders or a modality file missing (named).
        ValueError: an unknown layout or modality suffix.

    Example:
        >>> discover_brats("/data/BraTS2021", modalities=["flair"])[0]["image"]  # doctest: +SKIP
        ['/data/BraTS2021/BraTS2021_00000/BraTS2021_00000_flair.nii.gz']
    """
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"BraTS folder '{root}' does not exist")
    layout = _detect_layout(root) if layout == "auto" else str(layout)
    if layout not in BRATS_LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(BRATS_LAYOUTS)} or 'auto', got {layout!r}")
    spec = BRATS_LAYOUTS[layout]
    mods = (
        list(spec["modalities"])
        if modalities == "all"
        else ([modalities] if isinstance(modalities, str) else list(modalities))
    )
    aliases = dict(zip(BRATS_LAYOUTS["2021"]["modalities"], BRATS_LAYOUTS["2023"]["modalities"]))
    if layout == "2023":  # accept the 2021 names (flair, t1, t1ce, t2) for the 2023 files (t2f, t1n, t1c, t2w)
        mods = [aliases.get(m, m) for m in mods]
    unknown = [m for m in mods if m not in spec["modalities"]]
    if unknown:
        raise ValueError(
            f"unknown modality suffix(es) {unknown} for the {layout} layout; available: {list(spec['modalities'])}"
        )
    cases = sorted(p for p in root.glob(spec["glob"]) if p.is_dir())
    if not cases:
        raise FileNotFoundError(f"'{root}' holds no {layout} case folders matching {spec['glob']}")
    records = []
    for case in cases:
        files = [case / f"{case.name}{spec['sep']}{m}.nii.gz" for m in mods]
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"BraTS modality file '{f}' is missing")
        rec = {"image": [str(f) for f in files], "name": case.name}
        seg = case / f"{case.name}{spec['sep']}seg.nii.gz"
        if seg.is_file():
            rec["label"] = str(seg)
        elif require_label:
            raise FileNotFoundError(f"BraTS label file '{seg}' is missing")
        records.append(rec)
    return records


def brats_region(
    label: np.ndarray, region: str = "whole_tumour", label_map: str | Mapping[str, int] = "2021"
) -> np.ndarray:
    """Binary map of a tumour region from a BraTS label map.

    Raises:
        ValueError: the map holds values the convention does not know (wrong ``label_map``), or the region is unknown.

    Example:
        >>> brats_region(np.array([0, 1, 2, 4]), "tumour_core", "2021").tolist()
        [0, 1, 0, 1]
    """
    if isinstance(label_map, Mapping):
        lm = dict(label_map)
    elif str(label_map) in BRATS_LABEL_MAPS:  # "2023" may arrive as the int 2023 from the command line
        lm = BRATS_LABEL_MAPS[str(label_map)]
    else:
        raise ValueError(f"label_map must be one of {sorted(BRATS_LABEL_MAPS)} or a dict, got {label_map!r}")
    if region not in _REGIONS:
        raise ValueError(f"region must be one of {sorted(_REGIONS)}, got {region!r}")
    label = np.asarray(label)
    present = set(np.unique(label).astype(int).tolist()) - {0}
    unknown = present - set(lm.values())
    if unknown:
        raise ValueError(
            f"label values {sorted(unknown)} are not in the label convention {lm}; "
            "check label_map (2021 uses 4 for enhancing, 2023 uses 3, the Decathlon copy differs again)"
        )
    values = [v for k, v in lm.items() if k in _REGIONS[region]]
    return np.isin(label, values).astype(np.uint8)


class BraTSRegion:
    """Callable for :class:`~monai_genvq.apps.hyperbolic.HyperbolicSegmentation` ``label_transforms``: label map -> region mask.

    Example:
        >>> BraTSRegion("whole_tumour", "2023")(np.array([0, 3])).tolist()
        [0, 1]
    """

    def __init__(self, region: str = "whole_tumour", label_map: str | Mapping[str, int] = "2021") -> None:
        self.region, self.label_map = region, label_map
        self.foreground_name = f"tumour ({region.replace('_', ' ')} region)"

    def __call__(self, label: np.ndarray) -> np.ndarray:
        return brats_region(label, self.region, self.label_map)
