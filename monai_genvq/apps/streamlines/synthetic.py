"""Synthetic TractoInferno: plausible white-matter bundles written in the real on-disk layout.

Each tract is a smooth core curve through anatomical landmarks (RAS mm, MNI-like space). Streamlines
are offsets of the core that vary along the length: a position in the tract's cross-section that
twists along the tract, fanning at the cortical ends (a curved sheet, like a real fan), a few
low-frequency wiggles, small tracking noise, variable start/end (truncation), a variable step
(0.5-1 mm, so variable point counts) and a random orientation. Subjects differ by a small affine
(rotation, anisotropic scale, shift) and per-tract shape jitter.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.interpolate import CubicSpline

from monai_genvq.apps.streamlines.io import save_streamlines
from monai_genvq.utils.dataset_cache import default_cache_root, materialize_dataset, params_digest

__all__ = ["SYNTHETIC_TRACTS", "generate_synthetic_tractoinferno", "ensure_synthetic_tractoinferno"]

GENERATOR_VERSION = 1
_FINE = 200  # samples along the core curve


@dataclass(frozen=True)
class _Fan:
    """Spread of one end of a tract: a sheet of half-width ``width`` along ``direction``."""

    direction: tuple[float, float, float]
    width: float
    thickness_direction: tuple[float, float, float]
    thickness: float
    curl: float = 0.0  # mm; the sheet bends (quadratic in the fan coordinate) along the end tangent
    extent: float = 0.3  # fraction of the length over which the fan opens
    lobes: int = 1  # >1: the sheet splits into separate terminal fascicles (e.g. one per gyrus)


@dataclass(frozen=True)
class _Tract:
    name: str
    control: tuple[tuple[float, float, float], ...]
    radius: tuple[float, float]  # cross-section semi-axes (mm) along section_axis and across it
    section_axis: tuple[float, float, float]
    start: _Fan
    end: _Fan
    twist: float = 0.0  # radians of rotation of the cross-section from start to end
    partial_fraction: float = 0.15  # streamlines that stop early / start late


def _mirror(tract: _Tract, name: str, scale: float = 1.0) -> _Tract:
    """Right-hemisphere copy (x -> -x), optionally with a different fan size (hemispheric asymmetry)."""

    def flip(v):
        return (-v[0], v[1], v[2])

    def fan(f: _Fan) -> _Fan:
        return replace(
            f, direction=flip(f.direction), thickness_direction=flip(f.thickness_direction), width=f.width * scale
        )

    return replace(
        tract,
        name=name,
        control=tuple(flip(p) for p in tract.control),
        section_axis=flip(tract.section_axis),
        start=fan(tract.start),
        end=fan(tract.end),
        twist=-tract.twist,
    )


_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)

_PYT_L = _Tract(
    "PYT_L",  # medulla -> pons -> cerebral peduncle -> internal capsule -> corona radiata -> precentral gyrus
    (
        (-6, -32, -48),
        (-9, -26, -32),
        (-14, -19, -14),
        (-20, -15, 2),
        (-24, -16, 18),
        (-27, -18, 36),
        (-29, -20, 52),
        (-30, -20, 62),
    ),
    radius=(4.8, 4.0),
    section_axis=_X,
    twist=0.8,
    start=_Fan(_X, 2.5, _Y, 2.0, extent=0.15),
    end=_Fan((1.0, 0.0, 0.6), 24.0, _Y, 8.0, curl=-5.0, extent=0.4, lobes=3),
)
_AF_L = _Tract(
    "AF_L",  # inferior frontal gyrus -> arches around the posterior sylvian fissure -> middle/inferior temporal gyri
    (
        (-46, 18, 12),
        (-42, 5, 24),
        (-38, -12, 30),
        (-38, -30, 30),
        (-42, -44, 22),
        (-48, -50, 8),
        (-52, -42, -6),
        (-55, -28, -14),
        (-56, -16, -18),
    ),
    radius=(6.4, 4.8),
    section_axis=_X,
    twist=0.9,
    start=_Fan(_Z, 12.5, _X, 4.0, curl=3.0, extent=0.3, lobes=2),
    end=_Fan(_Z, 13.8, _X, 5.0, curl=-4.0, extent=0.3, lobes=2),
)
_SLF_L = _Tract(
    "SLF_L",  # superior longitudinal fasciculus (II): dorsolateral frontal -> inferior parietal
    (
        (-30, 34, 32),
        (-33, 18, 38),
        (-35, 0, 41),
        (-36, -18, 42),
        (-35, -36, 40),
        (-32, -52, 36),
        (-28, -62, 32),
    ),
    radius=(6.4, 4.8),
    section_axis=_Z,
    twist=0.3,
    start=_Fan(_Z, 12.5, _X, 6.0, curl=3.0, extent=0.25),
    end=_Fan(_Z, 11.2, _X, 8.0, curl=-3.0, extent=0.25, lobes=2),
)
_IFOF_L = _Tract(
    "IFOF_L",  # frontal pole -> extreme/external capsule (narrow) -> occipital lobe
    (
        (-24, 58, 2),
        (-28, 40, -2),
        (-32, 22, -8),
        (-34, 6, -10),
        (-36, -12, -4),
        (-36, -32, 0),
        (-33, -55, 2),
        (-28, -75, 4),
        (-22, -92, 6),
    ),
    radius=(4.0, 3.2),
    section_axis=_Z,
    twist=1.0,
    start=_Fan(_X, 16.2, _Z, 9.0, curl=4.0, extent=0.3, lobes=2),
    end=_Fan(_Z, 15.0, _X, 9.0, curl=-4.0, extent=0.3, lobes=3),
)
_UF_L = _Tract(
    "UF_L",  # orbitofrontal cortex -> hooks around the limen insulae -> temporal pole
    (
        (-16, 48, -14),
        (-24, 36, -12),
        (-32, 22, -12),
        (-37, 8, -16),
        (-39, 4, -24),
        (-39, 10, -32),
        (-36, 20, -36),
    ),
    radius=(5.5, 4.5),
    section_axis=_X,
    twist=0.4,
    start=_Fan(_X, 12.5, _Z, 5.0, curl=3.0, extent=0.3),
    end=_Fan(_Z, 8.8, _X, 5.0, curl=-2.0, extent=0.3, lobes=2),
)
_ILF_L = _Tract(
    "ILF_L",  # temporal pole -> occipital lobe along the lateral ventricle
    (
        (-38, 6, -32),
        (-44, -10, -24),
        (-46, -30, -14),
        (-44, -50, -6),
        (-38, -68, 0),
        (-30, -86, 4),
    ),
    radius=(5.6, 4.8),
    section_axis=_Z,
    twist=0.5,
    start=_Fan(_Z, 10.0, _X, 5.0, extent=0.25),
    end=_Fan(_Z, 15.0, _X, 8.0, curl=-3.0, extent=0.3, lobes=2),
)
_CG_L = _Tract(
    "CG_L",  # cingulum: subgenual -> above the corpus callosum -> retrosplenial -> parahippocampal
    (
        (-6, 34, -4),
        (-7, 38, 10),
        (-8, 30, 26),
        (-8, 12, 34),
        (-8, -10, 38),
        (-9, -32, 38),
        (-10, -50, 28),
        (-14, -52, 12),
        (-20, -42, -4),
        (-24, -30, -14),
    ),
    radius=(5.0, 4.0),
    section_axis=_X,
    twist=0.2,
    start=_Fan(_X, 8.8, _Y, 5.0, extent=0.2),
    end=_Fan(_Y, 11.2, _X, 5.0, extent=0.25),
)
_FX_L = _Tract(
    "FX_L",  # fornix: hippocampus -> crus -> body -> column -> mammillary body
    (
        (-26, -22, -16),
        (-30, -32, -8),
        (-24, -40, 6),
        (-14, -36, 16),
        (-4, -22, 18),
        (-2, -8, 12),
        (-3, 0, 2),
        (-4, -6, -8),
    ),
    radius=(4.2, 3.4),
    section_axis=_Z,
    twist=0.3,
    start=_Fan(_Y, 11.2, _Z, 4.0, curl=2.0, extent=0.3),
    end=_Fan(_X, 5.0, _Y, 3.0, extent=0.15),
)
_CC_FR_1 = _Tract(
    "CC_Fr_1",  # rostral frontal commissural fibres: a coronal U opening upward, fanning antero-posteriorly
    (
        (-30, 28, 52),
        (-24, 26, 38),
        (-16, 24, 26),
        (-8, 22, 20),
        (0, 22, 18),
        (8, 22, 20),
        (16, 24, 26),
        (24, 26, 38),
        (30, 28, 52),
    ),
    radius=(6.4, 3.2),
    section_axis=_Y,
    twist=0.0,
    start=_Fan(_Y, 15.0, _X, 6.0, curl=-4.0, extent=0.35, lobes=2),
    end=_Fan(_Y, 15.0, _X, 6.0, curl=-4.0, extent=0.35, lobes=2),
)
_CC_OC = _Tract(
    "CC_Oc",  # splenium / forceps major: an axial U opening backward, fanning over the occipital poles
    (
        (-22, -92, 8),
        (-24, -78, 10),
        (-22, -62, 14),
        (-14, -46, 16),
        (0, -38, 16),
        (14, -46, 16),
        (22, -62, 14),
        (24, -78, 10),
        (22, -92, 8),
    ),
    radius=(8.0, 4.8),
    section_axis=_Z,
    twist=0.0,
    start=_Fan(_Z, 17.5, _X, 6.0, curl=-4.0, extent=0.3, lobes=2),
    end=_Fan(_Z, 17.5, _X, 6.0, curl=-4.0, extent=0.3, lobes=2),
)

_TRACTS: dict[str, _Tract] = {
    t.name: t
    for t in (
        _PYT_L,
        _mirror(_PYT_L, "PYT_R"),
        _AF_L,
        _mirror(_AF_L, "AF_R", scale=0.8),
        _SLF_L,
        _IFOF_L,
        _UF_L,
        _ILF_L,
        _CG_L,
        _FX_L,
        _CC_FR_1,
        _CC_OC,
    )
}
SYNTHETIC_TRACTS: tuple[str, ...] = tuple(_TRACTS)

# An MNI-like 1 mm reference volume that holds every synthetic streamline (as a real subject's DWI would).
_REFERENCE_SHAPE = (193, 229, 193)
_REFERENCE_AFFINE = np.array([[1.0, 0, 0, -96], [0, 1.0, 0, -132], [0, 0, 1.0, -78], [0, 0, 0, 1]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _rotation(angles: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _core_curve(control: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth curve through ``control`` sampled at ``_FINE`` points equally spaced in arc length, and its tangents."""
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(control, axis=0), axis=1))])
    spline = CubicSpline(chord / chord[-1], control, axis=0, bc_type="natural")
    dense_u = np.linspace(0.0, 1.0, 4 * _FINE)
    dense = spline(dense_u)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    u = np.interp(np.linspace(0.0, arc[-1], _FINE), arc, dense_u)
    return spline(u), _unit(spline(u, 1))


