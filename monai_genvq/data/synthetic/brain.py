"""A small 3-D brain-like label/intensity phantom (for the 3-D anatomical-prior configuration).

Each volume holds a head of background (0), ventricles (1, CSF: two lateral lobes), cortical
grey matter (2, an outer shell of varying thickness with sulcus-like folds) and white matter (3,
the inside), with subject-wise size, shape, ventricle enlargement and a small pose change, and
a T1-like image (CSF dark, GM intermediate, WM bright) with a smooth bias field, partial-volume
blur and Rician noise. Intensity classes overlap enough that intensity alone mislabels the
GM/CSF border, while shape resolves it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BRAIN_LABELS", "render_brain_phantom"]

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
