"""ACDC and M&Ms-1 cardiac cine MRI layouts: discovery -> datalists, and loading of the end-diastolic frame.

Both datasets are mapped to ONE internal label convention, :data:`CARDIAC_LABELS`
(0 background, 1 LV cavity, 2 myocardium, 3 RV cavity):

* ACDC labels are 1 RV, 2 MYO, 3 LV (the reverse) -> mapped by :data:`ACDC_TO_INTERNAL`;
* M&Ms labels are 1 LV, 2 MYO, 3 RV -> identity (:data:`MNMS_TO_INTERNAL`).

Layouts (the public datasets' own)::

    ACDC:  <root>/database/{training,testing}/patientNNN/Info.cfg                (ED/ES 1-based)
                                              patientNNN_4d.nii.gz               (X, Y, Z, T)
                                              patientNNN_frameFF[_gt].nii.gz     (FF = ED, ES)
    M&Ms:  <root>/OpenDataset/{Training/Labeled,Validation,Testing}/<code>/<code>_sa[_gt].nii.gz  (4-D)
           <root>/OpenDataset/*.csv  (External code, VendorName, Vendor, Centre, ED, ES, ...; ED/ES 0-based)
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ACDC_TO_INTERNAL",
    "CARDIAC_LABELS",
    "CardiacDataError",
    "MNMS_TO_INTERNAL",
    "discover_acdc",
    "discover_mnms",
    "load_cardiac_ed",
    "map_labels",
    "read_acdc_info",
    "read_mnms_csv",
]

CARDIAC_LABELS: dict[str, int] = {"LV": 1, "MYO": 2, "RV": 3}
"""Internal label convention of the package (M&Ms order)."""
ACDC_TO_INTERNAL: dict[int, int] = {0: 0, 1: 3, 2: 2, 3: 1}
MNMS_TO_INTERNAL: dict[int, int] = {0: 0, 1: 1, 2: 2, 3: 3}
LABEL_MAPS: dict[str, dict[int, int]] = {
    "acdc": ACDC_TO_INTERNAL,
    "mnms": MNMS_TO_INTERNAL,
    "internal": MNMS_TO_INTERNAL,
}

ACDC_SPLITS = ("training", "testing")
MNMS_SPLITS = {"training": "Training/Labeled", "validation": "Validation", "testing": "Testing"}


class CardiacDataError(ValueError):
    """A cardiac dataset file is missing, unreadable or inconsistent (the message names the file)."""


# ----------------------------------------------------------------------------------------------- ACDC
def read_acdc_info(path: str | os.PathLike) -> dict[str, Any]:
    """Parse an ACDC ``Info.cfg`` (``key: value`` lines) into a dict; ED/ES/NbFrame become ints.

    Raises:
        CardiacDataError: the file is missing or has no integer ``ED`` entry.

    Example:
        >>> read_acdc_info("patient001/Info.cfg")  # doctest: +SKIP
        {'ED': 1, 'ES': 12, 'Group': 'DCM', 'Height': 184.0, 'NbFrame': 30, 'Weight': 95.0}
    """
    path = Path(path)
    if not path.is_file():
        raise CardiacDataError(f"ACDC info file '{path}' is missing (expected 'key: value' lines with ED and ES)")
    info: dict[str, Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        if ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        if key in ("ED", "ES", "NbFrame"):
            try:
                info[key] = int(float(value))
            except ValueError:
                raise CardiacDataError(f"ACDC info file '{path}': {key} is {value!r}, not a frame number") from None
        elif key in ("Height", "Weight"):
            try:
                info[key] = float(value)
            except ValueError:
                info[key] = value
        else:
            info[key] = value
    if "ED" not in info:
        raise CardiacDataError(f"ACDC info file '{path}' has no 'ED' entry: the end-diastolic frame is unknown")
    if info["ED"] < 1:
        raise CardiacDataError(f"ACDC info file '{path}': ED={info['ED']} but ACDC frames are 1-based (>= 1)")
    return info


def _acdc_database(dataset_dir: Path) -> Path:
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"ACDC folder '{dataset_dir}' does not exist or is not a folder")
    for candidate in (dataset_dir / "database", dataset_dir):
        if any((candidate / s).is_dir() for s in ACDC_SPLITS):
            return candidate
    raise FileNotFoundError(
        f"ACDC folder '{dataset_dir}' has no database/training or database/testing subfolder; expected "
        "database/{training,testing}/patientNNN/{Info.cfg, patientNNN_4d.nii.gz, patientNNN_frameFF_gt.nii.gz}"
    )


def discover_acdc(dataset_dir: str | os.PathLike, split: str | Sequence[str] = "training") -> list[dict[str, Any]]:
    """List the ACDC patients of a split with their end-diastolic files.

    Args:
        dataset_dir: the ACDC root (holding ``database/``); ``database/`` itself is accepted.
        split: ``"training"``, ``"testing"``, a list of them, or ``"all"``.

    Returns:
        One record per patient, sorted by id: ``image`` (the ED frame file if present, else the 4-D
        file), ``label`` (the ED ground truth), ``image_4d``, ``ed_frame`` (0-based index into t),
        ``es_frame`` (0-based or -1), ``subject``, ``split``, ``group``, ``domain`` (``"ACDC"``),
        ``dataset`` (``"acdc"``) and ``label_convention`` (``"acdc"``).

    Raises:
        FileNotFoundError: the folder or split is missing or holds no patient.
        CardiacDataError: a patient's ``Info.cfg`` is missing/invalid or its ED ground truth is missing.

    Example:
        >>> records = discover_acdc(ensure_synthetic_acdc())  # doctest: +SKIP
        >>> records[0]["ed_frame"], records[0]["label"]  # doctest: +SKIP
        (0, '.../patient001/patient001_frame01_gt.nii.gz')
    """
    database = _acdc_database(Path(dataset_dir).expanduser())
    splits = list(ACDC_SPLITS) if split == "all" else ([split] if isinstance(split, str) else list(split))
    records = []
    for split_name in splits:
        split_dir = database / split_name
        if not split_dir.is_dir():
            raise FileNotFoundError(f"ACDC split folder '{split_dir}' does not exist (splits: {ACDC_SPLITS})")
        patients = sorted(p for p in split_dir.iterdir() if p.is_dir() and re.fullmatch(r"patient\d+", p.name))
        if not patients:
            raise FileNotFoundError(f"ACDC split folder '{split_dir}' holds no patientNNN folders")
        for folder in patients:
            info = read_acdc_info(folder / "Info.cfg")
            name, ed = folder.name, info["ED"]
            label = folder / f"{name}_frame{ed:02d}_gt.nii.gz"
            if not label.is_file():
                raise CardiacDataError(
                    f"ACDC patient '{folder}': Info.cfg says ED={ed} but the ground truth '{label.name}' is missing"
                )
            frame = folder / f"{name}_frame{ed:02d}.nii.gz"
            image_4d = folder / f"{name}_4d.nii.gz"
            if not frame.is_file() and not image_4d.is_file():
                raise CardiacDataError(f"ACDC patient '{folder}' has neither '{frame.name}' nor '{image_4d.name}'")
            records.append(
                {
                    "image": str(frame if frame.is_file() else image_4d),
                    "label": str(label),
                    "image_4d": str(image_4d),
                    "ed_frame": ed - 1,
                    "es_frame": info["ES"] - 1 if "ES" in info else -1,
                    "subject": name,
                    "split": split_name,
                    "group": str(info.get("Group", "")),
                    "domain": "ACDC",
                    "dataset": "acdc",
                    "label_convention": "acdc",
                }
            )
    return records


# ----------------------------------------------------------------------------------------------- M&Ms
def _mnms_root(dataset_dir: Path) -> Path:
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"M&Ms folder '{dataset_dir}' does not exist or is not a folder")
    for candidate in (dataset_dir / "OpenDataset", dataset_dir):
        if (candidate / "Training").is_dir() or (candidate / "Testing").is_dir() or (candidate / "Validation").is_dir():
            return candidate
    raise FileNotFoundError(
        f"M&Ms folder '{dataset_dir}' has no OpenDataset/{{Training/Labeled,Validation,Testing}} subfolder"
    )


def read_mnms_csv(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read the M&Ms information CSV into ``{external code: row}`` (ED/ES as 0-based ints).

    Raises:
        CardiacDataError: a required column is absent or an ED value is not an integer.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    required = ("External code", "Vendor", "Centre", "ED", "ES")
    header = rows[0].keys() if rows else []
    missing = [c for c in required if c not in header]
    if missing:
        raise CardiacDataError(f"M&Ms information file '{path}' lacks column(s) {missing}; found {list(header)}")
    table = {}
    for row in rows:
        code = row["External code"].strip()
        try:
            row["ED"], row["ES"] = int(float(row["ED"])), int(float(row["ES"]))
        except ValueError:
            raise CardiacDataError(f"M&Ms information file '{path}': subject {code} has ED={row['ED']!r}") from None
        table[code] = row
    return table


def discover_mnms(
    dataset_dir: str | os.PathLike, split: str | Sequence[str] = "training", csv_path: str | os.PathLike | None = None
) -> list[dict[str, Any]]:
    """List the labelled M&Ms-1 subjects of a split with their ED index and vendor/centre domain.

    Args:
        dataset_dir: the M&Ms root (holding ``OpenDataset/``); ``OpenDataset/`` itself is accepted.
        split: ``"training"`` (``Training/Labeled``), ``"validation"``, ``"testing"``, a list, or ``"all"``.
        csv_path: the information CSV; default: the ``*.csv`` found by glob in the root (its name
            changed between releases).

    Returns:
        One record per subject: ``image`` and ``label`` (the 4-D ``_sa`` / ``_sa_gt`` files),
        ``ed_frame``/``es_frame`` (0-based, as in the CSV), ``subject``, ``split``, ``vendor``,
        ``centre``, ``domain`` (``"vendor <V>/centre <C>"``), ``dataset`` (``"mnms"``) and
        ``label_convention`` (``"mnms"``).

    Raises:
        FileNotFoundError: folder, split, CSV or subject files missing.
        CardiacDataError: a subject is absent from the CSV (unknown ED frame).
    """
    root = _mnms_root(Path(dataset_dir).expanduser())
    if csv_path is None:
        found = sorted(root.glob("*.csv")) or sorted(root.parent.glob("*.csv"))
        if not found:
            raise FileNotFoundError(f"M&Ms folder '{root}' holds no information CSV (*.csv with ED/ES per subject)")
        csv_path = found[0]
    table = read_mnms_csv(csv_path)
    splits = list(MNMS_SPLITS) if split == "all" else ([split] if isinstance(split, str) else list(split))
    records = []
    for split_name in splits:
        if split_name not in MNMS_SPLITS:
            raise ValueError(f"unknown M&Ms split {split_name!r}; use one of {list(MNMS_SPLITS)} or 'all'")
        split_dir = root / MNMS_SPLITS[split_name]
        if not split_dir.is_dir():
            if split == "all":
                continue
            raise FileNotFoundError(f"M&Ms split folder '{split_dir}' does not exist")
        for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            code = folder.name
            image, label = folder / f"{code}_sa.nii.gz", folder / f"{code}_sa_gt.nii.gz"
            if not image.is_file() or not label.is_file():
                raise FileNotFoundError(f"M&Ms subject '{folder}' lacks '{image.name}' or '{label.name}'")
            if code not in table:
                raise CardiacDataError(
                    f"M&Ms subject '{folder}' is not in '{csv_path}': its end-diastolic frame (ED) is unknown"
                )
            row = table[code]
            vendor, centre = str(row["Vendor"]).strip(), str(row["Centre"]).strip()
            records.append(
                {
                    "image": str(image),
                    "label": str(label),
                    "ed_frame": row["ED"],
                    "es_frame": row["ES"],
                    "subject": code,
                    "split": split_name,
                    "vendor": vendor,
                    "centre": centre,
                    "domain": f"vendor {vendor}/centre {centre}",
                    "dataset": "mnms",
                    "label_convention": "mnms",
                }
            )
    if not records:
        raise FileNotFoundError(f"M&Ms folder '{root}' holds no subjects in split(s) {splits}")
    return records


# ----------------------------------------------------------------------------------------------- loading
def map_labels(label: np.ndarray, convention: str | Mapping[int, int], source: str = "label map") -> np.ndarray:
    """Map a dataset's label values to the internal convention (1 LV, 2 MYO, 3 RV).

    Args:
        label: integer label array.
        convention: ``"acdc"``, ``"mnms"``, ``"internal"`` or an explicit ``{source: internal}`` mapping.
        source: name used in error messages (the file).

    Raises:
        CardiacDataError: the array holds values the convention does not know.

    Example:
        >>> map_labels(np.array([0, 1, 2, 3]), "acdc").tolist()
        [0, 3, 2, 1]
    """
    mapping = LABEL_MAPS[convention] if isinstance(convention, str) else dict(convention)
    label = np.asarray(label)
    if not np.all(np.isfinite(label)):
        raise CardiacDataError(f"{source} holds non-finite values (NaN or inf)")
    values = np.unique(label)
    unknown = [v for v in values.tolist() if v not in mapping or float(v) != int(v)]
    if unknown:
        raise CardiacDataError(
            f"{source} holds label values {unknown} outside the {convention!r} convention {sorted(mapping)}; "
            "check that the file is a segmentation in that dataset's label numbering"
        )
    lut = np.zeros(int(max(mapping)) + 1, dtype=np.uint8)
    for k, v in mapping.items():
        lut[int(k)] = v
    return lut[label.astype(np.int64)]


def _load_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except FileNotFoundError:
        raise CardiacDataError(f"NIfTI file '{path}' does not exist") from None
    except Exception as e:  # nibabel raises several types for truncated / corrupt files
        raise CardiacDataError(f"NIfTI file '{path}' cannot be read ({type(e).__name__}: {e})") from None
    spacing = np.asarray(img.header.get_zooms()[:3], dtype=np.float64)
    return data, spacing


def _select_frame(data: np.ndarray, frame: int, path: str, what: str) -> np.ndarray:
    if data.ndim == 4:
        if not 0 <= frame < data.shape[3]:
            raise CardiacDataError(
                f"{what} '{path}' has {data.shape[3]} frames but the end-diastolic frame index is {frame} (0-based)"
            )
        return data[..., frame]
    if data.ndim == 3:
        return data
    raise CardiacDataError(f"{what} '{path}' has shape {data.shape}; expected 3-D (X, Y, Z) or 4-D (X, Y, Z, T)")


def load_cardiac_ed(record: Mapping[str, Any], require_labels: Sequence[str] = ("LV", "MYO", "RV")) -> dict[str, Any]:
    """Load the end-diastolic image and ground truth of a datalist record.

    Args:
        record: an item of :func:`discover_acdc` / :func:`discover_mnms` (``image``, ``label``,
            ``ed_frame``, ``dataset``, ``label_convention``).
        require_labels: structures that must be present in the ED ground truth.

    Returns:
        ``image`` (X, Y, Z) float32, ``label`` (X, Y, Z) uint8 in the internal convention,
        ``spacing`` (3,) mm, and the record's other entries.

    Raises:
        CardiacDataError: unreadable NIfTI, 3-D file where the layout stores 4-D, ED index out of
            range, non-finite voxels, image/label shape mismatch, empty or incomplete ground truth,
            label values outside the convention. Each message names the file.
    """
    ed = int(record["ed_frame"])
    image_path, label_path = str(record["image"]), str(record["label"])
    four_d = record.get("dataset") == "mnms" or image_path.endswith("_4d.nii.gz")
    image, spacing = _load_nifti(image_path)
    if four_d and image.ndim != 4:
        raise CardiacDataError(
            f"image '{image_path}' has shape {image.shape} (3-D) but a 4-D cine (X, Y, Z, T) is expected here"
        )
    image = _select_frame(image, ed, image_path, "image")
    label, _ = _load_nifti(label_path)
    if record.get("dataset") == "mnms" and label.ndim != 4:
        raise CardiacDataError(
            f"ground truth '{label_path}' has shape {label.shape} (3-D) but M&Ms stores 4-D (X, Y, Z, T) labels"
        )
    label = _select_frame(label, ed, label_path, "ground truth")
    if image.shape != label.shape:
        raise CardiacDataError(
            f"image '{image_path}' {image.shape} and ground truth '{label_path}' {label.shape} differ"
        )
    image = image.astype(np.float32)
    if not np.all(np.isfinite(image)):
        raise CardiacDataError(f"image '{image_path}' holds {int((~np.isfinite(image)).sum())} non-finite voxels")
    label = map_labels(label, record.get("label_convention", "internal"), f"ground truth '{label_path}'")
    present = {name for name, v in CARDIAC_LABELS.items() if np.any(label == v)}
    if not present:
        raise CardiacDataError(
            f"ground truth '{label_path}' is empty at the end-diastolic frame (index {ed}); check ED in the metadata"
        )
    missing = [n for n in require_labels if n not in present]
    if missing:
        raise CardiacDataError(
            f"ground truth '{label_path}' at the end-diastolic frame lacks {missing} (has only {sorted(present)})"
        )
    return {**record, "image": image, "label": label, "spacing": spacing}
