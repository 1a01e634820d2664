"""Short-axis cardiac cine phantoms written in the ACDC and M&Ms-1 on-disk layouts.

Each subject is a stack of short-axis slices (base to apex) over a few cine frames with

* an LV blood pool (slightly elliptical, papillary muscles inside, labelled LV as in ACDC),
* a myocardial ring of its own thickness (myocardial volume conserved over the cycle),
* a crescent RV cavity wrapped around the septum, with a thin unlabelled free wall,
* LV radius, wall thickness, RV width, long-axis length and ejection fractions drawn
  continuously (not in lockstep); ``size_coupling`` chooses how LVEDV, MEDV and RVEDV co-vary:
  ``"shared"`` (default, version 2: the long axis grows with the LV, all volumes correlate
  ~0.5) or ``"acdc"`` (correlations as in ACDC: LV-MYO ~0, LV-RV ~0.3, MYO-RV ~0.2; the
  cardiac Attri-SIVAE bundle's default),
* a random in-plane pose (rotation of the whole heart, translation, small slice-to-slice drift),
  so the alignment preprocessing matters,
* partial-volume edges, a smooth background with a body outline, Rician noise, and per-vendor
  intensity scale, blood/myocardium contrast, gamma, bias field and noise level (a real domain
  shift between vendors A-D and the ACDC scanner).

The files follow the public layouts exactly (see ``monai_genvq.data.cardiac``), so the real
loaders read them: ACDC ``Info.cfg`` with 1-based ED/ES and labels 1 RV/2 MYO/3 LV; M&Ms 4-D
``_sa``/``_sa_gt`` files (ground truth only at ED and ES), the information CSV with 0-based
ED/ES and labels 1 LV/2 MYO/3 RV.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.data.cardiac import ACDC_TO_INTERNAL
from monai_genvq.utils.dataset_cache import default_cache_root, materialize_dataset, params_digest

__all__ = [
    "VENDOR_STYLES",
    "ensure_synthetic_acdc",
    "ensure_synthetic_mnms",
    "generate_synthetic_acdc",
    "generate_synthetic_mnms",
    "render_cardiac_phantom",
]

GENERATOR_VERSION = 2
MNMS_CSV_NAME = "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"

#: per-scanner appearance: blood / myocardium / background tissue intensity, gamma, noise (fraction
#: of blood signal), bias-field strength, stored intensity scale.
VENDOR_STYLES: dict[str, dict[str, float]] = {
    "ACDC": {"blood": 0.95, "myo": 0.28, "tissue": 0.40, "gamma": 1.0, "noise": 0.035, "bias": 0.15, "scale": 900.0},
    "A": {"blood": 0.90, "myo": 0.22, "tissue": 0.35, "gamma": 1.0, "noise": 0.030, "bias": 0.10, "scale": 1500.0},
    "B": {"blood": 0.75, "myo": 0.35, "tissue": 0.50, "gamma": 0.75, "noise": 0.050, "bias": 0.25, "scale": 400.0},
    "C": {"blood": 1.00, "myo": 0.15, "tissue": 0.30, "gamma": 1.3, "noise": 0.025, "bias": 0.35, "scale": 3000.0},
    "D": {"blood": 0.70, "myo": 0.30, "tissue": 0.55, "gamma": 0.9, "noise": 0.060, "bias": 0.20, "scale": 250.0},
}
VENDOR_INFO = {"A": ("Siemens", (1, 6)), "B": ("Philips", (2, 3)), "C": ("GE", (4,)), "D": ("Canon", (5,))}


SIZE_COUPLINGS = ("shared", "acdc")


def _sample_anatomy(rng: np.random.Generator, size_coupling: str = "shared") -> dict[str, float]:
    """Continuous shape parameters of one heart (mm, or fractions).

    LV radius, wall thickness and RV width are drawn independently. ``size_coupling`` sets how
    the three ventricular volumes co-vary:

    * ``"shared"`` (generator version 2): the long-axis length grows with the LV radius (larger
      hearts are longer), so every volume scales with it; LVEDV, MEDV and RVEDV correlate
      0.5-0.6 (Pearson, 150 subjects).
    * ``"acdc"``: long-axis length independent of the LV radius, wall thickness inversely related
      to the cavity radius (dilated hearts thin-walled, hypertrophic hearts small-cavity), so the
      correlations are those of ACDC (measured on 60 phantoms: LV-MYO -0.03, LV-RV 0.31,
      MYO-RV 0.23; ACDC's 100 training subjects: -0.04, 0.35, 0.18).

    The rng draws are the same in both modes, so the poses, noise and the other parameters of a
    subject do not change between them.
    """
    if size_coupling not in SIZE_COUPLINGS:
        raise ValueError(f"size_coupling must be one of {SIZE_COUPLINGS}; got {size_coupling!r}")
    acdc = size_coupling == "acdc"
    r_lv = rng.uniform(17.0, 31.0)
    t_myo = rng.uniform(5.0, 13.0) * ((24.0 / r_lv) ** 0.8 if acdc else 1.0)
    rv_width = rng.uniform(5.0, 26.0)
    ecc, ecc_angle = rng.uniform(0.0, 0.12), rng.uniform(0, np.pi)
    length_noise = rng.normal(0, 0.3)
    length = 7.0 + length_noise * (0.5 / 0.3) if acdc else 5.8 + 2.4 * (r_lv - 17.0) / 14.0 + length_noise
    return {
        "r_lv": r_lv,  # ED endocardial radius at the base
        "t_myo": t_myo,  # ED wall thickness
        "rv_width": rv_width,  # ED RV crescent width
        "ecc": ecc,
        "ecc_angle": ecc_angle,
        "length": length,  # long-axis extent in slices
        "base_offset": rng.uniform(0.0, 0.3),
        "rv_length": rng.uniform(0.65, 0.9),  # RV extent as a fraction of the LV's
        "ef_lv": rng.uniform(0.25, 0.65),
        "ef_rv": rng.uniform(0.25, 0.6),
        "pose": rng.uniform(0, 2 * np.pi),  # direction of the RV (in-plane rotation of the heart)
        "shift_x": rng.uniform(-16, 16),
        "shift_y": rng.uniform(-16, 16),
        "spacing": rng.uniform(1.4, 1.7),
        "papillary": rng.uniform(1.8, 3.4),
    }


def _ellipse_sd(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float, theta: float) -> np.ndarray:
    """Approximate signed distance (mm) to an ellipse (negative inside)."""
    c, s = np.cos(theta), np.sin(theta)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    a, b = max(a, 1e-3), max(b, 1e-3)
    rho = np.sqrt((u * np.float32(1 / a)) ** 2 + (v * np.float32(1 / b)) ** 2)
    return (rho - 1.0) * np.float32(0.5 * (a + b))


def _sig(sd: np.ndarray, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(np.clip(sd * np.float32(1 / width), -30, 30)))


def render_cardiac_phantom(
    rng: np.random.Generator,
    shape: tuple[int, int] = (160, 160),
    n_slices: int = 8,
    n_frames: int = 4,
    ed_frame: int = 0,
    vendor: str = "ACDC",
    anatomy: Mapping[str, float] | None = None,
    size_coupling: str = "shared",
) -> dict[str, Any]:
    """Render one phantom subject.

    Args:
        rng: random generator (pose, anatomy if not given, noise).
        shape: in-plane size (X, Y).
        n_slices: short-axis slices (base first), 10 mm apart.
        n_frames: cine frames; the heart is largest at ``ed_frame`` and smallest half a cycle later.
        ed_frame: 0-based index of end-diastole.
        vendor: key of :data:`VENDOR_STYLES`.
        anatomy: shape parameters (default: drawn by ``rng``).
        size_coupling: ``"shared"`` or ``"acdc"``: how the drawn LV, MYO and RV sizes co-vary
            (see :func:`_sample_anatomy`).

    Returns:
        ``image`` (X, Y, Z, T) int16 in the vendor's intensity scale, ``label`` (X, Y, Z, T) uint8
        in the internal convention (1 LV, 2 MYO, 3 RV), ``spacing`` (dx, dy, dz) mm, ``ed_frame``,
        ``es_frame`` and ``anatomy``.
    """
    style = VENDOR_STYLES[vendor]
    p = dict(anatomy) if anatomy is not None else _sample_anatomy(rng, size_coupling)
    nx, ny = shape
    dx, dz = p["spacing"], 10.0
    xs = (np.arange(nx) - nx / 2 + 0.5) * dx
    ys = (np.arange(ny) - ny / 2 + 0.5) * dx
    X, Y = (g.astype(np.float32) for g in np.meshgrid(xs, ys, indexing="ij"))
    es_frame = (ed_frame + n_frames // 2) % n_frames
    image = np.zeros((nx, ny, n_slices, n_frames), np.float32)
    label = np.zeros((nx, ny, n_slices, n_frames), np.uint8)

    # static background: body outline, smooth tissue texture, bias field
    fx, fy = rng.normal(size=2) * 0.02
    tissue = style["tissue"] * (1 + 0.25 * np.sin(X * fx + rng.uniform(0, 6)) * np.cos(Y * fy + rng.uniform(0, 6)))
    body = _sig(
        _ellipse_sd(X, Y, rng.normal(0, 5), rng.normal(0, 5), 0.46 * nx * dx, 0.38 * ny * dx, rng.uniform(0, np.pi)),
        2.0,
    )
    fat = _sig(-_ellipse_sd(X, Y, 0, 0, 0.40 * nx * dx, 0.32 * ny * dx, 0.0), 3.0) * body
    bias_dir = rng.uniform(0, 2 * np.pi)
    bias = 1 + style["bias"] * ((X * np.cos(bias_dir) + Y * np.sin(bias_dir)) / (0.5 * nx * dx))
    background = tissue * body + 0.35 * fat

    drift = np.cumsum(rng.normal(0, 1.2, size=(n_slices, 2)), axis=0)
    rv_dir = np.array([np.cos(p["pose"]), np.sin(p["pose"])])
    pap_angles = p["pose"] + np.pi + np.array([-0.9, 0.9]) + rng.normal(0, 0.2, 2)
    myo_area_ed = (p["r_lv"] + p["t_myo"]) ** 2 - p["r_lv"] ** 2
    for t in range(n_frames):
        c = 0.5 * (1 - np.cos(2 * np.pi * (t - ed_frame) / n_frames))  # 0 at ED, 1 at ES
        r_lv = p["r_lv"] * np.sqrt(1 - c * p["ef_lv"])
        r_epi = np.sqrt(r_lv**2 + myo_area_ed)
        rv_w = p["rv_width"] * np.sqrt(1 - c * p["ef_rv"])
        for z in range(n_slices):
            u = (z + 0.5 + p["base_offset"]) / p["length"]
            s_lv = np.sqrt(max(0.0, 1 - u**2))
            u_epi = (z + 0.5 + p["base_offset"]) / (p["length"] + p["t_myo"] / dz)
            s_epi = np.sqrt(max(0.0, 1 - u_epi**2))
            u_rv = (z + 0.5 + p["base_offset"]) / (p["rv_length"] * p["length"])
            s_rv = np.sqrt(max(0.0, 1 - u_rv**2))
            cx, cy = p["shift_x"] + drift[z, 0], p["shift_y"] + drift[z, 1]
            a_lv, b_lv = r_lv * s_lv * (1 + p["ecc"]), r_lv * s_lv * (1 - p["ecc"])
            a_epi, b_epi = r_epi * s_epi * (1 + p["ecc"]), r_epi * s_epi * (1 - p["ecc"])
            sd_lv = _ellipse_sd(X, Y, cx, cy, a_lv, b_lv, p["ecc_angle"]) if s_lv > 0.05 else np.full_like(X, 1e3)
            sd_epi = _ellipse_sd(X, Y, cx, cy, a_epi, b_epi, p["ecc_angle"]) if s_epi > 0.05 else np.full_like(X, 1e3)
            if s_rv > 0.05:
                R = r_epi * s_epi
                w = rv_w * s_rv
                rcx, rcy = np.array([cx, cy]) + rv_dir * (0.35 * R + 0.5 * w)
                sd_rv_outer = _ellipse_sd(X, Y, rcx, rcy, 0.75 * R + 0.6 * w, 1.15 * R + 0.5 * w, p["pose"])
                sd_rv = np.maximum(sd_rv_outer, -(sd_epi - 2.5))  # RV cavity = ellipse minus dilated epicardium
                sd_rv_wall = np.maximum(sd_rv_outer - 3.0, -sd_epi)
            else:
                sd_rv = sd_rv_wall = np.full_like(X, 1e3)
            sd_pap = np.full_like(X, 1e3)
            if s_lv > 0.3:
                for ang in pap_angles:
                    px, py = cx + 0.7 * a_lv * np.cos(ang), cy + 0.7 * b_lv * np.sin(ang)
                    sd_pap = np.minimum(sd_pap, np.hypot(X - px, Y - py) - p["papillary"] * s_lv)
            m_wall, m_rvwall = _sig(sd_epi, 0.8), _sig(sd_rv_wall, 0.8)
            m_lv, m_rv, m_pap = _sig(sd_lv, 0.8), _sig(sd_rv, 0.8), _sig(sd_pap, 0.6)
            img = background.copy()
            img = img + (style["myo"] - img) * np.maximum(m_wall, m_rvwall)
            img = img + (style["blood"] - img) * np.maximum(m_lv * (1 - m_pap), m_rv)
            image[:, :, z, t] = img
            lab = np.zeros(X.shape, np.uint8)
            lab[sd_epi < 0] = 2
            lab[sd_lv < 0] = 1
            lab[(sd_rv < 0) & (sd_epi >= 0)] = 3
            label[:, :, z, t] = lab

    # acquisition: slight blur, gamma, bias, Rician noise, vendor scale
    from scipy.ndimage import gaussian_filter

    image = gaussian_filter(image, sigma=(0.6, 0.6, 0, 0))
    image = np.clip(image, 0, None) ** np.float32(style["gamma"]) * bias[..., None, None].astype(np.float32)
    sigma = style["noise"] * style["blood"]
    noise = rng.standard_normal((2,) + image.shape, dtype=np.float32) * np.float32(sigma)
    image = np.hypot(image.astype(np.float32) + noise[0], noise[1])
    image = np.round(image * style["scale"]).clip(0, 32767).astype(np.int16)
    return {
        "image": image,
        "label": label,
        "spacing": (dx, dx, dz),
        "ed_frame": ed_frame,
        "es_frame": es_frame,
        "anatomy": p,
    }


def _group(p: Mapping[str, float]) -> str:
    if p["ef_lv"] < 0.35 and p["r_lv"] > 26:
        return "DCM"
    if p["t_myo"] > 11.5:
        return "HCM"
    if p["rv_width"] > 19:
        return "ARV"
    if p["ef_lv"] < 0.35:
        return "MINF"
    return "NOR"


def _save_nifti(path: Path, data: np.ndarray, spacing: tuple[float, float, float]) -> None:
    import nibabel as nib

    affine = np.diag([spacing[0], spacing[1], spacing[2], 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(tuple(spacing) + ((1.0,) if data.ndim == 4 else ()))
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))


def _to_convention(label: np.ndarray, internal_to_dataset: Mapping[int, int]) -> np.ndarray:
    lut = np.zeros(4, np.uint8)
    for k, v in internal_to_dataset.items():
        lut[k] = v
    return lut[label]


def generate_synthetic_acdc(
    root: str | os.PathLike,
    n_train: int = 100,
    n_test: int = 50,
    shape: tuple[int, int] = (160, 160),
    n_slices: int = 8,
    n_frames: int = 4,
    seed: int = 0,
    size_coupling: str = "shared",
) -> Path:
    """Write a phantom dataset in the ACDC layout (``database/{training,testing}/patientNNN/``).

    Patients are numbered 001.. for training and continue for testing (as ACDC's 001-100 /
    101-150). ED is frame 1 or 2 (1-based in ``Info.cfg``), labels use ACDC's 1 RV, 2 MYO, 3 LV.

    Returns:
        ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    internal_to_acdc = {v: k for k, v in ACDC_TO_INTERNAL.items()}
    subjects = []
    for i in range(n_train + n_test):
        split = "training" if i < n_train else "testing"
        name = f"patient{i + 1:03d}"
        folder = root / "database" / split / name
        folder.mkdir(parents=True, exist_ok=True)
        ed = int(rng.integers(0, 2))
        case = render_cardiac_phantom(
            rng, shape, n_slices, n_frames, ed_frame=ed, vendor="ACDC", size_coupling=size_coupling
        )
        _save_nifti(folder / f"{name}_4d.nii.gz", case["image"], case["spacing"])
        for frame in (case["ed_frame"], case["es_frame"]):
            _save_nifti(folder / f"{name}_frame{frame + 1:02d}.nii.gz", case["image"][..., frame], case["spacing"])
            gt = _to_convention(case["label"][..., frame], internal_to_acdc)
            _save_nifti(folder / f"{name}_frame{frame + 1:02d}_gt.nii.gz", gt, case["spacing"])
        info = {
            "ED": case["ed_frame"] + 1,
            "ES": case["es_frame"] + 1,
            "Group": _group(case["anatomy"]),
            "Height": round(float(rng.uniform(150, 195)), 1),
            "NbFrame": n_frames,
            "Weight": round(float(rng.uniform(50, 110)), 1),
        }
        (folder / "Info.cfg").write_text("".join(f"{k}: {v}\n" for k, v in info.items()))
        subjects.append(
            {"subject": name, "split": split, **{k: round(float(v), 4) for k, v in case["anatomy"].items()}}
        )
    (root / "synthetic_anatomy.json").write_text(json.dumps(subjects, indent=1) + "\n")
    return root


def generate_synthetic_mnms(
    root: str | os.PathLike,
    n_train: int = 60,
    n_val: int = 8,
    n_test: int = 40,
    n_unlabeled: int = 2,
    shape: tuple[int, int] = (160, 160),
    n_slices: int = 8,
    n_frames: int = 4,
    seed: int = 1,
    size_coupling: str = "shared",
) -> Path:
    """Write a phantom dataset in the M&Ms-1 layout (``OpenDataset/...`` + information CSV).

    As in M&Ms-1, ``Training/Labeled`` holds vendors A and B only, ``Validation`` and ``Testing``
    hold vendors A-D (unseen vendors C and D: the domain shift), ``Training/Unlabeled`` holds
    vendor C subjects with empty ground truth. ED is a random 0-based frame index; the 4-D
    ground truth is filled only at ED and ES; labels use M&Ms' 1 LV, 2 MYO, 3 RV.

    Returns:
        ``root``.
    """
    root = Path(root) / "OpenDataset"
    rng = np.random.default_rng(seed)
    rows, subjects = [], []
    plan = (
        [("Training/Labeled", "AB"[i % 2]) for i in range(n_train)]
        + [("Training/Unlabeled", "C") for _ in range(n_unlabeled)]
        + [("Validation", "ABCD"[i % 4]) for i in range(n_val)]
        + [("Testing", "ABCD"[i % 4]) for i in range(n_test)]
    )
    for i, (split, vendor) in enumerate(plan):
        code = f"{vendor}{i:03d}{'ABCDEFGHJKLMNPQRSTUVWXYZ'[int(rng.integers(0, 24))]}{int(rng.integers(0, 10))}"
        folder = root / split / code
        folder.mkdir(parents=True, exist_ok=True)
        ed = int(rng.integers(0, n_frames))
        case = render_cardiac_phantom(
            rng, shape, n_slices, n_frames, ed_frame=ed, vendor=vendor, size_coupling=size_coupling
        )
        gt = np.zeros_like(case["label"])
        if split != "Training/Unlabeled":
            for frame in (case["ed_frame"], case["es_frame"]):
                gt[..., frame] = case["label"][..., frame]  # internal convention == M&Ms convention
        _save_nifti(folder / f"{code}_sa.nii.gz", case["image"], case["spacing"])
        _save_nifti(folder / f"{code}_sa_gt.nii.gz", gt, case["spacing"])
        name, centres = VENDOR_INFO[vendor]
        rows.append(
            {
                "External code": code,
                "Pathology": _group(case["anatomy"]),
                "VendorName": name,
                "Vendor": vendor,
                "Centre": int(centres[int(rng.integers(0, len(centres)))]),
                "ED": case["ed_frame"],
                "ES": case["es_frame"],
                "Age": int(rng.integers(20, 80)),
                "Sex": "MF"[int(rng.integers(0, 2))],
                "Height": round(float(rng.uniform(150, 195)), 1),
                "Weight": round(float(rng.uniform(50, 110)), 1),
            }
        )
        subjects.append(
            {
                "subject": code,
                "split": split,
                "vendor": vendor,
                **{k: round(float(v), 4) for k, v in case["anatomy"].items()},
            }
        )
    with open(root / MNMS_CSV_NAME, "w", newline="") as f:
        writer = csv.writer(f)
        columns = list(rows[0])
        writer.writerow([""] + columns)
        for j, row in enumerate(rows):
            writer.writerow([j] + [row[c] for c in columns])
    (root.parent / "synthetic_anatomy.json").write_text(json.dumps(subjects, indent=1) + "\n")
    return root.parent


def _ensure(kind: str, generate: Any, defaults: dict[str, Any], root: str | os.PathLike | None, kwargs: dict) -> Path:
    unknown = set(kwargs) - set(defaults)
    if unknown:
        raise TypeError(f"unknown synthetic {kind} parameter(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    options = {**defaults, **kwargs}
    options["shape"] = tuple(int(s) for s in options["shape"])
    if options.get("size_coupling", "shared") == "shared":  # the version-2 anatomy: recorded as before,
        options.pop("size_coupling", None)  # so existing caches stay valid
    params = {"generator": f"synthetic_{kind}", "version": GENERATOR_VERSION, **options}
    if root is None:
        legacy_defaults = {k: v for k, v in defaults.items() if k != "size_coupling"}
        suffix = "" if options == legacy_defaults else f"-{params_digest(params)}"
        root = default_cache_root() / f"synthetic_{kind}_v{GENERATOR_VERSION}{suffix}"
    return materialize_dataset(root, params, lambda folder: generate(folder, **options))


def ensure_synthetic_acdc(root: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Return a phantom ACDC-layout folder, generating it on first use (idempotent, atomic).

    Args:
        root: dataset folder; default ``<cache>/synthetic_acdc_v1[-<hash>]`` where the cache is
            ``$MONAI_GENVQ_CACHE`` or ``~/.cache/monai_genvq``.
        kwargs: parameters of :func:`generate_synthetic_acdc` (``n_train``, ``n_test``, ``shape``,
            ``n_slices``, ``n_frames``, ``seed``, ``size_coupling``).

    Example:
        >>> from monai_genvq.data import discover_acdc
        >>> records = discover_acdc(ensure_synthetic_acdc(n_train=8, n_test=4))  # doctest: +SKIP
    """
    defaults = {
        "n_train": 100,
        "n_test": 50,
        "shape": (160, 160),
        "n_slices": 8,
        "n_frames": 4,
        "seed": 0,
        "size_coupling": "shared",
    }
    return _ensure("acdc", generate_synthetic_acdc, defaults, root, kwargs)


def ensure_synthetic_mnms(root: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Return a phantom M&Ms-1-layout folder, generating it on first use (idempotent, atomic).

    Args:
        root: dataset folder; default ``<cache>/synthetic_mnms_v1[-<hash>]``.
        kwargs: parameters of :func:`generate_synthetic_mnms` (``n_train``, ``n_val``, ``n_test``,
            ``n_unlabeled``, ``shape``, ``n_slices``, ``n_frames``, ``seed``, ``size_coupling``).
    """
    defaults = {
        "n_train": 60,
        "n_val": 8,
        "n_test": 40,
        "n_unlabeled": 2,
        "shape": (160, 160),
        "n_slices": 8,
        "n_frames": 4,
        "seed": 1,
        "size_coupling": "shared",
    }
    return _ensure("mnms", generate_synthetic_mnms, defaults, root, kwargs)
