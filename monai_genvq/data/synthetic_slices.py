"""Synthetic 2-D short-axis-like cardiac slices written as NIfTI files (a stand-in until the ACDC phantom lands).

Each slice shows a body outline with soft-tissue texture, the left-ventricular blood pool inside a
myocardial ring (irregular, elliptical, with papillary muscles), a right-ventricular crescent,
epicardial fat, a smooth coil bias field, partial-volume blur and Rician noise. Shapes, sizes,
positions, contrasts and noise vary per slice, so an autoencoder must learn real structure.

Layout written (the one :func:`monai_genvq.data.discover_slices` reads)::

    <folder>/{train,validation,test}/slice_XXXX.nii.gz     2-D float32, intensities ~[0, 1]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from monai_genvq.utils.dataset_cache import default_cache_root, materialize_dataset, params_digest

__all__ = ["synthetic_cardiac_slice", "generate_synthetic_slices", "ensure_synthetic_slices", "SLICE_SPLITS"]

GENERATOR_VERSION = 1
SLICE_SPLITS = ("train", "validation", "test")
_DEFAULT_COUNTS = {"train": 600, "validation": 100, "test": 100}


def _radial_profile(theta: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """1 + a smooth random Fourier perturbation of the radius (orders 2–4)."""
    out = np.ones_like(theta)
    for order in (2, 3, 4):
        out += amplitude / order * rng.normal() * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    return out


def synthetic_cardiac_slice(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One (size, size) float32 short-axis-like slice with intensities roughly in [0, 1].

    Example:
        >>> synthetic_cardiac_slice(np.random.default_rng(0)).shape
        (64, 64)
    """
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    img = np.zeros((size, size))

    # body: a rotated ellipse of textured soft tissue
    rot = rng.uniform(-0.4, 0.4)
    bx, by = xx * np.cos(rot) + yy * np.sin(rot), -xx * np.sin(rot) + yy * np.cos(rot)
    body = (bx / rng.uniform(0.8, 0.97)) ** 2 + (by / rng.uniform(0.6, 0.85)) ** 2 < 1
    texture = ndimage.gaussian_filter(rng.normal(size=(size, size)), rng.uniform(1.5, 3.0))
    texture /= texture.std() + 1e-8
    img[body] = rng.uniform(0.25, 0.4) + 0.05 * texture[body]

    # left ventricle: irregular elliptical blood pool inside a myocardial ring
    cx, cy = rng.normal(0.0, 0.1, size=2)
    ang = rng.uniform(0, np.pi)
    ex = rng.uniform(0.85, 1.15)
    dx, dy = xx - cx, yy - cy
    u, v = (dx * np.cos(ang) + dy * np.sin(ang)) / ex, (-dx * np.sin(ang) + dy * np.cos(ang)) * ex
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    r_endo = rng.uniform(0.12, 0.26) * _radial_profile(theta, rng, 0.12)
    r_epi = r_endo + rng.uniform(0.06, 0.13) * _radial_profile(theta, rng, 0.2)
    myo_level = rng.uniform(0.12, 0.25)
    pool_level = rng.uniform(0.75, 0.95)
    img[r < r_epi] = myo_level
    img[r < r_endo] = pool_level

    # papillary muscles: small dark dots just inside the endocardium
    for _ in range(rng.integers(0, 3)):
        phi = rng.uniform(0, 2 * np.pi)
        rad = rng.uniform(0.55, 0.8) * float(np.mean(r_endo))
        px, py = cx + rad * np.cos(phi), cy + rad * np.sin(phi)
        img[np.hypot(xx - px, yy - py) < rng.uniform(0.025, 0.05)] = myo_level

    # right ventricle: a crescent on one side, outside the epicardium
    rv_dir = rng.uniform(0.6, 1.2) * np.pi + ang * 0.2
    rv_off = float(np.mean(r_epi)) * rng.uniform(0.5, 0.9)
    rv_r = float(np.mean(r_epi)) * rng.uniform(1.0, 1.5)
    rv = (np.hypot(xx - cx - rv_off * np.cos(rv_dir), yy - cy - rv_off * np.sin(rv_dir)) < rv_r) & (r > r_epi + 0.03)
    img[rv & body] = pool_level * rng.uniform(0.8, 1.0)
    rv_wall = ndimage.binary_dilation(rv, iterations=1) & ~rv & (r > r_epi)
    img[rv_wall & body] = myo_level

    # epicardial fat: a few bright blobs hugging the heart
    heart = ndimage.binary_dilation((r < r_epi) | rv, iterations=2)
    for _ in range(rng.integers(1, 4)):
        phi = rng.uniform(0, 2 * np.pi)
        rad = float(np.mean(r_epi)) + 0.05
        fx, fy = cx + rad * np.cos(phi), cy + rad * np.sin(phi)
        blob = (np.hypot(xx - fx, yy - fy) < rng.uniform(0.03, 0.07)) & ~((r < r_epi) | rv) & body
        img[blob & heart] = rng.uniform(0.85, 1.0)

    # acquisition: partial volume blur, coil bias field, Rician noise
    img = ndimage.gaussian_filter(img, rng.uniform(0.5, 0.9))
    gx, gy = rng.normal(0, 0.15, size=2)
    img *= 1.0 + gx * xx + gy * yy
    sigma = rng.uniform(0.01, 0.04)
    img = np.hypot(img + rng.normal(0, sigma, img.shape), rng.normal(0, sigma, img.shape))
    return np.clip(img, 0.0, 1.2).astype(np.float32)


