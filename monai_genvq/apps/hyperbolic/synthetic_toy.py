"""A hierarchical toy set after Hsu et al. 2021's biologically inspired volumes, written as NIfTI.

Two generator versions, both with the same label hierarchy (level 1 object/background, 2 classes;
level 2 background, cytoplasm, organelle A, organelle B, 4 classes; level 3 a first and a second
inclusion type inside each organelle type, 8 classes) and the same layout; ``version`` selects one.

**Version 4 (the default)** is made so that no level can be read from intensities. The seed's
unsupervised baselines score 0.53-0.63 / 0.28-0.31 / 0.12-0.15 at levels 1 / 2 / 3 (Hsu et al.
2021, toy table of ``shared/seeds/003``) and its Euclidean VAE 0.78 / 0.32 / 0.11, so its levels are
not intensity-separable; version 3 was (k-means on smoothed intensities 0.988 / 0.620 / 0.284). In
version 4 the volume is a tissue of Voronoi cells separated by background gaps about 3 voxels wide
(level 1: containment and shape), each cell holding one organelle of each type, each organelle one
inclusion of each type (levels 2 and 3: scale and containment). Every non-background class has the
same intensity distribution: a ternary texture (25 % at mean + 0.3, 25 % at mean − 0.3, 50 % at the
mean 0.5, by quantiles of a narrow-band random field of period 4 voxels), so classes share mean and
variance (std 0.21) at every level; they differ only in the texture's orientation (cytoplasm
isotropic, organelle A along x, organelle B along y, inclusion type 1 along z, type 2 along
(1, −1, 0); frequencies within 25° of the axis). The background is the constant 0.5 (the released
code's dataloader skips constant parent patches, :class:`~monai_genvq.apps.hyperbolic.TripletPatchSampler`
does too by default). Equal radial frequency means a Gaussian smoothing attenuates every class
alike. k-means on raw and on Gaussian-smoothed (σ = 1) intensities stays below the seed's
unsupervised bounds (0.63 at level 1, 0.32 at level 2) on the default test volumes (measured in the
toy bundle's docs; ``tests/test_hyperbolic_toy_v4.py`` checks a 40³ volume). ``noise`` adds Gaussian
noise to the cells only (0 by default).

**Version 3** (``version=3``, the toy set of bundle versions up to 0.5): each 50³ volume holds "cells"
(level 1: object vs background), each containing organelles of two
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

import functools
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = [
    "LEVEL_CLASSES",
    "TOY_VERSIONS",
    "generate_hierarchy_volume",
    "generate_textured_hierarchy_volume",
    "generate_hierarchy_toy",
    "ensure_hierarchy_toy",
    "discover_hierarchy_toy",
]

GENERATOR_VERSION = 4
"""The default generator version (version 3 stays selectable, see the module docstring)."""
TOY_VERSIONS = (3, 4)
_DEFAULT_NOISE = {3: 0.15, 4: 0.0}
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


# version 4: texture orientation per class (None: isotropic); level-3 classes 4/6 and 5/7 share one
_V4_TEXTURES = {
    (1,): None,
    (2,): (1.0, 0.0, 0.0),
    (3,): (0.0, 1.0, 0.0),
    (4, 6): (0.0, 0.0, 1.0),
    (5, 7): (1.0, -1.0, 0.0),
}
V4_MEAN, V4_CONTRAST, V4_TAIL, V4_PERIOD, V4_CONE_DEG = 0.5, 0.3, 0.25, 4.0, 25.0
"""Version 4's intensity mean (= the background), ± contrast, fraction of a texture at each of ± contrast,
texture period (voxels) and half-angle of the oriented textures' frequency cone (degrees)."""


