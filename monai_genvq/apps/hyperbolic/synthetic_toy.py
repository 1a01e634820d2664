"""A hierarchical toy set after Hsu et al. 2021's biologically inspired volumes, written as NIfTI.

Each 50³ volume holds "cells" (level 1: object vs background), each containing organelles of two
types that have the same mean intensity and differ only in texture (level 2: background, cytoplasm,
organelle A, organelle B), each organelle holding a bright and a dark inclusion whose intensities
are the same in A and B, so telling an A-inclusion from a B-inclusion needs the context (level 3:
8 classes). Smooth background shading, partial-volume blur and Gaussian noise are added. The noise
(σ = 0.15, against a contrast of 0.35 between background and cytoplasm) is set so that no level can
be recovered by thresholding voxel intensities: k-means on the raw intensities of the default test
volumes scores Dice 0.78 / 0.32 / 0.17 at levels 1 / 2 / 3 (with σ = 0.08, generator version 2, it
scored 0.97 / 0.50 / 0.23, above the seed paper's learnt 0.952 at level 1). Features that pool a
neighbourhood are needed: the same k-means on Gaussian-smoothed (σ = 1 voxel) intensities scores
0.99 / 0.62 / 0.28 (`intensity.json`).

Layout (MSD-like; one loader reads generated and user copies alike)::

    <root>/imagesTr/toy_000.nii.gz, labelsTr/toy_000_level{1,2,3}.nii.gz, imagesTs/…, labelsTs/…, dataset.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = [
    "LEVEL_CLASSES",
    "generate_hierarchy_volume",
    "generate_hierarchy_toy",
    "ensure_hierarchy_toy",
    "discover_hierarchy_toy",
]

GENERATOR_VERSION = 3
LEVEL_CLASSES = {1: 2, 2: 4, 3: 8}
"""Number of classes (background included) at each hierarchy level."""

# level-3 class -> (level-2, level-1) class
_PARENT = {0: (0, 0), 1: (1, 1), 2: (2, 1), 3: (3, 1), 4: (2, 1), 5: (2, 1), 6: (3, 1), 7: (3, 1)}


def _ball(shape, centre, radii, rot=None):
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype(np.float32) - centre
    if rot is not None:
        grid = grid @ rot.T
    return ((grid / radii) ** 2).sum(-1) <= 1.0


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q.astype(np.float32)


def generate_hierarchy_volume(
    rng: np.random.Generator, size: int = 50, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """One volume and its level-3 label map (levels 1 and 2 follow by merging, see ``_PARENT``)."""
    shape = (size,) * 3
    lab = np.zeros(shape, np.uint8)
    img = np.zeros(shape, np.float32)
    coords = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1).astype(np.float32)
    n_cells = rng.integers(1, 3)
    for _ in range(n_cells):
        r = rng.uniform(0.26, 0.34, 3) * size
        centre = rng.uniform(r.max() * 0.85, size - r.max() * 0.85, 3)
        cell = _ball(shape, centre, r, _rotation(rng))
        lab[cell & (lab == 0)] = 1
        # one organelle of each type, on opposite sides of the centre: both always fit, never overlap
        ro = 0.45 * r.min()
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        for kind, side in zip(rng.permutation([2, 3]), (1.0, -1.0)):
            oc = centre + side * u * 0.5 * r.min()
            org = _ball(shape, oc, np.full(3, ro)) & (lab == 1)
            lab[org] = kind
            # a bright and a dark inclusion inside the organelle, also on opposite sides
            v = rng.normal(size=3)
            v /= np.linalg.norm(v)
            for inc_kind, off in ((4 if kind == 2 else 6, 1.0), (5 if kind == 2 else 7, -1.0)):
                ic = oc + off * v * 0.45 * ro
                lab[_ball(shape, ic, np.full(3, 0.38 * ro)) & (lab == kind)] = inc_kind
    # intensities and textures
    shade = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 8) * 4.0
    img += 0.1 + 0.05 * shade
    fine = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 0.8) * 2.5
    img[lab == 1] = 0.45 + 0.06 * fine[lab == 1]
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    stripes = np.sin(2 * np.pi * (coords @ axis) / 4.0)
    a_mask = np.isin(lab, (2, 4, 5))
    img[a_mask] = 0.7 + 0.15 * stripes[a_mask]
    blobs = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 1.5)
    blobs = np.sign(blobs) * 0.15
    b_mask = np.isin(lab, (3, 6, 7))
    img[b_mask] = 0.7 + blobs[b_mask]
    img[np.isin(lab, (4, 6))] = 1.05
    img[np.isin(lab, (5, 7))] = 0.3
    img = ndimage.gaussian_filter(img, 0.6) + rng.normal(scale=noise, size=shape).astype(np.float32)
    return img.astype(np.float32), lab


def level_map(level3: np.ndarray, level: int) -> np.ndarray:
    """Level-3 labels -> labels of ``level`` (1, 2 or 3)."""
    if level == 3:
        return level3.astype(np.uint8)
    lut = np.array([_PARENT[i][2 - level] for i in range(8)], np.uint8)
    return lut[level3]


def generate_hierarchy_toy(
    root: str | os.PathLike, n_train: int = 8, n_test: int = 4, size: int = 50, seed: int = 0, noise: float = 0.15
) -> Path:
    """Write the toy set into ``root`` (see the module docstring for the layout; ``noise``: Gaussian σ)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    for split, n in (("Tr", n_train), ("Ts", n_test)):
        (root / f"images{split}").mkdir(parents=True, exist_ok=True)
        (root / f"labels{split}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, lab3 = generate_hierarchy_volume(rng, size, noise)
            name = f"toy_{split.lower()}{i:03d}"
            nib.save(nib.Nifti1Image(img, affine), root / f"images{split}" / f"{name}.nii.gz")
            for level in (1, 2, 3):
                nib.save(
                    nib.Nifti1Image(level_map(lab3, level), affine),
                    root / f"labels{split}" / f"{name}_level{level}.nii.gz",
                )
    meta = {
        "name": "monai_genvq hierarchical toy",
        "levels": {str(k): v for k, v in LEVEL_CLASSES.items()},
        "level3_to_level2_level1": {str(k): v for k, v in _PARENT.items()},
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root


def ensure_hierarchy_toy(cache_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """The toy set's folder, generated on first use into ``$MONAI_GENVQ_CACHE`` (atomic, idempotent).

    Example:
        >>> records = discover_hierarchy_toy(ensure_hierarchy_toy(), "train")  # doctest: +SKIP
    """
    defaults = {"n_train": 8, "n_test": 4, "size": 50, "seed": 0, "noise": 0.15}
    return ensure_generated_dataset(
        "hierarchy_toy", GENERATOR_VERSION, defaults, kwargs, generate_hierarchy_toy, cache_dir, "toy dataset"
    )


def discover_hierarchy_toy(dataset_dir: str | os.PathLike, split: str = "train", levels=(1, 2, 3)) -> list[dict]:
    """Records ``{"image", "label_level1", …, "name"}`` of a toy-layout folder (``split``: "train" or "test").

    Raises:
        FileNotFoundError: folder, images or a level's label file missing (the message names it).
    """
    root = Path(dataset_dir).expanduser()
    tag = {"train": "Tr", "test": "Ts"}.get(split)
    if tag is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = sorted((root / f"images{tag}").glob("*.nii*"))
    if not images:
        raise FileNotFoundError(
            f"no NIfTI images in '{root / f'images{tag}'}' (expected imagesTr/, labelsTr/, imagesTs/, labelsTs/)"
        )
    records = []
    for img in images:
        name = img.name.split(".nii")[0]
        rec = {"image": str(img), "name": name}
        for level in levels:
            lab = root / f"labels{tag}" / f"{name}_level{level}.nii.gz"
            if not lab.is_file():
                raise FileNotFoundError(f"label file '{lab}' for image '{img}' is missing")
            rec[f"label_level{level}"] = str(lab)
        records.append(rec)
    return records
