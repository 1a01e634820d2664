"""Synthetic BraTS cases written in the 2021 (or 2023) layout, so the real loader runs on them.

Two phantoms, chosen with ``phantom``:

- ``"v2"`` (default): a brain whose whole tumour is *not* a FLAIR threshold. White matter, a
  cortical grey-matter ribbon of varying thickness with sulcal CSF, deep grey nuclei, lateral
  ventricles with an enhancing choroid plexus, and non-tumour FLAIR/T2 hyperintensities
  (periventricular caps and scattered white-matter lesions, as in the older patients who carry
  glioblastomas). The tumour is heterogeneous: a necrotic core (fluid-like, dark in FLAIR and T1),
  an irregular enhancing rim that is broken in places by non-enhancing solid tumour (label 1 with
  the necrosis, as in the 2021 convention), and an irregular oedema that spreads along white
  matter, is brightest next to the tumour core and fades towards normal tissue at its edge, so its
  outer part overlaps grey matter in every sequence. Each modality (T1, T1ce, T2, FLAIR) has its
  sequence's relative contrasts per tissue and sub-region (:data:`V2_CONTRASTS`), its own smooth
  multiplicative bias field, tissue texture and Rician noise. On the default set, k-means on the
  intensities (the bundle's ``intensity.json`` baseline) stays at or below whole-tumour Dice 0.6
  (bundle docs: "Synthetic phantom v2"), against 0.43–0.50 for the unsupervised methods on real
  BraTS in the seed paper's table (Hsu et al. 2021) and 0.684 for its learnt model.
- ``"v1"``: the first phantom (an ellipsoid with a grey-matter shell, ventricles, a spherical
  tumour: enhancing ring, necrotic core, uniformly bright oedema). Its whole tumour is essentially a
  FLAIR threshold (raw-intensity k-means Dice 0.960), kept selectable to reproduce earlier numbers.

Both write labels in the layout's convention (2021: 1 necrotic / non-enhancing core, 2 oedema,
4 enhancing; 2023: enhancing 3). The volume is smaller than real BraTS (default 96×96×64 at 2 mm)
so CPU runs stay short.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from monai_genvq.apps.hyperbolic.brats import BRATS_LABEL_MAPS, BRATS_LAYOUTS
from monai_genvq.utils.dataset_cache import ensure_generated_dataset

__all__ = ["BRATS_PHANTOMS", "V2_CONTRASTS", "generate_synthetic_brats", "ensure_synthetic_brats"]

GENERATOR_VERSION = 2
"""2: phantom v2 added and made the default (``phantom="v1"`` writes the version-1 volumes unchanged)."""

BRATS_PHANTOMS = ("v1", "v2")
"""Phantom generations accepted by ``phantom``."""

# v1: tissue intensities per modality: background, WM, GM, CSF, oedema, enhancing, necrotic
_CONTRAST = {
    "flair": (0.0, 0.45, 0.55, 0.08, 0.95, 0.75, 0.45),
    "t1": (0.0, 0.80, 0.60, 0.20, 0.50, 0.55, 0.30),
    "t1ce": (0.0, 0.80, 0.60, 0.20, 0.50, 1.00, 0.30),
    "t2": (0.0, 0.40, 0.55, 1.00, 0.85, 0.60, 0.90),
}
_2023_NAMES = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w"}

_V2_CLASSES = (
    "background",
    "wm",
    "gm",
    "csf",
    "deep_gm",
    "wm_lesion",
    "choroid",
    "oedema",
    "enhancing",
    "necrotic",
    "non_enhancing",
)
V2_CONTRASTS = {
    # background  WM    GM    CSF   deepGM lesion choroid oedema enh.  necr. non-enh.
    "flair": (0.0, 0.45, 0.56, 0.08, 0.52, 0.72, 0.30, 0.77, 0.66, 0.30, 0.62),
    "t1": (0.0, 0.80, 0.58, 0.18, 0.64, 0.62, 0.50, 0.55, 0.52, 0.24, 0.50),
    "t1ce": (0.0, 0.80, 0.58, 0.18, 0.64, 0.62, 0.95, 0.56, 1.00, 0.24, 0.54),
    "t2": (0.0, 0.38, 0.56, 1.00, 0.50, 0.76, 0.70, 0.82, 0.62, 0.92, 0.70),
}
"""Phantom v2: intensity per modality (before bias, texture and noise) of each class in ``_V2_CLASSES``.

