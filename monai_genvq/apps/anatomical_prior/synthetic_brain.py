"""A small 3-D brain-like label/intensity phantom (for the 3-D anatomical-prior configuration).

Each volume holds a head of background (0), ventricles (1, CSF: two lateral lobes), cortical
grey matter (2, an outer shell of varying thickness with sulcus-like folds) and white matter (3,
the inside), with subject-wise size, shape, ventricle enlargement and a small pose change, and
a T1-like image (CSF dark, GM intermediate, WM bright) with a smooth bias field, partial-volume
blur and Rician noise. Intensity classes overlap enough that intensity alone mislabels the
GM/CSF border, while shape resolves it.

:func:`generate_synthetic_brain` writes a set of subjects in the Medical Segmentation Decathlon
layout (``imagesTr/``, ``labelsTr/`` NIfTI files and ``dataset.json``), each head placed at a
random offset in a larger field of view, so MONAI's ``load_decathlon_datalist`` + ``LoadImaged``
read it as they read a real dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = ["BRAIN_LABELS", "ensure_synthetic_brain", "generate_synthetic_brain", "render_brain_phantom"]

GENERATOR_VERSION = 1

BRAIN_LABELS: dict[str, int] = {"CSF": 1, "GM": 2, "WM": 3}


def render_brain_phantom(rng: np.random.Generator, size: int = 32, noise: float = 0.06) -> dict[str, np.ndarray]:
    """Render one subject: ``image`` (size,)*3 float32 in ~[0, 1] and ``label`` (size,)*3 uint8 (0 bg, 1 CSF, 2 GM, 3 WM).

    Example:
        >>> case = render_brain_phantom(np.random.default_rng(0), size=16)
        >>> case["image"].shape, sorted(np.unique(case["label"]).tolist())
        ((16, 16, 16), [0, 1, 2, 3])
    """
    from scipy.ndimage import gaussian_filter

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
    means = np.array([0.05, 0.25, 0.55, 0.85]) + rng.normal(0, 0.02, 4)
    image = gaussian_filter(means[label].astype(np.float32), 0.6)
    bias = 1 + 0.15 * (X * rng.normal() + Y * rng.normal() + Z * rng.normal()) / 1.7
    image = image * bias.astype(np.float32)
    n = rng.standard_normal((2,) + image.shape).astype(np.float32) * noise
    image = np.hypot(image + n[0], n[1]).astype(np.float32)
    return {"image": image, "label": label}


def generate_synthetic_brain(
    root: str | os.PathLike, n_subjects: int = 80, size: int = 32, fov: int = 40, spacing: float = 1.5, seed: int = 0
) -> Path:
    """Write ``n_subjects`` brain phantoms in the Decathlon layout under ``root``.

    Each head (:func:`render_brain_phantom`, ``size``³ voxels) is placed at a random offset in a
    ``fov``³ volume of background; files ``imagesTr/brain_NNN.nii.gz`` (float32 T1-like) and
    ``labelsTr/brain_NNN.nii.gz`` (uint8, 0 bg, 1 CSF, 2 GM, 3 WM), spacing ``spacing`` mm, and a
    ``dataset.json`` listing them under ``"training"`` (the consumer splits subjects).

    Returns:
        ``root``.
    """
    import nibabel as nib

    if fov < size:
        raise ValueError(f"fov ({fov}) must be at least the head size ({size})")
    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    training = []
    for i in range(n_subjects):
        case = render_brain_phantom(rng, size)
        image = np.abs(rng.standard_normal((fov,) * 3)).astype(np.float32) * 0.06  # Rician-like background
        label = np.zeros((fov,) * 3, np.uint8)
        o = rng.integers(0, fov - size + 1, 3)
        sl = tuple(slice(int(a), int(a) + size) for a in o)
        image[sl], label[sl] = case["image"], case["label"]
        name = f"brain_{i + 1:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, affine), str(root / "imagesTr" / name))
        nib.save(nib.Nifti1Image(label, affine), str(root / "labelsTr" / name))
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "SyntheticBrain",
        "description": "brain-like phantom (monai_genvq.apps.anatomical_prior.synthetic_brain), Decathlon layout",
        "tensorImageSize": "3D",
        "modality": {"0": "T1"},
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
        root: dataset folder; default ``<cache>/synthetic_brain_v1[-<hash>]`` (cache: ``$MONAI_GENVQ_CACHE``
            or ``~/.cache/monai_genvq``).
        kwargs: parameters of :func:`generate_synthetic_brain` (``n_subjects``, ``size``, ``fov``, ``spacing``, ``seed``).

    Example:
        >>> folder = ensure_synthetic_brain(n_subjects=4, size=16, fov=20)  # doctest: +SKIP
    """
    defaults = {"n_subjects": 80, "size": 32, "fov": 40, "spacing": 1.5, "seed": 0}
    return ensure_generated_dataset(
        "synthetic_brain", GENERATOR_VERSION, defaults, kwargs, generate_synthetic_brain, root, "synthetic brain"
    )