def _voronoi_tissue(
    rng: np.random.Generator, size: int, spacing: float, gap: float
) -> tuple[np.ndarray, np.ndarray, list]:
    """Cell mask, owning seed per voxel and the seeds of a Voronoi tissue (seeds ``spacing`` apart, up to
    10 % beyond the borders; voxels within ``gap`` of a bisector between two seeds are background)."""
    seeds: list[np.ndarray] = []
    for _ in range(4000):
        p = rng.uniform(-0.1 * size, 1.1 * size, 3)
        if all(np.linalg.norm(p - q) >= spacing for q in seeds):
            seeds.append(p)
    if len(seeds) < 2:  # a volume smaller than the spacing: two cells side by side
        seeds = [np.full(3, size / 2.0) + d * np.array([spacing / 2.0, 0.0, 0.0]) for d in (-1, 1)]
    pts = np.stack(np.meshgrid(*[np.arange(size, dtype=np.float32)] * 3, indexing="ij"), -1).reshape(-1, 3)
    sd = np.asarray(seeds, np.float32)
    d = np.linalg.norm(pts[:, None, :] - sd[None], axis=-1)
    two = np.argpartition(d, 1, axis=1)[:, :2]
    first = np.where(d[np.arange(len(d)), two[:, 0]] <= d[np.arange(len(d)), two[:, 1]], two[:, 0], two[:, 1])
    second = np.where(first == two[:, 0], two[:, 1], two[:, 0])
    d1, d2 = d[np.arange(len(d)), first], d[np.arange(len(d)), second]
    to_bisector = (d2**2 - d1**2) / (2.0 * np.linalg.norm(sd[second] - sd[first], axis=1))
    shape = (size,) * 3
    return (to_bisector > gap).reshape(shape), first.reshape(shape), seeds


def _oriented_texture(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    direction: tuple[float, ...] | None,
    period: float,
    cone_deg: float,
) -> np.ndarray:
    """A narrow-band Gaussian random field: frequencies within ±25 % of 1/``period`` and, when ``direction``
    is given, within ``cone_deg`` of it (stripes across that axis); None: isotropic."""
    freqs = np.stack(np.meshgrid(*[np.fft.fftfreq(s) for s in shape], indexing="ij"), -1)
    norm = np.linalg.norm(freqs, axis=-1)
    keep = np.abs(norm - 1.0 / period) < 0.25 / period
    if direction is not None:
        u = np.asarray(direction, np.float64) / np.linalg.norm(direction)
        keep &= np.abs(freqs @ u) >= np.cos(np.deg2rad(cone_deg)) * norm
    return np.real(np.fft.ifftn(np.fft.fftn(rng.normal(size=shape)) * keep)).astype(np.float32)