Relative contrasts of each sequence: T1 WM > GM > CSF, tumour hypointense, necrosis darkest;
T1ce as T1 with the enhancing rim (and the choroid plexus) brighter than WM; T2 CSF brightest, then
necrosis, oedema and lesions, GM > WM; FLAIR CSF suppressed, oedema brightest, lesions and solid
tumour bright, necrosis (fluid) dark, GM > WM. The oedema value is its peak next to the tumour core;
it fades towards the underlying tissue's value at the oedema's edge (``_OEDEMA_EDGE``)."""

_OEDEMA_EDGE = 0.10
"""Fraction of the oedema's contrast (peak minus underlying tissue) left at its outer edge."""
_BIAS_STD = 0.15
"""Standard deviation within the head of each modality's log bias field (smooth, quadratic)."""
_NOISE = 0.03
"""Rician noise: standard deviation of each complex component (white matter is about 0.45–0.8)."""


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


def _v1_volumes(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Phantom v1 (generator version 1, unchanged): intensities per modality and the seg (1, 2, 4)."""
    tissue, seg = _case(rng, shape)
    bias = np.exp(ndimage.gaussian_filter(rng.normal(size=shape), 12) * 8)
    classes = np.where(seg == 2, 4, np.where(seg == 4, 5, np.where(seg == 1, 6, tissue)))
    images = {}
    for mod, contrast in _CONTRAST.items():
        img = np.asarray(contrast, np.float32)[classes]
        img = ndimage.gaussian_filter(img, 0.7) * bias
        noise = rng.normal(scale=0.05, size=shape) + 1j * rng.normal(scale=0.05, size=shape)
        images[mod] = np.abs(img + noise).astype(np.float32) * (tissue > 0)
    return images, seg


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.normal(size=tuple(shape)), sigma)
    return (field / (field.std() + 1e-12)).astype(np.float32)


def _v2_anatomy(rng: np.random.Generator, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normal anatomy of phantom v2: class ids (``_V2_CLASSES``) and the head's radius map."""
    shape = grid.shape[:3]
    cls = {name: i for i, name in enumerate(_V2_CLASSES)}
    head = np.sqrt(((grid / [0.85, 0.9, 0.85]) ** 2).sum(-1))
    tissue = np.zeros(shape, np.uint8)
    brain = head <= 1.0
    tissue[brain] = cls["gm"]
    # white matter inside a folded boundary: cortical ribbon 0.12-0.22 of the radius (gyri)
    folding = _smooth_noise(rng, shape, 2.0)
    tissue[head <= 0.83 + 0.05 * folding] = cls["wm"]
    # sulcal CSF: thin channels through the ribbon, plus the subarachnoid rim
    sulci = np.abs(_smooth_noise(rng, shape, 1.5)) < 0.18
    tissue[brain & (head > 0.80 + 0.05 * folding) & sulci] = cls["csf"]
    tissue[brain & (head > 0.975)] = cls["csf"]
    # deep grey nuclei (thalamus / basal ganglia) either side of the ventricles
    for side in (-1.0, 1.0):
        nucleus = (((grid - [0.2 * side, 0.0, 0.05]) / [0.1, 0.16, 0.12]) ** 2).sum(-1) <= 1
        tissue[nucleus] = cls["deep_gm"]
    # lateral ventricles (two lobes), their periventricular caps and the choroid plexus
    ventricles = np.zeros(shape, bool)
    for side in (-1.0, 1.0):
        ventricles |= (((grid - [0.07 * side, 0.02, 0.12]) / [0.06, 0.32, 0.12]) ** 2).sum(-1) <= 1
    caps = ndimage.binary_dilation(ventricles, iterations=2) & ~ventricles
    caps &= np.abs(grid[..., 1] - 0.02) > 0.2  # frontal and occipital horns
    tissue[caps & (tissue == cls["wm"])] = cls["wm_lesion"]
    tissue[ventricles] = cls["csf"]
    plexus = ventricles & (np.abs(grid[..., 1] + 0.05) < 0.06) & (_smooth_noise(rng, shape, 1.0) > 0.5)
    tissue[plexus] = cls["choroid"]
    # scattered white-matter hyperintensities (small-vessel disease)
    wm_idx = np.argwhere(tissue == cls["wm"])
    for _ in range(int(rng.integers(4, 10)) if len(wm_idx) else 0):
        centre = grid[tuple(wm_idx[rng.integers(len(wm_idx))])]
        radius = rng.uniform(0.025, 0.06)
        blob = (((grid - centre) / radius) ** 2).sum(-1) <= 1
        tissue[blob & (tissue == cls["wm"])] = cls["wm_lesion"]
    return tissue, head


def _v2_tumour(rng: np.random.Generator, grid: np.ndarray, tissue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tumour of phantom v2: the seg (1 necrotic / non-enhancing, 2 oedema, 4 enhancing) and the class ids
    it imposes (-1 where normal), plus the oedema's strength in [``_OEDEMA_EDGE``, 1] (0 outside it)."""
    shape = tissue.shape
    cls = {name: i for i, name in enumerate(_V2_CLASSES)}
    # centre in the white matter of one hemisphere, off the ventricles
    candidates = np.argwhere(
        (tissue == cls["wm"])
        & (np.abs(grid[..., 0]) > 0.22)
        & (np.sqrt(((grid / [0.85, 0.9, 0.85]) ** 2).sum(-1)) < 0.62)
    )
    if not len(candidates):  # volumes too coarse for that white matter
        candidates = np.argwhere(tissue > 0)
    centre_voxel = tuple(candidates[rng.integers(len(candidates))])
    centre = grid[centre_voxel]
    axes = rng.uniform(0.8, 1.25, size=3)
    dist = np.sqrt((((grid - centre) / axes) ** 2).sum(-1))
    # irregular outlines: the distance is modulated by smooth fields (lobulated core, finger-like oedema)
    d_core = dist * (1.0 + 0.18 * _smooth_noise(rng, shape, 3.0))
    d_oedema = dist * (1.0 + 0.30 * _smooth_noise(rng, shape, 3.0))
    r_enh = rng.uniform(0.14, 0.24)
    r_nec = r_enh * rng.uniform(0.45, 0.7)
    r_oed = r_enh * rng.uniform(1.6, 2.2)
    brain = tissue > 0
    soft = np.isin(tissue, [cls["wm"], cls["wm_lesion"], cls["deep_gm"]])
    # vasogenic oedema spreads along white matter and stops short in the cortex and in CSF
    oedema = brain & (((d_oedema <= r_oed) & soft) | ((d_oedema <= 0.8 * r_oed) & (tissue == cls["gm"])))
    oedema &= tissue != cls["csf"]
    core = brain & (d_core <= r_enh)
    core[centre_voxel] = True  # at least one tumour voxel in very coarse volumes
    parts, _ = ndimage.label(oedema | core)
    oedema &= np.isin(parts, np.unique(parts[core]))  # one lesion: drop oedema islands away from the core
    necrotic = core & (d_core <= r_nec)
    rim = core & ~necrotic
    broken = rim & (_smooth_noise(rng, shape, 2.5) > 0.6)  # non-enhancing solid tumour in the rim
    seg = np.zeros(shape, np.uint8)
    seg[oedema] = 2
    seg[rim] = 4
    seg[necrotic | broken] = 1
    classes = np.full(shape, -1, np.int64)
    classes[oedema] = cls["oedema"]
    classes[rim] = cls["enhancing"]
    classes[necrotic] = cls["necrotic"]
    classes[broken] = cls["non_enhancing"]
    span = np.clip((r_oed - d_oedema) / max(r_oed - r_enh, 1e-6), 0.0, 1.0)
    strength = np.where(oedema & ~core, _OEDEMA_EDGE + (1.0 - _OEDEMA_EDGE) * span**1.5, 0.0)
    return seg, classes, strength.astype(np.float32)


def _log_bias(rng: np.random.Generator, grid: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """A smooth (quadratic) log bias field with standard deviation ``_BIAS_STD`` inside the head."""
    x, y, z = grid[..., 0], grid[..., 1], grid[..., 2]
    basis = np.stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z], -1)
    field = basis @ rng.normal(size=basis.shape[-1])
    field -= field[inside].mean()
    return (field * _BIAS_STD / (field[inside].std() + 1e-12)).astype(np.float32)


def _v2_volumes(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Phantom v2: intensities per modality and the seg (1, 2, 4)."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"), -1).astype(np.float32)
    tissue, _ = _v2_anatomy(rng, grid)
    seg, tumour_classes, strength = _v2_tumour(rng, grid, tissue)
    classes = np.where(tumour_classes >= 0, tumour_classes, tissue)
    brain = tissue > 0
    in_oedema = strength > 0
    texture = _smooth_noise(rng, shape, 1.5)
    tumour_texture = _smooth_noise(rng, shape, 1.0)
    images = {}
    for mod in ("flair", "t1", "t1ce", "t2"):
        contrast = np.asarray(V2_CONTRASTS[mod], np.float32)
        img = contrast[classes]
        # oedema: from its peak next to the core to the underlying tissue's value at its edge
        under = contrast[tissue]
        peak = contrast[_V2_CLASSES.index("oedema")]
        img[in_oedema] = under[in_oedema] + (peak - under[in_oedema]) * strength[in_oedema]
        img *= 1.0 + 0.04 * texture + 0.08 * tumour_texture * (seg > 0)
        img = ndimage.gaussian_filter(img, 0.8)  # partial volume
        img *= np.exp(_log_bias(rng, grid, brain))
        noise = rng.normal(scale=_NOISE, size=shape) + 1j * rng.normal(scale=_NOISE, size=shape)
        images[mod] = (np.abs(img + noise) * brain).astype(np.float32)
    return images, seg


