"""Real anatomy from the MNI152 template shipped in nilearn's wheel, as a Decathlon-layout dataset.

nilearn (``install_requires`` >= 0.10; pinned 0.14.1 in ``requirements/constraints.txt``) ships, inside its wheel, the
skull-stripped T1 of the ICBM 2009a nonlinear *symmetric* MNI152 template with its grey- and
white-matter probability maps (``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``,
197 x 233 x 189 voxels of 1 mm, uint8). They are located with :mod:`importlib.resources`: nothing is
downloaded and nothing is copied into this repository; :func:`generate_mni152` writes derived
volumes into the dataset cache (``$MONAI_GENVQ_CACHE``).

**Label rule** (:func:`mni152_label_map`). The wheel has no CSF map. Inside the brain mask (the T1
template is skull-stripped: mask = T1 > 0, every voxel of nilearn's own
``load_mni152_brain_mask`` (T1 > 0.2 of its maximum) and 3 550 dark voxels more at 1 mm), with
``p_GM = gm / 255``, ``p_WM = wm / 255`` and the residual ``p_CSF = clip(1 - p_GM - p_WM, 0, 1)``
(ventricles and sulcal CSF), the label is the arg-max ``1 CSF, 2 GM, 3 WM`` (ties go to the lower
label); outside the mask it is 0 (background). At 1 mm this gives 160 114 CSF, 1 090 888 GM and
635 537 WM voxels, with T1 means 0.39 / 0.65 / 0.84 (of the template's maximum).

**One subject.** The template is one (average) brain. To have disjoint training and test volumes,
:func:`generate_mni152` writes ``n_subjects`` *pseudo-subjects*: the template warped by a random
smooth deformation (cubic B-spline-like field from Gaussian control points every 32 mm, standard
deviation ``deformation_mm``) and a random similarity transform (rotation up to ``rotation_deg``
about each axis, isotropic scale within ``1 ± scale``) about the brain's centroid, with a linear bias
field (``bias``) and Rician noise (``noise``) inside the brain; the background stays exactly 0 (as in a
skull-stripped scan). The label map is warped with the image (the probability maps are warped and
the rule applied afterwards), so image and label always agree. Every pseudo-subject is the same
anatomy: the check is of real tissue shapes and contrasts, not of inter-subject variability.

**Resolution.** The maps are Gaussian pre-filtered (FWHM = ``spacing`` mm) and sampled at the
centres of ``spacing``-mm voxels (linear interpolation); the written affine is the template's with
the voxel size and the shifted first-voxel centre, so world coordinates are kept.
"""

from __future__ import annotations

import functools
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = [
    "MNI152_FILES",
    "MNI152_LABELS",
    "ensure_mni152",
    "generate_mni152",
    "mni152_file",
    "mni152_label_map",
    "mni152_records",
]

GENERATOR_VERSION = 1

MNI152_FILES: dict[str, str] = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
"""The template files of nilearn's wheel (``nilearn/datasets/data/``) this module reads."""

MNI152_LABELS: dict[str, int] = {"CSF": 1, "GM": 2, "WM": 3}
"""Label values of the written label maps (0: background); the same as the brain phantom's."""

_INSTALL_HINT = "pip install -c requirements/constraints.txt nilearn==0.14.1"
_CONTROL_SPACING_MM = 32.0


def mni152_file(kind: str) -> Path:
    """Path of one MNI152 template file inside the installed nilearn package (no download).

    Args:
        kind: "t1", "gm" or "wm".

    Raises:
        ValueError: unknown ``kind``.
        ImportError: nilearn is not installed (the message gives the install command).
        FileNotFoundError: this nilearn version does not ship the file.

    Example:
        >>> mni152_file("gm").name
        'mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz'
    """
    if kind not in MNI152_FILES:
        raise ValueError(f"MNI152 file kind must be one of {sorted(MNI152_FILES)}, got {kind!r}")
    try:
        root = resources.files("nilearn")
    except ModuleNotFoundError as e:
        raise ImportError(f"the MNI152 dataset reads the template shipped in nilearn's wheel; {_INSTALL_HINT}") from e
    path = Path(str(root.joinpath("datasets", "data", MNI152_FILES[kind])))
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' is missing from the installed nilearn; {_INSTALL_HINT}")
    return path