def generate_textured_hierarchy_volume(
    rng: np.random.Generator, size: int = 50, noise: float = 0.0, cell_spacing: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One toy-v4 volume and its level-3 label map: levels carried by texture orientation, shape, scale and
    containment, every class with the same intensity distribution (see the module docstring).

    Args:
        rng: the random generator.
        size: side of the cubic volume in voxels.
        noise: σ of Gaussian noise added inside the cells (the background stays constant).
        cell_spacing: minimum distance between cell seeds in voxels; default ``0.56 * size`` (28 for 50³).

    Returns:
        ``(image float32, level-3 labels uint8)``, both ``(size,) * 3``.

    Example:
        >>> img, lab3 = generate_textured_hierarchy_volume(np.random.default_rng(0), size=24)
        >>> img.shape, int(lab3.max()) <= 7, float(img[lab3 == 0].std())
        ((24, 24, 24), True, 0.0)
    """
    spacing = 0.56 * size if cell_spacing is None else float(cell_spacing)
    cells, owner, seeds = _voronoi_tissue(rng, size, spacing, gap=1.5)
    shape = (size,) * 3
    lab = cells.astype(np.uint8)
    for i, seed in enumerate(seeds):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        ro = rng.uniform(0.27, 0.31) * spacing
        for kind, side in zip(rng.permutation([2, 3]), (1.0, -1.0)):
            oc = seed + side * u * 1.05 * ro
            lab[_ball(shape, oc, np.full(3, ro)) & (lab == 1) & (owner == i)] = kind
            v = rng.normal(size=3)
            v /= np.linalg.norm(v)
            for inc_kind, off in ((4 if kind == 2 else 6, 1.0), (5 if kind == 2 else 7, -1.0)):
                lab[_ball(shape, oc + off * v * 0.45 * ro, np.full(3, 0.45 * ro)) & (lab == kind)] = inc_kind
    img = np.full(shape, V4_MEAN, np.float32)
    for classes, direction in _V4_TEXTURES.items():
        field = _oriented_texture(rng, shape, direction, V4_PERIOD, V4_CONE_DEG)
        for cls in classes:  # quantiles per class: every class has the same ternary distribution
            inside = lab == cls
            if not inside.any():
                continue
            values = field[inside]
            lo, hi = np.quantile(values, [V4_TAIL, 1.0 - V4_TAIL])
            tex = np.full(values.shape, V4_MEAN, np.float32)
            tex[values >= hi], tex[values <= lo] = V4_MEAN + V4_CONTRAST, V4_MEAN - V4_CONTRAST
            img[inside] = tex
    if noise:
        img[lab > 0] += rng.normal(scale=noise, size=int((lab > 0).sum())).astype(np.float32)
    return img, lab


def level_map(level3: np.ndarray, level: int) -> np.ndarray:
    """Level-3 labels -> labels of ``level`` (1, 2 or 3)."""
    if level == 3:
        return level3.astype(np.uint8)
    lut = np.array([_PARENT[i][2 - level] for i in range(8)], np.uint8)
    return lut[level3]


def generate_hierarchy_toy(
    root: str | os.PathLike,
    n_train: int = 8,
    n_test: int = 4,
    size: int = 50,
    seed: int = 0,
    noise: float | None = None,
    version: int = GENERATOR_VERSION,
) -> Path:
    """Write the toy set into ``root`` (see the module docstring for the layout).

    Args:
        root: output folder.
        n_train, n_test: volumes per split.
        size: side of the cubic volumes in voxels.
        seed: seed of the whole set.
        noise: Gaussian σ; None: the version's default (v3 0.15 over the whole volume, v4 0 and cells only).
        version: generator version, 4 (texture-only levels, the default) or 3 (see the module docstring).

    Raises:
        ValueError: an unknown ``version``.
    """
    if version not in TOY_VERSIONS:
        raise ValueError(f"toy generator version must be one of {TOY_VERSIONS}, got {version!r}")
    noise = _DEFAULT_NOISE[version] if noise is None else float(noise)
    volume = generate_hierarchy_volume if version == 3 else generate_textured_hierarchy_volume
    root = Path(root)
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    for split, n in (("Tr", n_train), ("Ts", n_test)):
        (root / f"images{split}").mkdir(parents=True, exist_ok=True)
        (root / f"labels{split}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, lab3 = volume(rng, size, noise)
            name = f"toy_{split.lower()}{i:03d}"
            nib.save(nib.Nifti1Image(img, affine), root / f"images{split}" / f"{name}.nii.gz")
            for level in (1, 2, 3):
                nib.save(
                    nib.Nifti1Image(level_map(lab3, level), affine),
                    root / f"labels{split}" / f"{name}_level{level}.nii.gz",
                )
    meta = {
        "name": "monai_genvq hierarchical toy",
        "generator_version": version,
        "levels": {str(k): v for k, v in LEVEL_CLASSES.items()},
        "level3_to_level2_level1": {str(k): v for k, v in _PARENT.items()},
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root


def ensure_hierarchy_toy(
    cache_dir: str | os.PathLike | None = None, version: int = GENERATOR_VERSION, **kwargs
) -> Path:
    """The toy set's folder, generated on first use into ``$MONAI_GENVQ_CACHE/hierarchy_toy_v<version>``
    (atomic, idempotent; other parameters get a folder of their own).

    Args:
        cache_dir: the folder to use instead of the cache's.
        version: generator version, 4 (the default) or 3 (the toy set of bundle versions up to 0.5).
        kwargs: :func:`generate_hierarchy_toy` parameters (``n_train``, ``n_test``, ``size``, ``seed``, ``noise``).

    Example:
        >>> records = discover_hierarchy_toy(ensure_hierarchy_toy(), "train")  # doctest: +SKIP
        >>> v3 = ensure_hierarchy_toy(version=3)  # doctest: +SKIP
    """
    if version not in TOY_VERSIONS:
        raise ValueError(f"toy generator version must be one of {TOY_VERSIONS}, got {version!r}")
    defaults = {"n_train": 8, "n_test": 4, "size": 50, "seed": 0, "noise": _DEFAULT_NOISE[version]}
    build = functools.partial(generate_hierarchy_toy, version=version)
    return ensure_generated_dataset("hierarchy_toy", version, defaults, kwargs, build, cache_dir, "toy dataset")


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