def generate_synthetic_slices(
    folder: str | os.PathLike, counts: Mapping[str, int] | None = None, size: int = 64, seed: int = 0
) -> Path:
    """Write ``counts[split]`` slices per split as ``<folder>/<split>/slice_XXXX.nii.gz`` (1 mm pixels).

    Args:
        folder: output folder (created).
        counts: slices per split (default 600 / 100 / 100 for train / validation / test).
        size: slice width and height in pixels.
        seed: random seed; each split has its own stream so adding slices to one does not change the others.
    """
    folder = Path(folder)
    counts = dict(_DEFAULT_COUNTS if counts is None else counts)
    unknown = set(counts) - set(SLICE_SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; use {SLICE_SPLITS}")
    for i, split in enumerate(SLICE_SPLITS):
        n = int(counts.get(split, 0))
        if n == 0:
            continue
        out = folder / split
        out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, i])
        for k in range(n):
            nib.save(nib.Nifti1Image(synthetic_cardiac_slice(rng, size), np.eye(4)), out / f"slice_{k:04d}.nii.gz")
    return folder


def ensure_synthetic_slices(
    cache_dir: str | os.PathLike | None = None, counts: Mapping[str, int] | None = None, size: int = 64, seed: int = 0
) -> Path:
    """Return the synthetic slice folder, generating it once (atomically) in the cache.

    Args:
        cache_dir: target folder; default ``<cache root>/synthetic_cardiac_slices_v1[-<hash>]`` where the
            cache root is ``$MONAI_GENVQ_CACHE`` or ``~/.cache/monai_genvq``.
        counts, size, seed: see :func:`generate_synthetic_slices`.

    Example:
        >>> folder = ensure_synthetic_slices(counts={"train": 8, "validation": 2})  # doctest: +SKIP
    """
    counts = dict(_DEFAULT_COUNTS if counts is None else counts)
    params = {
        "generator": "synthetic_cardiac_slices",
        "version": GENERATOR_VERSION,
        "counts": counts,
        "size": size,
        "seed": seed,
    }
    if cache_dir is None:
        default = counts == _DEFAULT_COUNTS and size == 64 and seed == 0
        suffix = "" if default else f"-{params_digest(params)}"
        cache_dir = default_cache_root() / f"synthetic_cardiac_slices_v{GENERATOR_VERSION}{suffix}"
    return materialize_dataset(cache_dir, params, lambda f: generate_synthetic_slices(f, counts, size, seed))
