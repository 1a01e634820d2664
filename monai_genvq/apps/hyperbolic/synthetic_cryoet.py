"""Synthetic cryo-electron tomograms in a SHREC'21-like layout (MRC via mrcfile).

Each tomogram holds vesicles (membranes: thin spherical shells), particles of three sizes, a
missing wedge (the Fourier components beyond a ±60° tilt range about the y axis are removed, which
smears densities along z), a low-pass contrast transfer and strong Gaussian noise (low SNR, as in
real tomograms). Written per model folder::

    model_{i}/reconstruction.mrc (float32, 10 Å voxels), class_mask.mrc (0 background, 1 membrane,
    2/3/4 small/medium/large particles), occupancy_mask.mrc (instance ids), particle_locations.txt
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from monai_genvq.data.mrc import write_mrc
from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = ["CRYOET_CLASSES", "generate_synthetic_tomogram", "generate_synthetic_cryoet", "ensure_synthetic_cryoet"]

GENERATOR_VERSION = 1
CRYOET_CLASSES = {0: "background", 1: "membrane", 2: "small particle", 3: "medium particle", 4: "large particle"}
_PARTICLE_RADII = {2: 2.0, 3: 3.5, 4: 5.0}


def _missing_wedge(vol: np.ndarray, max_tilt_deg: float = 60.0) -> np.ndarray:
    kz = np.fft.fftfreq(vol.shape[0])[:, None, None]
    kx = np.fft.fftfreq(vol.shape[2])[None, None, :]
    keep = np.abs(kz) <= np.tan(np.deg2rad(max_tilt_deg)) * np.abs(kx) + 1e-9
    keep = np.broadcast_to(keep, vol.shape)
    return np.real(np.fft.ifftn(np.fft.fftn(vol) * keep)).astype(np.float32)


def generate_synthetic_tomogram(rng: np.random.Generator, shape=(48, 96, 96), snr: float = 0.5):
    """One (z, y, x) tomogram, its class mask, instance mask and particle table."""
    shape = tuple(int(s) for s in shape)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype(np.float32)
    cls = np.zeros(shape, np.int8)
    occ = np.zeros(shape, np.int16)
    density = np.zeros(shape, np.float32)
    inst = 0
    table = []
    for _ in range(rng.integers(1, 3)):  # vesicles
        r = rng.uniform(10, 16)
        c = np.array([rng.uniform(r * 0.6, s - r * 0.6) for s in shape])
        d = np.linalg.norm(grid - c, axis=-1)
        shell = np.abs(d - r) <= 1.2
        inst += 1
        cls[shell], occ[shell] = 1, inst
        density[shell] = 1.0
        table.append((1, *c[::-1], 0.0, 0.0, 0.0))
    for _ in range(rng.integers(25, 40)):  # particles
        k = int(rng.integers(2, 5))
        r = _PARTICLE_RADII[k]
        for _ in range(30):
            c = np.array([rng.uniform(r + 1, s - r - 1) for s in shape])
            lo, hi = np.floor(c - r - 1).astype(int), np.ceil(c + r + 2).astype(int)
            box = tuple(slice(a, b) for a, b in zip(lo, hi))
            if not cls[box].any():
                break
        else:
            continue
        d = np.linalg.norm(grid[box] - c, axis=-1)
        inside = d <= r
        inst += 1
        cls[box][inside], occ[box][inside] = k, inst
        # a little internal structure (a denser core) so sizes differ in texture too
        density[box][inside] = np.where(d[inside] < r / 2, 1.2, 0.8)
        table.append((k, *c[::-1], *rng.uniform(0, 360, 3)))
    signal = ndimage.gaussian_filter(_missing_wedge(density), 0.8)
    noise = rng.normal(scale=signal.std() / np.sqrt(snr), size=shape).astype(np.float32)
    return (signal + noise).astype(np.float32), cls, occ, table


def generate_synthetic_cryoet(
    root: str | os.PathLike, n_tomograms: int = 3, shape=(48, 96, 96), snr: float = 0.5, seed: int = 0
) -> Path:
    """Write ``n_tomograms`` synthetic models into ``root`` (see the module docstring)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for i in range(n_tomograms):
        folder = root / f"model_{i}"
        folder.mkdir(parents=True, exist_ok=True)
        tomo, cls, occ, table = generate_synthetic_tomogram(rng, shape, snr)
        write_mrc(folder / "reconstruction.mrc", tomo, voxel_size=10.0)
        write_mrc(folder / "class_mask.mrc", cls, voxel_size=10.0)
        write_mrc(folder / "occupancy_mask.mrc", occ, voxel_size=10.0)
        lines = [
            f"{CRYOET_CLASSES[k].replace(' ', '_')} {x:.1f} {y:.1f} {z:.1f} {a:.1f} {b:.1f} {g:.1f}"
            for k, x, y, z, a, b, g in table
        ]
        (folder / "particle_locations.txt").write_text("\n".join(lines) + "\n")
    return root


def ensure_synthetic_cryoet(cache_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """The synthetic tomogram folder, generated on first use into ``$MONAI_GENVQ_CACHE`` (atomic, idempotent)."""
    defaults = {"n_tomograms": 3, "shape": [48, 96, 96], "snr": 0.5, "seed": 0}
    return ensure_generated_dataset(
        "synthetic_cryoet",
        GENERATOR_VERSION,
        defaults,
        kwargs,
        generate_synthetic_cryoet,
        cache_dir,
        "synthetic cryo-ET",
    )
