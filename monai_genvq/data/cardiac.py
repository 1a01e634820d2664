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

Wrong data is refused with a :class:`CardiacDataError` naming the file and the problem: Info.cfg /
CSV ED/ES that are not whole numbers or out of range, malformed or non-UTF-8 CSV rows, subjects
without a CSV row, implausible voxel spacing (:data:`INPLANE_SPACING_MM`,
:data:`SLICE_SPACING_MM`), image/label shape or orientation mismatches, label values outside the
convention, and LV/RV swapped by the other dataset's numbering (:func:`check_label_convention`).
Loaded volumes are brought to one orientation (:func:`canonical_axcodes`) before any voxel-space
processing.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.data.volumes import raw_nifti_header

__all__ = [
    "ACDC_TO_INTERNAL",
    "CARDIAC_LABELS",
    "CardiacDataError",
    "INPLANE_SPACING_MM",
    "MNMS_TO_INTERNAL",
    "SLICE_SPACING_MM",
    "canonical_axcodes",
    "check_label_convention",
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

LABEL_NUMBERING: dict[str, str] = {
    "acdc": "ACDC numbering 1 RV, 2 MYO, 3 LV",
    "mnms": "M&Ms numbering 1 LV, 2 MYO, 3 RV",
    "internal": "M&Ms numbering 1 LV, 2 MYO, 3 RV",
}
SWAPPED_CONVENTION: dict[str, str] = {"acdc": "mnms", "mnms": "acdc", "internal": "acdc"}

# Plausible voxel sizes (mm) of a cardiac cine MRI short-axis stack. Clinical cine stacks have
# pixels of roughly 1-2 mm and slices of roughly 5-10 mm; the bounds are deliberately wide and
# refuse only what no cine stack has: zero, negative or non-finite sizes and unit mistakes
# (metres or micrometres written as millimetres, a 2-D slice with a placeholder thickness of 0.1).
INPLANE_SPACING_MM: tuple[float, float] = (0.3, 5.0)
"""Accepted range of the in-plane pixel size (first two voxel axes), mm."""
SLICE_SPACING_MM: tuple[float, float] = (1.0, 25.0)
"""Accepted range of the slice thickness / spacing (third voxel axis), mm."""

# Label-convention check (:func:`check_label_convention`): the LV cavity is enclosed by the
# myocardial ring in short-axis slices, the RV cavity touches the myocardium on one side only.
ENCLOSED_MIN = 0.6
"""Fraction of a cavity's in-plane border that must be myocardium for it to count as enclosed."""
ENCLOSED_MARGIN = 0.25
"""How much more enclosed the structure taken for the RV must be than the one taken for the LV to refuse."""

ACDC_SPLITS = ("training", "testing")
MNMS_SPLITS = {"training": "Training/Labeled", "validation": "Validation", "testing": "Testing"}


class CardiacDataError(ValueError):
    """A cardiac dataset file is missing, unreadable or inconsistent (the message names the file)."""


# ----------------------------------------------------------------------------------------------- ACDC
def read_acdc_info(path: str | os.PathLike) -> dict[str, Any]:
    """Parse an ACDC ``Info.cfg`` (``key: value`` lines) into a dict; ED/ES/NbFrame become ints.

    Raises:
        CardiacDataError: the file is missing, has no ``ED`` entry, or ED/ES/NbFrame is not a whole
            number, ED/ES < 1 or ED/ES > NbFrame. Each message names the file and the value.

    Example:
        >>> read_acdc_info("patient001/Info.cfg")  # doctest: +SKIP
        {'ED': 1, 'ES': 12, 'Group': 'DCM', 'Height': 184.0, 'NbFrame': 30, 'Weight': 95.0}
    """
    path = Path(path)
    if not path.is_file():
        raise CardiacDataError(f"ACDC info file '{path}' is missing (expected 'key: value' lines with ED and ES)")
    info: dict[str, Any] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        if key in ("ED", "ES", "NbFrame"):
            try:
                number_value = float(value)
            except ValueError:
                number_value = math.nan
            if not math.isfinite(number_value) or not number_value.is_integer():
                raise CardiacDataError(
                    f"ACDC info file '{path}' line {number}: {key} is {value!r}, not a whole frame number"
                )
            info[key] = int(number_value)
        elif key in ("Height", "Weight"):
            try:
                info[key] = float(value)
            except ValueError:
                info[key] = value
        else:
            info[key] = value
    if "ED" not in info:
        raise CardiacDataError(f"ACDC info file '{path}' has no 'ED' entry: the end-diastolic frame is unknown")
    for key in ("ED", "ES"):
        if key in info and info[key] < 1:
            raise CardiacDataError(f"ACDC info file '{path}': {key}={info[key]} but ACDC frames are 1-based (>= 1)")
        if key in info and "NbFrame" in info and info[key] > info["NbFrame"]:
            raise CardiacDataError(
                f"ACDC info file '{path}': {key}={info[key]} is out of range, beyond NbFrame={info['NbFrame']} "
                "(frames are 1-based)"
            )
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


def _label_convention(value: str | None, default: str) -> str:
    if value is None or value == "":
        return default
    if value not in LABEL_MAPS:
        raise ValueError(
            f"label_convention must be one of {sorted(LABEL_MAPS)} (or None: the dataset's own); got {value!r}"
        )
    return value


def discover_acdc(
    dataset_dir: str | os.PathLike, split: str | Sequence[str] = "training", label_convention: str | None = None
) -> list[dict[str, Any]]:
    """List the ACDC patients of a split with their end-diastolic files.

    Args:
        dataset_dir: the ACDC root (holding ``database/``); ``database/`` itself is accepted.
        split: ``"training"``, ``"testing"``, a list of them, or ``"all"``.
        label_convention: numbering of the ground-truth files, ``"acdc"`` (default, ACDC's own
            1 RV, 2 MYO, 3 LV) or ``"mnms"`` (for a folder in the ACDC layout whose files use the
            M&Ms numbering).

    Returns:
        One record per patient, sorted by id: ``image`` (the ED frame file if present, else the 4-D
        file), ``label`` (the ED ground truth), ``image_4d``, ``ed_frame`` (0-based index into t),
        ``es_frame`` (0-based or -1), ``subject``, ``split``, ``group``, ``domain`` (``"ACDC"``),
        ``dataset`` (``"acdc"``), ``label_convention`` and ``ed_source`` (where ED came from).

    Raises:
        FileNotFoundError: the folder or split is missing or holds no patient.
        CardiacDataError: a patient's ``Info.cfg`` is missing/invalid or its ED ground truth is missing.

    Example:
        >>> records = discover_acdc(ensure_synthetic_acdc())  # doctest: +SKIP
        >>> records[0]["ed_frame"], records[0]["label"]  # doctest: +SKIP
        (0, '.../patient001/patient001_frame01_gt.nii.gz')
    """
    convention = _label_convention(label_convention, "acdc")
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
                    "ed_source": f"ED={ed} of '{folder / 'Info.cfg'}'",
                    "subject": name,
                    "split": split_name,
                    "group": str(info.get("Group", "")),
                    "domain": "ACDC",
                    "dataset": "acdc",
                    "label_convention": convention,
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


MNMS_REQUIRED_COLUMNS = ("External code", "Vendor", "Centre", "ED", "ES")


def read_mnms_csv(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read the M&Ms information CSV into ``{external code: row}`` (ED/ES as 0-based ints).

    Each row also gets ``"line"``, its line number in the file (for error messages).

    Raises:
        CardiacDataError: the file is unreadable or not UTF-8 text, a required column is absent, a
            row is malformed (fewer fields than the header, empty code, ED or ES), ED/ES is not a
            whole non-negative number, or a subject appears twice. Messages name the file, the line
            and the subject.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CardiacDataError(
            f"M&Ms information file '{path}' is not UTF-8 text (undecodable byte at offset {e.start}); "
            "re-save it as a UTF-8 CSV"
        ) from None
    except OSError as e:
        raise CardiacDataError(f"M&Ms information file '{path}' cannot be read ({type(e).__name__}: {e})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    header = [h.strip() for h in header]
    missing = [c for c in MNMS_REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CardiacDataError(f"M&Ms information file '{path}' lacks column(s) {missing}; found {header}")
    index = {c: header.index(c) for c in MNMS_REQUIRED_COLUMNS}
    table: dict[str, dict[str, Any]] = {}
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue  # blank line
        where = f"M&Ms information file '{path}' line {line}"
        if len(fields) <= max(index.values()):
            raise CardiacDataError(
                f"{where} is malformed: {len(fields)} field(s) but the header has {len(header)} "
                f"(missing columns from {header[len(fields)] if len(fields) < len(header) else '?'!r} on)"
            )
        row: dict[str, Any] = {name: fields[i] if i < len(fields) else "" for i, name in enumerate(header)}
        code = row["External code"].strip()
        if not code:
            raise CardiacDataError(f"{where} is malformed: the 'External code' (subject) field is empty")
        for key in ("ED", "ES"):
            value = row[key].strip()
            if not value:
                raise CardiacDataError(f"{where} (subject {code}) is malformed: {key} is empty")
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number) or not number.is_integer() or number < 0:
                raise CardiacDataError(
                    f"{where} (subject {code}): {key}={value!r} is not a whole 0-based frame index (>= 0)"
                )
            row[key] = int(number)
        if code in table:
            raise CardiacDataError(f"{where}: subject {code} is listed twice (first on line {table[code]['line']})")
        row["line"] = line
        table[code] = row
    return table


def _check_mnms_frames(image: Path, row: Mapping[str, Any], code: str, csv_path: str | os.PathLike) -> None:
    """Refuse an ED/ES index beyond the 4-D image's frame count (header only; unreadable files fail later)."""
    import nibabel as nib

    try:
        shape = nib.load(str(image)).shape
    except Exception:  # reported with the file name when the image is loaded
        return
    if len(shape) != 4:
        return
    for key in ("ED", "ES"):
        if row[key] >= shape[3]:
            raise CardiacDataError(
                f"M&Ms information file '{csv_path}' line {row['line']} (subject {code}): {key}={row[key]} is out "
                f"of range: '{image.name}' has {shape[3]} frames (0-based indices 0-{shape[3] - 1})"
            )


def discover_mnms(
    dataset_dir: str | os.PathLike,
    split: str | Sequence[str] = "training",
    csv_path: str | os.PathLike | None = None,
    label_convention: str | None = None,
) -> list[dict[str, Any]]:
    """List the labelled M&Ms-1 subjects of a split with their ED index and vendor/centre domain.

    Args:
        dataset_dir: the M&Ms root (holding ``OpenDataset/``); ``OpenDataset/`` itself is accepted.
        split: ``"training"`` (``Training/Labeled``), ``"validation"``, ``"testing"``, a list, or ``"all"``.
        csv_path: the information CSV; default: the ``*.csv`` found by glob in the root (its name
            changed between releases).
        label_convention: numbering of the ground-truth files, ``"mnms"`` (default, 1 LV, 2 MYO,
            3 RV) or ``"acdc"`` (for a folder in the M&Ms layout whose files use ACDC's numbering).

    Returns:
        One record per subject: ``image`` and ``label`` (the 4-D ``_sa`` / ``_sa_gt`` files),
        ``ed_frame``/``es_frame`` (0-based, as in the CSV), ``subject``, ``split``, ``vendor``,
        ``centre``, ``domain`` (``"vendor <V>/centre <C>"``), ``dataset`` (``"mnms"``) and
        ``label_convention`` (``"mnms"``).

    Raises:
        FileNotFoundError: folder, split, CSV or subject files missing.
        CardiacDataError: the CSV is malformed (:func:`read_mnms_csv`), a subject is absent from it
            (unknown ED frame), or its ED/ES index is beyond the frames of its 4-D image.
    """
    convention = _label_convention(label_convention, "mnms")
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
                    f"M&Ms subject {code} ('{folder}') has no row in the information file '{csv_path}': "
                    "its end-diastolic frame (ED) is unknown"
                )
            row = table[code]
            _check_mnms_frames(image, row, code, csv_path)
            vendor, centre = str(row["Vendor"]).strip(), str(row["Centre"]).strip()
            records.append(
                {
                    "image": str(image),
                    "label": str(label),
                    "ed_frame": row["ED"],
                    "es_frame": row["ES"],
                    "ed_source": f"ED of subject {code} in '{csv_path}' line {row['line']}",
                    "subject": code,
                    "split": split_name,
                    "vendor": vendor,
                    "centre": centre,
                    "domain": f"vendor {vendor}/centre {centre}",
                    "dataset": "mnms",
                    "label_convention": convention,
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


def check_label_convention(
    label: np.ndarray, convention: str | Mapping[int, int] = "internal", source: str = "label map"
) -> dict[str, float]:
    """Refuse a label map whose LV and RV are swapped (the other dataset's numbering), judged from anatomy.

    In short-axis slices the LV cavity is enclosed by the myocardial ring, while the RV cavity
    touches the myocardium on one side only (the septum). For each cavity of the *mapped* label
    map (internal convention: 1 LV, 2 MYO, 3 RV) the in-plane border ring (one-voxel in-plane
    dilation of the cavity minus the cavity, all slices together) is computed with
    ``scipy.ndimage.binary_dilation``; the *enclosure* is the fraction of that ring that is
    myocardium. A correctly numbered heart has a high LV enclosure and a low RV enclosure. If the
    structure taken for the RV is enclosed (``>= ENCLOSED_MIN``) and clearly more so than the
    structure taken for the LV (by ``>= ENCLOSED_MARGIN``), the file uses the other numbering.
    A map lacking LV or RV is not judged.

    Args:
        label: (X, Y[, Z]) label map already mapped to the internal convention.
        convention: the convention it was read with (names the alternative in the message).
        source: name used in the error message (the file).

    Returns:
        ``{"LV": enclosure, "RV": enclosure}`` (NaN for an absent structure).

    Raises:
        CardiacDataError: the LV and RV look swapped; the message names the file and the option.

    Example:
        >>> lab = np.zeros((9, 9), np.uint8); lab[2:7, 2:7] = 2; lab[3:6, 3:6] = 1; lab[2:7, 7:9] = 3
        >>> {k: round(v, 2) for k, v in check_label_convention(lab).items()}
        {'LV': 1.0, 'RV': 0.56}
    """
    from scipy.ndimage import binary_dilation

    label = np.asarray(label)
    if label.ndim == 2:
        label = label[..., None]
    structure = np.zeros((3, 3, 1), bool)
    structure[1, :, 0] = structure[:, 1, 0] = True  # in-plane 4-neighbourhood: slices are judged separately
    enclosure = {}
    for name in ("LV", "RV"):
        mask = label == CARDIAC_LABELS[name]
        ring = binary_dilation(mask, structure) & ~mask
        enclosure[name] = float(np.mean(label[ring] == CARDIAC_LABELS["MYO"])) if ring.any() else math.nan
    lv, rv = enclosure["LV"], enclosure["RV"]
    if math.isfinite(lv) and math.isfinite(rv) and rv >= ENCLOSED_MIN and rv - lv >= ENCLOSED_MARGIN:
        if isinstance(convention, str) and convention in SWAPPED_CONVENTION:
            other = SWAPPED_CONVENTION[convention]
            read_as = f"it was read in the {LABEL_NUMBERING[convention]} ({convention!r})"
            fix = (
                f"the file seems to use the {LABEL_NUMBERING[other]}: train with --label_convention {other} "
                f"(in Python: cardiac_datalists(..., label_convention={other!r})), or renumber the file"
            )
        else:
            read_as, fix = "it was read with a custom label mapping", "swap the LV and RV values of the mapping"
        raise CardiacDataError(
            f"{source}: LV and RV look swapped (wrong label convention): {read_as}, yet the structure taken "
            f"for the RV is enclosed by myocardium ({rv:.0%} of its in-plane border) and the one taken for the "
            f"LV is not ({lv:.0%}); the LV cavity is the one inside the myocardial ring. {fix}"
        )
    return enclosure


def _raw_pixdim(path: str | os.PathLike, img: Any) -> Sequence[float]:
    """The voxel sizes as stored: nibabel fixes the header on load (0 -> 1, negative -> absolute value)."""
    try:
        header = raw_nifti_header(path)
    except Exception:  # the header was read once already; fall back to nibabel's view of it
        header = None
    return header["pixdim"][1:4] if header is not None else img.header.get_zooms()[:3]


def _load_nifti(path: str | os.PathLike, what: str = "NIfTI file") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a NIfTI file: data, voxel spacing (checked against the cardiac bounds) and affine.

    As in :func:`~monai_genvq.data.volumes.nifti_spacing_problem`, only spatial axes longer than one voxel
    are checked: the size of the one slice of a single-slice file is often not set (zero) and means nothing.
    """
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except FileNotFoundError:
        raise CardiacDataError(f"{what} '{path}' does not exist") from None
    except Exception as e:  # nibabel raises several types for truncated / corrupt files
        raise CardiacDataError(f"{what} '{path}' cannot be read ({type(e).__name__}: {e})") from None
    pixdim = _raw_pixdim(path, img)
    spacing = np.asarray(pixdim, dtype=np.float64)
    if spacing.size < 3:
        spacing = np.concatenate([spacing, np.ones(3 - spacing.size)])
    (lo, hi), (zlo, zhi) = INPLANE_SPACING_MM, SLICE_SPACING_MM
    checked = [axis for axis in range(3) if axis < data.ndim and data.shape[axis] > 1]
    bounds = ((lo, hi), (lo, hi), (zlo, zhi))
    if not all(np.isfinite(spacing[a]) and bounds[a][0] <= spacing[a] <= bounds[a][1] for a in checked):
        raise CardiacDataError(
            f"{what} '{path}' has voxel spacing {tuple(float(v) for v in spacing)} mm: implausible for cardiac "
            f"cine MRI (in-plane must be in [{lo}, {hi}] mm, slice thickness in [{zlo}, {zhi}] mm; "
            "zero, negative or non-finite sizes are invalid); fix the header's pixdim"
        )
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise CardiacDataError(f"{what} '{path}' has a singular or non-finite affine; its orientation is unknown")
    return data, spacing, affine


def _single_frame(data: np.ndarray, path: str, what: str) -> np.ndarray:
    """A record without ``ed_frame`` is one frame: a 2-D slice (X, Y) -> (X, Y, 1) or a 3-D stack (X, Y, Z)."""
    if data.ndim == 2:
        return data[..., None]
    if data.ndim == 3:
        return data
    raise CardiacDataError(
        f"{what} '{path}' has shape {data.shape}; a record without 'ed_frame' must be one 2-D slice or 3-D stack "
        "(a 4-D cine needs the end-diastolic index: use the ACDC / M&Ms loaders)"
    )


def _select_frame(data: np.ndarray, frame: int, path: str, what: str, source: str = "") -> np.ndarray:
    if data.ndim == 4:
        if not 0 <= frame < data.shape[3]:
            raise CardiacDataError(
                f"{what} '{path}' has {data.shape[3]} frames but the end-diastolic frame index is {frame} (0-based)"
                f": out of range{f' ({source})' if source else ''}"
            )
        return data[..., frame]
    if data.ndim == 3:
        return data
    raise CardiacDataError(f"{what} '{path}' has shape {data.shape}; expected 3-D (X, Y, Z) or 4-D (X, Y, Z, T)")


_POSITIVE_CODE = {"L": "R", "R": "R", "P": "A", "A": "A", "I": "S", "S": "S"}

#: largest difference of the unit axis directions (direction cosines) of an image and its ground truth that
#: still counts as the same orientation (rounding between qform and sform is ~1e-6; 1e-3 is ~0.06 degrees)
ORIENTATION_TOLERANCE = 1e-3


def _direction_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference between the unit voxel-axis directions (normalised affine columns) of two affines.

    Example:
        >>> _direction_difference(np.diag([1.5, 1.5, 10.0, 1.0]), np.diag([1.2, 1.2, 8.0, 1.0]))
        0.0
        >>> _direction_difference(np.diag([1.5, 1.5, 10.0, 1.0]), np.diag([-1.5, 1.5, 10.0, 1.0]))
        2.0
    """
    da, db = (np.asarray(m, dtype=np.float64)[:3, :3] for m in (a, b))
    da, db = da / np.linalg.norm(da, axis=0), db / np.linalg.norm(db, axis=0)
    return float(np.max(np.abs(da - db)))


def canonical_axcodes(affine: np.ndarray, current: bool = False) -> str:
    """The orientation a cardiac volume is brought to: closest to RAS while keeping the slice axis last.

    Each voxel axis is made to point towards the positive end (R, A or S) of its closest world
    axis, and the two in-plane axes are ordered as in ``"RAS"``. The third (slice) axis is never
    moved, so a short-axis stack stays a stack of short-axis slices even when its normal is
    closest to A or R (oblique acquisitions); for a stack whose slice axis is closest to S this is
    exactly ``"RAS"``. ``current=True`` returns the file's own axis codes instead (e.g. ``"LAS"``).

    Example:
        >>> canonical_axcodes(np.diag([-1.5, 1.5, 10.0, 1.0])), canonical_axcodes(np.diag([1.5, 1.5, 10.0, 1.0]))
        ('RAS', 'RAS')
        >>> canonical_axcodes(np.array([[0, 1.5, 0, 0], [1.5, 0, 0, 0], [0, 0, -10.0, 0], [0, 0, 0, 1]]))
        'RAS'
    """
    import nibabel as nib

    if current:
        return "".join(nib.orientations.aff2axcodes(affine))
    codes = [_POSITIVE_CODE[c] for c in nib.orientations.aff2axcodes(affine)]
    return "".join(sorted(codes[:2], key="RAS".index)) + codes[2]


def _to_canonical(
    volume: np.ndarray, affine: np.ndarray, spacing: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient an (X, Y, Z) volume with MONAI ``Orientation`` to :func:`canonical_axcodes`; spacing follows."""
    import nibabel as nib
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Orientation

    axcodes = canonical_axcodes(affine)
    current = "".join(nib.orientations.aff2axcodes(affine))
    if current == axcodes:
        return volume, spacing, affine  # already canonical (the common case): no copy
    source = [_POSITIVE_CODE[c] for c in current]
    tensor = MetaTensor(torch.as_tensor(np.ascontiguousarray(volume))[None], affine=torch.as_tensor(affine))
    out = Orientation(axcodes=axcodes, labels=(("L", "R"), ("P", "A"), ("I", "S")))(tensor)
    spacing = np.asarray([spacing[source.index(c)] for c in axcodes], dtype=np.float64)
    return out.as_tensor()[0].numpy(), spacing, np.asarray(out.affine, dtype=np.float64)


def load_cardiac_ed(record: Mapping[str, Any], require_labels: Sequence[str] = ("LV", "MYO", "RV")) -> dict[str, Any]:
    """Load the end-diastolic image and ground truth of a datalist record.

    The volumes are brought to one orientation (:func:`canonical_axcodes`, RAS for axial-like
    stacks, with MONAI ``Orientation``), so that the voxel-space alignment sees the same anatomy
    whatever the file's axis directions (a stack stored mirrored, with a mirrored affine, is
    loaded as the same heart). The label numbering is checked against the anatomy
    (:func:`check_label_convention`).

    Args:
        record: an item of :func:`discover_acdc` / :func:`discover_mnms` (``image``, ``label``,
            ``ed_frame``, ``dataset``, ``label_convention``), or a plain ``{"image", "label"}`` pair of
            one-frame files (a 2-D slice or a 3-D stack, e.g. MONAI Label's training datalist).
        require_labels: structures that must be present in the ED ground truth.

    Returns:
        ``image`` (X, Y, Z) float32, ``label`` (X, Y, Z) uint8 in the internal convention,
        ``spacing`` (3,) mm (of the reoriented axes), and the record's other entries.

    Raises:
        CardiacDataError: unreadable NIfTI, 3-D file where the layout stores 4-D, ED index out of
            range, implausible voxel spacing, non-finite voxels, image/label shape mismatch, empty
            or incomplete ground truth, label values outside the convention, LV/RV swapped (wrong
            label convention). Each message names the file.
    """
    image_path, label_path = str(record["image"]), str(record["label"])
    image, spacing, affine = _load_nifti(image_path, "image")
    label, _, label_affine = _load_nifti(label_path, "ground truth")
    if record.get("ed_frame") is None:  # an annotated image as a file pair (MONAI Label's {image, label} datalist)
        ed = 0
        image = _single_frame(image, image_path, "image")
        label = _single_frame(label, label_path, "ground truth")
    else:
        ed = int(record["ed_frame"])
        source = str(record.get("ed_source", ""))
        four_d = record.get("dataset") == "mnms" or image_path.endswith("_4d.nii.gz")
        if four_d and image.ndim != 4:
            raise CardiacDataError(
                f"image '{image_path}' has shape {image.shape} (3-D) but a 4-D cine (X, Y, Z, T) is expected here"
            )
        image = _select_frame(image, ed, image_path, "image", source)
        if record.get("dataset") == "mnms" and label.ndim != 4:
            raise CardiacDataError(
                f"ground truth '{label_path}' has shape {label.shape} (3-D) but M&Ms stores 4-D (X, Y, Z, T) labels"
            )
        label = _select_frame(label, ed, label_path, "ground truth", source)
    if image.shape != label.shape:
        raise CardiacDataError(
            f"image '{image_path}' {image.shape} and ground truth '{label_path}' {label.shape} differ in shape"
        )
    image = image.astype(np.float32)
    if not np.all(np.isfinite(image)):
        raise CardiacDataError(f"image '{image_path}' holds {int((~np.isfinite(image)).sum())} non-finite voxels")
    convention = record.get("label_convention", "internal")
    label = map_labels(label, convention, f"ground truth '{label_path}'")
    present = {name for name, v in CARDIAC_LABELS.items() if np.any(label == v)}
    frame = "" if record.get("ed_frame") is None else " at the end-diastolic frame"
    if not present:
        raise CardiacDataError(
            f"ground truth '{label_path}' is empty{frame}"
            + (f" (index {ed}); check ED in the metadata" if frame else "")
        )
    missing = [n for n in require_labels if n not in present]
    if missing:
        raise CardiacDataError(f"ground truth '{label_path}'{frame} lacks {missing} (has only {sorted(present)})")
    check_label_convention(label, convention, f"ground truth '{label_path}'")
    difference = _direction_difference(affine, label_affine)
    if difference > ORIENTATION_TOLERANCE:
        image_codes, label_codes = canonical_axcodes(affine, True), canonical_axcodes(label_affine, True)
        raise CardiacDataError(
            f"image '{image_path}' and ground truth '{label_path}' have different orientations (voxel axes "
            f"{image_codes} and {label_codes} in their affines; their axis directions differ by up to "
            f"{difference:.3g}, more than {ORIENTATION_TOLERANCE}): the label would not lie on the image"
        )
    # the same orientation (up to rounding): both are reoriented by the image's affine, so that an axis code
    # flipped by rounding (a double-oblique stack near 45 degrees) cannot reorient them differently
    image, spacing, _ = _to_canonical(image, affine, spacing)
    label, _, _ = _to_canonical(label, affine, spacing)
    return {**record, "image": image, "label": label, "spacing": spacing}