def generate_synthetic_brats(
    root: str | os.PathLike,
    n_cases: int = 6,
    shape: Sequence[int] = (96, 96, 64),
    spacing: float = 2.0,
    layout: str = "2021",
    seed: int = 0,
    phantom: str = "v2",
) -> Path:
    """Write ``n_cases`` synthetic cases into ``root`` in the given BraTS layout.

    Args:
        root: output folder (created); one sub-folder per case.
        n_cases: number of cases.
        shape: volume shape in voxels.
        spacing: isotropic voxel size in mm (the affine's diagonal).
        layout: "2021" (``BraTS2021_NNNNN_{flair,t1,t1ce,t2,seg}``, enhancing = 4) or "2023"
            (``BraTS-GLI-NNNNN-000-{t2f,t1n,t1c,t2w,seg}``, enhancing = 3).
        seed: seed of every random choice (the same seed gives the same files).
        phantom: "v2" (heterogeneous tumour, intensity overlap with normal tissue; the default) or "v1"
            (the first phantom, whose whole tumour is a FLAIR threshold; module docstring).

    Returns:
        ``root``.

    Raises:
        ValueError: unknown ``phantom`` or ``layout``.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> root = generate_synthetic_brats(tmp.name, n_cases=1, shape=(32, 32, 24))
        >>> [p.name[16:] for p in sorted((root / "BraTS2021_00000").iterdir())]
        ['flair.nii.gz', 'seg.nii.gz', 't1.nii.gz', 't1ce.nii.gz', 't2.nii.gz']
        >>> tmp.cleanup()
    """
    if phantom not in BRATS_PHANTOMS:
        raise ValueError(f"phantom must be one of {list(BRATS_PHANTOMS)}, got {phantom!r}")
    if layout not in BRATS_LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(BRATS_LAYOUTS)}, got {layout!r}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    lm = BRATS_LABEL_MAPS[layout]
    sep = BRATS_LAYOUTS[layout]["sep"]
    make = _v1_volumes if phantom == "v1" else _v2_volumes
    for i in range(n_cases):
        name = f"BraTS2021_{i:05d}" if layout == "2021" else f"BraTS-GLI-{i:05d}-000"
        case = root / name
        case.mkdir(parents=True, exist_ok=True)
        images, seg = make(rng, shape)
        for mod, img in images.items():
            suffix = mod if layout == "2021" else _2023_NAMES[mod]
            nib.save(nib.Nifti1Image(img * 1000, affine), case / f"{name}{sep}{suffix}.nii.gz")
        out = np.zeros_like(seg)
        out[seg == 1], out[seg == 2], out[seg == 4] = lm["necrotic"], lm["edema"], lm["enhancing"]
        nib.save(nib.Nifti1Image(out, affine), case / f"{name}{sep}seg.nii.gz")
    return root


def ensure_synthetic_brats(cache_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """The synthetic BraTS folder, generated on first use into ``$MONAI_GENVQ_CACHE`` (atomic, idempotent).

    Args:
        cache_dir: the folder to use instead of ``$MONAI_GENVQ_CACHE/synthetic_brats_v<version>[-<digest>]``.
        kwargs: parameters of :func:`generate_synthetic_brats` other than ``root`` (defaults: 6 cases,
            96×96×64 at 2 mm, layout 2021, seed 0, phantom "v2").

    Example:
        >>> ensure_synthetic_brats(phantom="v1")  # doctest: +SKIP
        PosixPath('/home/user/.cache/monai_genvq/synthetic_brats_v2-…')
    """
    defaults = {"n_cases": 6, "shape": [96, 96, 64], "spacing": 2.0, "layout": "2021", "seed": 0, "phantom": "v2"}
    return ensure_generated_dataset(
        "synthetic_brats", GENERATOR_VERSION, defaults, kwargs, generate_synthetic_brats, cache_dir, "synthetic BraTS"
    )