def _transport_frame(tangents: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation-minimising normals along the curve, the first starting as close to ``axis`` as possible."""
    normals = np.empty_like(tangents)
    n = axis - axis @ tangents[0] * tangents[0]
    if np.linalg.norm(n) < 1e-3:  # axis along the tangent: pick any perpendicular
        n = np.cross(tangents[0], [0.0, 0.0, 1.0] if abs(tangents[0][2]) < 0.9 else [1.0, 0.0, 0.0])
    normals[0] = _unit(n)
    for i in range(1, len(tangents)):
        n = normals[i - 1] - (normals[i - 1] @ tangents[i]) * tangents[i]
        normals[i] = _unit(n)
    return normals, np.cross(tangents, normals)


def _fan_offsets(fan: _Fan, t: np.ndarray, at_start: bool, tangent_end: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Offsets (S, F, 3) that open a curved sheet near one end of the tract."""
    s = np.clip(((fan.extent - t) if at_start else (t - (1.0 - fan.extent))) / fan.extent, 0.0, 1.0)
    weight = s * s * (3.0 - 2.0 * s)  # smoothstep: zero along the trunk, one at the tip
    direction = np.asarray(fan.direction, float)
    direction = _unit(direction - (direction @ tangent_end) * tangent_end)
    across = np.asarray(fan.thickness_direction, float)
    across = across - (across @ tangent_end) * tangent_end - (across @ direction) * direction
    across = _unit(across) if np.linalg.norm(across) > 1e-3 else np.cross(tangent_end, direction)
    outward = -tangent_end if at_start else tangent_end
    sheet = (
        fan.width * u[:, None] * direction
        + fan.thickness * v[:, None] * across
        + fan.curl * (u[:, None] ** 2 - 0.5) * outward
    )  # (S, 3)
    return weight[None, :, None] * sheet[:, None, :]


def _bundle_streamlines(tract: _Tract, n_streamlines: int, rng: np.random.Generator, subject_affine: np.ndarray):
    """Variable-length streamlines (list of (N_i, 3) float32) of one tract for one subject."""
    # per-subject shape: jittered landmarks and sizes
    control = np.asarray(tract.control, float) + rng.normal(0.0, 1.5, (len(tract.control), 3))
    control = control @ subject_affine[:3, :3].T + subject_affine[:3, 3]
    size = rng.uniform(0.85, 1.15, 3)  # cross-section, start fan, end fan
    twist = tract.twist + rng.normal(0.0, 0.3)
    start = replace(tract.start, width=tract.start.width * size[1])
    end = replace(tract.end, width=tract.end.width * size[2])
    rot = subject_affine[:3, :3] / np.cbrt(abs(np.linalg.det(subject_affine[:3, :3])))

    core, tangents = _core_curve(control)
    n1, n2 = _transport_frame(tangents, rot @ np.asarray(tract.section_axis, float))
    t = np.linspace(0.0, 1.0, _FINE)

    # cross-section positions (uniform in a disk), twisting along the tract
    radius = np.sqrt(rng.uniform(0.0, 1.0, n_streamlines))
    angle = rng.uniform(0.0, 2 * np.pi, n_streamlines)
    a, b = radius * np.cos(angle), radius * np.sin(angle)
    phase = angle[:, None] + twist * t[None, :]
    ca = tract.radius[0] * size[0] * radius[:, None] * np.cos(phase)
    cb = tract.radius[1] * size[0] * radius[:, None] * np.sin(phase)
    lines = core[None] + ca[..., None] * n1[None] + cb[..., None] * n2[None]

    # fans: the sheet coordinate follows the cross-section position (topography is kept), plus jitter
    for fan, at_start, index in ((start, True, 0), (end, False, -1)):
        u = np.clip(a + rng.normal(0.0, 0.25, n_streamlines), -1.2, 1.2)
        if fan.lobes > 1:  # pull each streamline towards the nearest terminal fascicle
            centres = np.linspace(-1.0, 1.0, fan.lobes) + rng.normal(0.0, 0.1, fan.lobes)
            nearest = centres[np.argmin(np.abs(u[:, None] - centres[None]), axis=1)]
            u = 0.8 * nearest + 0.2 * u + rng.normal(0.0, 0.08, n_streamlines)
        v = np.clip(b + rng.normal(0.0, 0.25, n_streamlines), -1.2, 1.2)
        lines += _fan_offsets(fan, t, at_start, tangents[index], u, v)

    # low-frequency wiggles (a few cycles per streamline, sub-millimetre to ~1 mm)
    for _ in range(3):
        amplitude = rng.uniform(0.2, 0.9, n_streamlines)[:, None, None]
        cycles = rng.uniform(0.5, 4.0, n_streamlines)[:, None, None]
        phase0 = rng.uniform(0.0, 2 * np.pi, n_streamlines)[:, None, None]
        mix = rng.uniform(0.0, 2 * np.pi, n_streamlines)[:, None, None]
        direction = np.cos(mix) * n1[None] + np.sin(mix) * n2[None]
        lines += amplitude * np.sin(2 * np.pi * cycles * t[None, :, None] + phase0) * direction

    # variable extent along the tract, step and orientation
    n = n_streamlines
    partial = rng.random(n) < tract.partial_fraction
    starts_late = partial & (rng.random(n) < 0.5)
    ends_early = partial & ~starts_late
    t0 = np.where(starts_late, rng.uniform(0.05, 0.2, n), rng.uniform(0.0, 0.04, n))
    t1 = np.where(ends_early, rng.uniform(0.8, 0.95, n), rng.uniform(0.96, 1.0, n))
    steps = rng.uniform(0.5, 1.0, n_streamlines)
    flips = rng.random(n_streamlines) < 0.5

    arcs = np.cumsum(np.linalg.norm(np.diff(lines, axis=1), axis=2), axis=1)
    arcs = np.concatenate([np.zeros((n_streamlines, 1)), arcs], axis=1)
    index = np.arange(_FINE, dtype=float)
    streamlines = []
    for i in range(n_streamlines):
        first, last = np.interp([t0[i], t1[i]], t, arcs[i])
        targets = np.arange(first, last, steps[i])
        targets = np.append(targets, last) if last - targets[-1] > 0.25 * steps[i] else np.append(targets[:-1], last)
        position = np.interp(targets, arcs[i], index)  # fractional sample index along the fine curve
        low = np.minimum(position.astype(int), _FINE - 2)
        frac = (position - low)[:, None]
        points = (1.0 - frac) * lines[i, low] + frac * lines[i, low + 1]
        points += rng.normal(0.0, 0.1, points.shape)  # tracking noise
        streamlines.append((points[::-1] if flips[i] else points).astype(np.float32))
    return streamlines


def _subject_affine(rng: np.random.Generator) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = _rotation(np.deg2rad(rng.uniform(-3.0, 3.0, 3))) @ np.diag(rng.uniform(0.93, 1.07, 3))
    affine[:3, 3] = rng.uniform(-3.0, 3.0, 3)
    return affine


def _default_splits(n_subjects: int) -> dict[str, int]:
    if n_subjects < 3:
        return {"trainset": n_subjects}
    n_held = max(1, round(n_subjects / 6))
    return {"trainset": n_subjects - 2 * n_held, "validset": n_held, "testset": n_held}


def _check_splits(splits: Mapping[str, int] | None, n_subjects: int) -> dict[str, int]:
    splits = _default_splits(n_subjects) if splits is None else {str(k): int(v) for k, v in dict(splits).items()}
    if any(v < 0 for v in splits.values()) or sum(splits.values()) != n_subjects:
        raise ValueError(f"splits {splits} must be non-negative subject counts summing to n_subjects={n_subjects}")
    return splits


def generate_synthetic_tractoinferno(
    root: str | os.PathLike,
    *,
    n_subjects: int = 6,
    n_streamlines: int = 256,
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
) -> Path:
    """Write a synthetic dataset in the TractoInferno layout (RAS mm .trk files).

    Tracts: PYT_L/R, AF_L/R, SLF_L, IFOF_L, UF_L, ILF_L, CG_L, FX_L, CC_Fr_1, CC_Oc (see
    ``SYNTHETIC_TRACTS``). Subjects are named ``sub-1001``, ``sub-1002``, ... and assigned to splits in
    order. Output is deterministic for a seed (each subject/tract has its own random stream).

    Args:
        root: dataset folder to create (``derivatives/`` and ``dataset_description.json`` go inside).
        n_subjects: number of subjects.
        n_streamlines: streamlines per bundle file (exact).
        seed: random seed.
        splits: subjects per split, e.g. ``{"trainset": 4, "validset": 1, "testset": 1}`` (the default for 6
            subjects: about 1/6 each to validset and testset when there are 3 subjects or more).

    Returns:
        ``root``.

    Raises:
        ValueError: counts are not positive or the split counts do not sum to ``n_subjects``.

    Example:
        >>> root = generate_synthetic_tractoinferno("/tmp/synth_ti", n_subjects=3, n_streamlines=128)  # doctest: +SKIP
    """
    if n_subjects < 1 or n_streamlines < 1:
        raise ValueError(f"n_subjects and n_streamlines must be >= 1, got {n_subjects} and {n_streamlines}")
    split_counts = _check_splits(splits, n_subjects)
    root = Path(root)
    started = time.perf_counter()
    reference = nib.Nifti1Header()
    reference.set_data_shape(_REFERENCE_SHAPE)
    reference.set_zooms((1.0, 1.0, 1.0))
    reference.set_qform(_REFERENCE_AFFINE, code=1)
    reference.set_sform(_REFERENCE_AFFINE, code=1)

    subject_splits = [name for name, count in split_counts.items() for _ in range(count)]
    subjects = []
    for s, split in enumerate(subject_splits):
        subject = f"sub-{1001 + s}"
        subjects.append({"subject": subject, "split": split})
        affine = _subject_affine(np.random.default_rng([seed, s]))
        folder = root / "derivatives" / split / subject / "tractography"
        for b, tract in enumerate(_TRACTS.values()):
            streamlines = _bundle_streamlines(tract, n_streamlines, np.random.default_rng([seed, s, b + 1]), affine)
            save_streamlines(folder / f"{subject}__{tract.name}.trk", streamlines, reference=reference)

    description = {
        "Name": "Synthetic TractoInferno-like bundles (monai-genvq)",
        "BIDSVersion": "1.8.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "monai_genvq.apps.streamlines.synthetic", "Version": str(GENERATOR_VERSION)}],
        "Parameters": {"n_subjects": n_subjects, "n_streamlines": n_streamlines, "seed": seed, "splits": split_counts},
        "Bundles": list(SYNTHETIC_TRACTS),
        "Subjects": subjects,
        "CoordinateSpace": "RAS mm (MNI-like)",
        "GenerationSeconds": round(time.perf_counter() - started, 3),
    }
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    return root


def ensure_synthetic_tractoinferno(cache_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """Return a synthetic TractoInferno folder, generating it on first use (idempotent, atomic).

    Generation writes into a temporary folder that is renamed into place only once complete (with a
    marker holding the parameters), so an interrupted run never leaves a half dataset that is taken as
    complete; a folder made with other parameters is regenerated.

    Args:
        cache_dir: dataset folder. Default: ``<cache root>/synthetic_tractoinferno_v1`` for the default
            parameters and ``<cache root>/synthetic_tractoinferno_v1-<hash>`` otherwise, where the cache
            root is ``$MONAI_GENVQ_CACHE`` or ``~/.cache/monai_genvq``.
        kwargs: parameters of :func:`generate_synthetic_tractoinferno` (``n_subjects``, ``n_streamlines``,
            ``seed``, ``splits``).

    Returns:
        The dataset folder.

    Example:
        >>> records = discover_tractoinferno(ensure_synthetic_tractoinferno())  # doctest: +SKIP
    """
    allowed = {"n_subjects", "n_streamlines", "seed", "splits"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"unknown synthetic dataset parameter(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    defaults = {"n_subjects": 6, "n_streamlines": 256, "seed": 0, "splits": None}
    options = {**defaults, **kwargs}
    options["splits"] = _check_splits(options["splits"], options["n_subjects"])
    params = {"generator": "synthetic_tractoinferno", "version": GENERATOR_VERSION, **options}
    if cache_dir is None:
        default_params = {**defaults, "splits": _default_splits(defaults["n_subjects"])}
        suffix = "" if options == default_params else f"-{params_digest(params)}"
        cache_dir = default_cache_root() / f"synthetic_tractoinferno_v{GENERATOR_VERSION}{suffix}"

    return materialize_dataset(cache_dir, params, lambda folder: generate_synthetic_tractoinferno(folder, **options))
