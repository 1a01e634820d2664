"""Synthetic BraTS cases written in the 2021 (or 2023) layout, so the real loader runs on them.

A head-like ellipsoid holds white matter, a cortical grey-matter shell and ventricles (CSF); a
tumour is an enhancing ring around a necrotic core inside an irregular oedema. Each modality has
the tissue contrasts of its sequence (FLAIR: oedema bright, CSF dark; T1ce: enhancing ring bright;
T2: CSF and oedema bright; T1: CSF dark), plus a smooth bias field and Rician-like noise. The
volume is smaller than real BraTS (default 96×96×64 at 2 mm) so CPU runs stay short.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from monai_genvq.apps.hyperbolic.brats import BRATS_LABEL_MAPS, BRATS_LAYOUTS
from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = ["generate_synthetic_brats", "ensure_synthetic_brats"]

GENERATOR_VERSION = 1
# tissue intensities per modality: background, WM, GM, CSF, oedema, enhancing, necrotic
_CONTRAST = {
    "flair": (0.0, 0.45, 0.55, 0.08, 0.95, 0.75, 0.45),
    "t1": (0.0, 0.80, 0.60, 0.20, 0.50, 0.55, 0.30),
    "t1ce": (0.0, 0.80, 0.60, 0.20, 0.50, 1.00, 0.30),
    "t2": (0.0, 0.40, 0.55, 1.00, 0.85, 0.60, 0.90),
}
_2023_NAMES = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w"}


def _case(rng: np.random.Generator, shape: tuple[int, int, int]):
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"), -1)
    head = ((grid / [0.85, 0.9, 0.85]) ** 2).sum(-1)
    tissue = np.zeros(shape, np.uint8)
    tissue[head <= 1] = 2  # GM
    tissue[head <= 0.72] = 1  # WM
    vent = ((grid - [0, 0.05, 0.1]) / [0.12, 0.3, 0.18]) ** 2
    tissue[(vent.sum(-1) <= 1) & (np.abs(grid[..., 0]) > 0.03)] = 3
    # tumour: irregular oedema, enhancing ring, necrotic core
    ctr = rng.uniform([-0.45, -0.45, -0.3], [0.45, 0.45, 0.3]) * [1, 1, 1]
    r = rng.uniform(0.14, 0.22)
    d = np.sqrt((((grid - ctr) / [1, 1, 1]) ** 2).sum(-1))
    wobble = ndimage.gaussian_filter(rng.normal(size=shape), 4) * 6
    seg = np.zeros(shape, np.uint8)
    oedema = (d <= r * rng.uniform(1.7, 2.3) + 0.08 * wobble) & (head <= 0.9)
    seg[oedema] = 2
    seg[(d <= r) & (head <= 0.9)] = 4
    seg[d <= r * rng.uniform(0.45, 0.65)] = 1
    return tissue, seg


def generate_synthetic_brats(
    root: str | os.PathLike,
    n_cases: int = 6,
    shape=(96, 96, 64),
    spacing: float = 2.0,
    layout: str = "2021",
    seed: int = 0,
) -> Path:
    """Write ``n_cases`` synthetic cases into ``root`` in the given BraTS layout."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    lm = BRATS_LABEL_MAPS[layout]
    sep = BRATS_LAYOUTS[layout]["sep"]
    for i in range(n_cases):
        name = f"BraTS2021_{i:05d}" if layout == "2021" else f"BraTS-GLI-{i:05d}-000"
        case = root / name
        case.mkdir(parents=True, exist_ok=True)
        tissue, seg = _case(rng, shape)
        bias = np.exp(ndimage.gaussian_filter(rng.normal(size=shape), 12) * 8)
        classes = np.where(seg == 2, 4, np.where(seg == 4, 5, np.where(seg == 1, 6, tissue)))
        for mod, contrast in _CONTRAST.items():
            img = np.asarray(contrast, np.float32)[classes]
            img = ndimage.gaussian_filter(img, 0.7) * bias
            noise = rng.normal(scale=0.05, size=shape) + 1j * rng.normal(scale=0.05, size=shape)
            img = np.abs(img + noise).astype(np.float32) * (tissue > 0)
            suffix = mod if layout == "2021" else _2023_NAMES[mod]
            nib.save(nib.Nifti1Image(img * 1000, affine), case / f"{name}{sep}{suffix}.nii.gz")
        out = np.zeros_like(seg)
        out[seg == 1], out[seg == 2], out[seg == 4] = lm["necrotic"], lm["edema"], lm["enhancing"]
        nib.save(nib.Nifti1Image(out, affine), case / f"{name}{sep}seg.nii.gz")
    return root


def ensure_synthetic_brats(cache_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """The synthetic BraTS folder, generated on first use into ``$MONAI_GENVQ_CACHE`` (atomic, idempotent)."""
    defaults = {"n_cases": 6, "shape": [96, 96, 64], "spacing": 2.0, "layout": "2021", "seed": 0}
    return ensure_generated_dataset(
        "synthetic_brats", GENERATOR_VERSION, defaults, kwargs, generate_synthetic_brats, cache_dir, "synthetic BraTS"
    )
