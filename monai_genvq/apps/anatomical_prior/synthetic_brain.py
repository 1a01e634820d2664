"""A small 3-D brain-like label/intensity phantom (for the 3-D anatomical-prior configuration).

Each volume holds a head of background (0), ventricles (1, CSF: two lateral lobes), cortical
grey matter (2, an outer shell of varying thickness with sulcus-like folds) and white matter (3,
the inside), with subject-wise size, shape, ventricle enlargement and a small pose change, and
a T1-like image (CSF dark, GM intermediate, WM bright) with a smooth bias field, partial-volume
blur and Rician noise. Intensity classes overlap enough that intensity alone mislabels the
GM/CSF border, while shape resolves it.

A second contrast of the same heads, T2-FLAIR-like (CSF suppressed to the background's level, GM
brighter than WM, as in the seed's cross-modality experiment: prior from T1w label maps, image
model on T2-FLAIR), is rendered from the same label map with its own bias field and noise
(``flair_rng``); the T1 images are unchanged by it (bit-identical to generator version 1).

:func:`generate_synthetic_brain` writes a set of subjects in the Medical Segmentation Decathlon
layout (``imagesTr/``, ``labelsTr/`` NIfTI files and ``dataset.json``), each head placed at a
random offset in a larger field of view, so MONAI's ``load_decathlon_datalist`` + ``LoadImaged``
read it as they read a real dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = [
    "BRAIN_CONTRASTS",
    "BRAIN_LABELS",
    "ensure_synthetic_brain",
    "generate_synthetic_brain",
    "render_brain_phantom",
]

GENERATOR_VERSION = 2  # 2: adds the FLAIR contrast (imagesTr_flair/); the T1 images are those of version 1

BRAIN_LABELS: dict[str, int] = {"CSF": 1, "GM": 2, "WM": 3}

BRAIN_CONTRASTS: dict[str, tuple[float, float, float, float]] = {
    "T1": (0.05, 0.25, 0.55, 0.85),
    "FLAIR": (0.05, 0.08, 0.70, 0.50),
}
"""Mean intensity of background, CSF, GM, WM per contrast (before jitter, bias field and noise).
T1: CSF dark, WM brightest. FLAIR: the fluid signal is nulled (CSF at the background's level) and GM
is brighter than WM, the ordering of a T2-FLAIR brain scan."""


def _render_contrast(
    label: np.ndarray, grids: tuple[np.ndarray, ...], rng: np.random.Generator, means: Sequence[float], noise: float
) -> np.ndarray:
    """Intensities of one contrast: jittered class means, partial-volume blur, linear bias field, Rician noise."""
    from scipy.ndimage import gaussian_filter

    X, Y, Z = grids
    m = np.asarray(means) + rng.normal(0, 0.02, 4)
    image = gaussian_filter(m[label].astype(np.float32), 0.6)
    bias = 1 + 0.15 * (X * rng.normal() + Y * rng.normal() + Z * rng.normal()) / 1.7
    image = image * bias.astype(np.float32)
    n = rng.standard_normal((2,) + image.shape).astype(np.float32) * noise
    return np.hypot(image + n[0], n[1]).astype(np.float32)


def render_brain_phantom(
    rng: np.random.Generator, size: int = 32, noise: float = 0.06, flair_rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """Render one subject: ``image`` (size,)*3 float32 T1-like in ~[0, 1] and ``label`` (size,)*3 uint8 (0 bg, 1 CSF, 2 GM, 3 WM).

    Args:
        rng: draws the anatomy and the T1 image.
        size: edge length in voxels.
        noise: Rician noise standard deviation of every contrast.
        flair_rng: when given, also ``image_flair``: the same head in the FLAIR contrast
            (:data:`BRAIN_CONTRASTS`), its jitter, bias field and noise drawn from this generator, so
            ``image`` and ``label`` do not depend on it.

    Example:
        >>> case = render_brain_phantom(np.random.default_rng(0), size=16, flair_rng=np.random.default_rng(1))
        >>> case["image"].shape, case["image_flair"].shape, sorted(np.unique(case["label"]).tolist())
        ((16, 16, 16), (16, 16, 16), [0, 1, 2, 3])
    """
    g = (np.arange(size) - (size - 1) / 2) / (size / 2)
    X, Y, Z = np.meshgrid(g, g, g, indexing="ij")
    a = np.deg2rad(rng.normal(0, 6))
    Xr, Yr = np.cos(a) * X - np.sin(a) * Y, np.sin(a) * X + np.cos(a) * Y
    Xr, Yr, Zr = Xr - rng.normal(0, 0.03), Yr - rng.normal(0, 0.03), Z - rng.normal(0, 0.03)
    radii = np.array([0.78, 0.92, 0.72]) * rng.uniform(0.88, 1.05, 3)
    r = np.sqrt((Xr / radii[0]) ** 2 + (Yr / radii[1]) ** 2 + (Zr / radii[2]) ** 2)
    theta, phi = np.arctan2(Yr, Xr), np.arctan2(Zr, np.hypot(Xr, Yr))
    folds = 0.04 * np.sin(rng.integers(5, 9) * theta + rng.uniform(0, 6)) * np.cos(rng.integers(3, 6) * phi)
    thickness = rng.uniform(0.16, 0.26)
    label = np.zeros(X.shape, np.uint8)
    label[r < 1.0] = 2
    label[r + folds < 1.0 - thickness] = 3
    vent = rng.uniform(0.8, 1.5)  # ventricle enlargement
    for side in (-1, 1):
        c = np.array([side * 0.16, 0.05, 0.08]) + rng.normal(0, 0.02, 3)
        ax = np.array([0.09, 0.32, 0.12]) * vent
        rv = np.sqrt(((Xr - c[0]) / ax[0]) ** 2 + ((Yr - c[1]) / ax[1]) ** 2 + ((Zr - c[2]) / ax[2]) ** 2)
        label[rv < 1.0] = 1
    case = {"image": _render_contrast(label, (X, Y, Z), rng, BRAIN_CONTRASTS["T1"], noise), "label": label}
    if flair_rng is not None:
        case["image_flair"] = _render_contrast(label, (X, Y, Z), flair_rng, BRAIN_CONTRASTS["FLAIR"], noise)
    return case


def generate_synthetic_brain(
    root: str | os.PathLike, n_subjects: int = 80, size: int = 32, fov: int = 40, spacing: float = 1.5, seed: int = 0
) -> Path:
    """Write ``n_subjects`` brain phantoms in the Decathlon layout under ``root``.

    Each head (:func:`render_brain_phantom`, ``size``³ voxels) is placed at a random offset in a
    ``fov``³ volume of background; files ``imagesTr/brain_NNN.nii.gz`` (float32 T1-like) and
    ``labelsTr/brain_NNN.nii.gz`` (uint8, 0 bg, 1 CSF, 2 GM, 3 WM), spacing ``spacing`` mm, the same
    heads in the FLAIR contrast as ``imagesTr_flair/brain_NNN.nii.gz`` (drawn from a second generator
    seeded ``[seed, 1]``, so the T1 files do not depend on it), and a ``dataset.json`` listing them
    under ``"training"`` (keys ``image``, ``image_flair``, ``label``; the consumer splits subjects).

    Returns:
        ``root``.
    """
    import nibabel as nib

    if fov < size:
        raise ValueError(f"fov ({fov}) must be at least the head size ({size})")
    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    (root / "imagesTr_flair").mkdir(parents=True, exist_ok=True)
    rng, flair_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    affine = np.diag([spacing, spacing, spacing, 1.0])
    training = []
    for i in range(n_subjects):
        case = render_brain_phantom(rng, size, flair_rng=flair_rng)
        image = np.abs(rng.standard_normal((fov,) * 3)).astype(np.float32) * 0.06  # Rician-like background
        flair = np.abs(flair_rng.standard_normal((fov,) * 3)).astype(np.float32) * 0.06
        label = np.zeros((fov,) * 3, np.uint8)
        o = rng.integers(0, fov - size + 1, 3)
        sl = tuple(slice(int(a), int(a) + size) for a in o)
        image[sl], flair[sl], label[sl] = case["image"], case["image_flair"], case["label"]
        name = f"brain_{i + 1:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, affine), str(root / "imagesTr" / name))
        nib.save(nib.Nifti1Image(flair, affine), str(root / "imagesTr_flair" / name))
        nib.save(nib.Nifti1Image(label, affine), str(root / "labelsTr" / name))
        training.append(
            {"image": f"./imagesTr/{name}", "image_flair": f"./imagesTr_flair/{name}", "label": f"./labelsTr/{name}"}
        )
    meta = {
        "name": "SyntheticBrain",
        "description": "brain-like phantom (monai_genvq.apps.anatomical_prior.synthetic_brain), Decathlon layout",
        "tensorImageSize": "3D",
        "modality": {"0": "T1"},
        "contrasts": {"image": "T1", "image_flair": "FLAIR"},
        "labels": {"0": "background", **{str(v): k for k, v in BRAIN_LABELS.items()}},
        "numTraining": n_subjects,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")
    return root


def ensure_synthetic_brain(root: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """Return a brain-phantom Decathlon-layout folder, generating it on first use (idempotent, atomic).

    Args:
        root: dataset folder; default ``<cache>/synthetic_brain_v2[-<hash>]`` (cache: ``$MONAI_GENVQ_CACHE``
            or ``~/.cache/monai_genvq``).
        kwargs: parameters of :func:`generate_synthetic_brain` (``n_subjects``, ``size``, ``fov``, ``spacing``, ``seed``).

    Example:
        >>> folder = ensure_synthetic_brain(n_subjects=4, size=16, fov=20)  # doctest: +SKIP
    """
    defaults = {"n_subjects": 80, "size": 32, "fov": 40, "spacing": 1.5, "seed": 0}
    return ensure_generated_dataset(
        "synthetic_brain", GENERATOR_VERSION, defaults, kwargs, generate_synthetic_brain, root, "synthetic brain"
    )