def mni152_label_map(gm: np.ndarray, wm: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The label rule: inside ``mask``, arg-max of (CSF = clip(1 - GM - WM, 0, 1), GM, WM) -> 1, 2, 3; outside 0.

    Args:
        gm, wm: grey- and white-matter probabilities in [0, 1] (same shape).
        mask: brain mask (bool, same shape).

    Returns:
        uint8 label map (0 background, 1 CSF, 2 GM, 3 WM); ties go to the lower label.

    Example:
        >>> mni152_label_map(np.array([0.6, 0.2, 0.1, 0.9]), np.array([0.3, 0.7, 0.1, 0.0]),
        ...                  np.array([True, True, True, False])).tolist()
        [2, 3, 1, 0]
    """
    gm, wm = np.asarray(gm, np.float32), np.asarray(wm, np.float32)
    if gm.shape != wm.shape or gm.shape != np.shape(mask):
        raise ValueError(f"gm {gm.shape}, wm {wm.shape} and mask {np.shape(mask)} must have one shape")
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    label = (np.argmax(np.stack([csf, gm, wm]), axis=0) + 1).astype(np.uint8)
    label[~np.asarray(mask, bool)] = 0
    return label


@functools.lru_cache(maxsize=1)  # freed by ensure_mni152; repeated generate_mni152 calls share it
def _template_maps(spacing: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The 1 mm maps (T1 / max, p_GM, p_WM, mask fraction), pre-filtered for ``spacing``, and the affine."""
    import nibabel as nib
    from scipy.ndimage import gaussian_filter

    maps, affine = {}, None
    for kind in MNI152_FILES:
        img = nib.load(str(mni152_file(kind)))
        maps[kind] = np.asarray(img.dataobj, dtype=np.float32) / 255.0
        affine = img.affine if affine is None else affine
    maps["mask"] = (maps["t1"] > 0).astype(np.float32)
    if spacing > 1.0:
        sigma = spacing / (2.0 * np.sqrt(2.0 * np.log(2.0)))  # FWHM = spacing
        maps = {k: gaussian_filter(v, sigma, mode="constant") for k, v in maps.items()}
    return maps, np.asarray(affine, np.float64)


def _rotation(angles: np.ndarray) -> np.ndarray:
    """Rotation about x, then y, then z (radians); the y angle's sign is the generator's historical convention."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", np.asarray(angles, dtype=float) * (1.0, -1.0, 1.0)).as_matrix()


def generate_mni152(
    root: str | os.PathLike,
    n_subjects: int = 40,
    spacing: float = 3.0,
    seed: int = 0,
    deformation_mm: float = 3.0,
    rotation_deg: float = 5.0,
    scale: float = 0.05,
    bias: float = 0.1,
    noise: float = 0.02,
) -> Path:
    """Write ``n_subjects`` MNI152 pseudo-subjects in the Medical Segmentation Decathlon layout under ``root``.

    Files ``imagesTr/mni152_NNN.nii.gz`` (float32 T1, template maximum = 1, background exactly 0),
    ``labelsTr/mni152_NNN.nii.gz`` (uint8, 0 background, 1 CSF, 2 GM, 3 WM; :func:`mni152_label_map`)
    and ``dataset.json`` (all under ``"training"``; the consumer splits them). The module docstring
    states the deformation, intensity and resolution model.

    Args:
        root: output folder.
        n_subjects: pseudo-subjects (each its own random deformation, bias and noise).
        spacing: voxel size in mm (>= 1; the template is 1 mm).
        seed: seed of every random draw.
        deformation_mm: standard deviation of the smooth displacement at its control points (mm).
        rotation_deg: rotations drawn uniformly in ± this about each axis.
        scale: isotropic scale drawn uniformly in 1 ± this.
        bias: amplitude of the linear multiplicative bias field (1 ± about this across the brain).
        noise: Rician noise standard deviation (template maximum = 1).
        With ``deformation_mm = rotation_deg = scale = bias = noise = 0`` every case is the template itself.

    Returns:
        ``root``.

    Raises:
        ValueError: ``spacing`` < 1, ``n_subjects`` < 1 or a negative amplitude.

    Example:
        >>> folder = generate_mni152("/tmp/mni152", n_subjects=2, spacing=6.0)  # doctest: +SKIP
    """
    import nibabel as nib
    from scipy.ndimage import map_coordinates

    if not spacing >= 1.0:
        raise ValueError(f"MNI152 spacing must be >= 1 mm (the template's voxel size), got {spacing}")
    if int(n_subjects) < 1:
        raise ValueError(f"n_subjects must be >= 1, got {n_subjects}")
    if min(deformation_mm, rotation_deg, scale, bias, noise) < 0:
        raise ValueError("deformation_mm, rotation_deg, scale, bias and noise must be >= 0")
    maps, affine = _template_maps(float(spacing))
    full = np.array(maps["t1"].shape)
    shape = tuple(int(n) for n in np.floor(full / spacing).astype(int))
    offset = (spacing - 1.0) / 2.0  # centre of the first output voxel, in template voxels
    grid = np.stack(np.meshgrid(*[offset + spacing * np.arange(n) for n in shape], indexing="ij")).reshape(3, -1)
    out_affine = affine @ np.array(
        [[spacing, 0, 0, offset], [0, spacing, 0, offset], [0, 0, spacing, offset], [0, 0, 0, 1.0]]
    )
    centre = np.argwhere(maps["mask"] > 0.5).mean(0)[:, None]
    unit = (grid - centre) / (full[:, None] / 2.0)  # ~[-1, 1] over the field of view (bias field)
    control = tuple(int(np.ceil(n / _CONTROL_SPACING_MM)) + 1 for n in full)
    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    training = []
    for i in range(int(n_subjects)):
        angles = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, 3))
        s = rng.uniform(1.0 - scale, 1.0 + scale)
        coords = centre + s * _rotation(angles) @ (grid - centre)
        field = rng.normal(0.0, 1.0, (3,) + control) * deformation_mm
        if deformation_mm > 0:
            at = grid / _CONTROL_SPACING_MM
            coords = coords + np.stack([map_coordinates(f, at, order=3, mode="nearest") for f in field])
        warped = {
            k: map_coordinates(v, coords, order=1, mode="constant", cval=0.0).reshape(shape) for k, v in maps.items()
        }
        brain = warped["mask"] >= 0.5
        label = mni152_label_map(warped["gm"], warped["wm"], brain)
        gain = 1.0 + bias * (rng.normal(0.0, 1.0, 3) @ unit).reshape(shape) / np.sqrt(3.0)
        image = warped["t1"] * gain
        n = rng.standard_normal((2,) + shape) * noise
        image = np.hypot(image + n[0], n[1])
        image = np.where(brain, np.maximum(image, 1e-3), 0.0).astype(np.float32)  # brain = non-zero voxels
        name = f"mni152_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, out_affine), str(root / "imagesTr" / name))
        nib.save(nib.Nifti1Image(label, out_affine), str(root / "labelsTr" / name))
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "MNI152",
        "description": (
            "pseudo-subjects of the ICBM 2009a nonlinear symmetric MNI152 template (nilearn's wheel), "
            "randomly deformed (monai_genvq.data.mni152); labels: arg-max of CSF (residual), GM, WM probabilities"
        ),
        "reference": "Fonov et al., NeuroImage 2011; copyright McConnell Brain Imaging Centre (see data_license.txt)",
        "tensorImageSize": "3D",
        "modality": {"0": "T1"},
        "labels": {"0": "background", **{str(v): k for k, v in MNI152_LABELS.items()}},
        "spacing_mm": float(spacing),
        "numTraining": int(n_subjects),
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")
    return root


def ensure_mni152(root: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Return an MNI152 pseudo-subject Decathlon folder, generating it on first use (idempotent, atomic).

    Args:
        root: dataset folder; default ``<cache>/mni152_v1[-<hash>]`` (cache: ``$MONAI_GENVQ_CACHE`` or
            ``~/.cache/monai_genvq``; every parameter set has its own folder).
        kwargs: parameters of :func:`generate_mni152` (``n_subjects``, ``spacing``, ``seed``,
            ``deformation_mm``, ``rotation_deg``, ``scale``, ``bias``, ``noise``).

    Example:
        >>> folder = ensure_mni152(n_subjects=6, spacing=3.0)  # doctest: +SKIP
        >>> sorted(p.name for p in (folder / "labelsTr").iterdir())[:1]  # doctest: +SKIP
        ['mni152_000.nii.gz']
    """
    defaults = {
        "n_subjects": 40,
        "spacing": 3.0,
        "seed": 0,
        "deformation_mm": 3.0,
        "rotation_deg": 5.0,
        "scale": 0.05,
        "bias": 0.1,
        "noise": 0.02,
    }
    kwargs = {k: (float(v) if isinstance(defaults.get(k), float) else v) for k, v in kwargs.items()}
    try:
        return ensure_generated_dataset("mni152", GENERATOR_VERSION, defaults, kwargs, generate_mni152, root, "MNI152")
    finally:
        _template_maps.cache_clear()  # the 1 mm maps (~140 MB) are not kept in a training process


def mni152_records(dataset_dir: str | os.PathLike | None = None, **kwargs: Any) -> list[dict[str, str]]:
    """Records ``{"image", "label", "name"}`` of the ``training`` cases of a Decathlon-layout folder, in file order.

    Args:
        dataset_dir: a Decathlon-layout folder (``dataset.json``); empty / None -> :func:`ensure_mni152` with ``kwargs``.
        kwargs: parameters of :func:`generate_mni152` (only without ``dataset_dir``).

    Raises:
        FileNotFoundError: no ``dataset.json`` in ``dataset_dir``.

    Example:
        >>> mni152_records(n_subjects=6, spacing=3.0)[0]["name"]  # doctest: +SKIP
        'mni152_000'
    """
    from monai.data import load_decathlon_datalist

    root = Path(dataset_dir).expanduser() if dataset_dir else ensure_mni152(**kwargs)
    meta = root / "dataset.json"
    if not meta.is_file():
        raise FileNotFoundError(f"'{root}' has no dataset.json: not a Decathlon-layout folder")
    items = load_decathlon_datalist(str(meta), is_segmentation=True, data_list_key="training", base_dir=str(root))
    return [{**it, "name": Path(str(it["image"])).name.split(".")[0]} for it in items]
