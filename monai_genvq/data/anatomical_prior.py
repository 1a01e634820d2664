"""Datalists and the location prior of the anatomical-prior segmentation bundle.

Subjects of the ACDC ``training`` split are divided (by subject, seeded) into two disjoint sets:
``prior`` (their label maps train the stage-1 prior; their paired images train only the
supervised upper-bound baseline) and ``image`` (their images train stage 2; their labels are
never used for learning). ACDC ``testing`` is the evaluation set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from monai_genvq.data.cardiac import discover_acdc
from monai_genvq.data.cardiac_datalist import resolve_cardiac_dataset

__all__ = ["anatomical_prior_datalists", "location_prior", "location_prior_from_dataset"]


def _expand(records: Sequence[dict], offsets: Sequence[int]) -> list[dict]:
    return [{**r, "slice_offset": int(o)} for r in records for o in offsets]


def anatomical_prior_datalists(
    dataset_dir: str | os.PathLike | None = None,
    prior_fraction: float = 0.5,
    slice_offsets: Sequence[int] = (-1, 0, 1),
    seed: int = 0,
    synthetic: Mapping[str, Any] | None = None,
    max_subjects: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Datalists ``{"prior", "image", "test"}`` from an ACDC layout (real folder or the phantom).

    Args:
        dataset_dir: an ACDC folder; empty / None -> the embedded phantom (generated on first use).
        prior_fraction: fraction of training subjects whose label maps train the prior.
        slice_offsets: short-axis slices around mid-ventricle used per subject (prior and image sets).
        seed: seed of the subject split.
        synthetic: phantom parameters (:func:`~monai_genvq.data.ensure_synthetic_acdc`).
        max_subjects: keep at most this many subjects in each of ``prior`` and ``image`` (quick runs).

    Raises:
        ValueError: fewer than two training subjects, or ``prior_fraction`` outside (0, 1).

    Example:
        >>> lists = anatomical_prior_datalists()  # doctest: +SKIP
        >>> {r["subject"] for r in lists["prior"]} & {r["subject"] for r in lists["image"]}  # doctest: +SKIP
        set()
    """
    if not 0.0 < prior_fraction < 1.0:
        raise ValueError(f"prior_fraction must be in (0, 1); got {prior_fraction}")
    root = resolve_cardiac_dataset("acdc", dataset_dir, synthetic)
    train, test = discover_acdc(root, "training"), discover_acdc(root, "testing")
    if len(train) < 2:
        raise ValueError(f"ACDC folder '{root}' has {len(train)} training subject(s); need 2+ (prior and image sets)")
    order = np.random.default_rng(seed).permutation(len(train))
    n_prior = min(len(train) - 1, max(1, int(round(prior_fraction * len(train)))))
    prior = [train[i] for i in sorted(order[:n_prior])]
    image = [train[i] for i in sorted(order[n_prior:])]
    if max_subjects is not None:
        prior, image, test = prior[: int(max_subjects)], image[: int(max_subjects)], test[: int(max_subjects)]
    return {"prior": _expand(prior, slice_offsets), "image": _expand(image, slice_offsets), "test": _expand(test, (0,))}


def location_prior(label_maps: Iterable[Any], num_labels: int, alpha: float = 1.0) -> torch.Tensor:
    """Voxel-wise label frequencies ``π_l(v) = (n_l(v) + α) / (N + L·α)`` of a set of label maps.

    Args:
        label_maps: integer maps, each (*spatial) or (1, *spatial) (a leading axis of 1 is taken as the
            channel), all the same shape.
        num_labels: L.
        alpha: additive (Laplace) smoothing so no label has zero probability anywhere.

    Returns:
        (L, *spatial) float32 tensor summing to 1 over labels.

    Raises:
        ValueError: no maps, differing shapes, or values outside ``0..L-1``.

    Example:
        >>> location_prior([np.array([[0, 1], [1, 1]]), np.array([[0, 0], [1, 1]])], 2, alpha=0.0)[1].tolist()
        [[0.0, 0.5], [1.0, 1.0]]
    """
    counts, n = None, 0
    for lab in label_maps:
        t = torch.as_tensor(np.asarray(lab)).long()
        t = t[0] if t.ndim > 1 and t.shape[0] == 1 else t
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_labels):
            raise ValueError(f"label map {n} holds values outside the declared label set 0..{num_labels - 1}")
        onehot = torch.nn.functional.one_hot(t, num_labels).movedim(-1, 0).float()
        if counts is None:
            counts = torch.zeros_like(onehot)
        elif counts.shape != onehot.shape:
            raise ValueError(f"label map {n} has shape {tuple(t.shape)}; the first had {tuple(counts.shape[1:])}")
        counts += onehot
        n += 1
    if counts is None:
        raise ValueError("location_prior needs at least one label map")
    return (counts + alpha) / (n + num_labels * alpha)


def location_prior_from_dataset(dataset: Iterable[Mapping[str, Any]], num_labels: int, label_key: str = "label", alpha: float = 1.0) -> torch.Tensor:
    """:func:`location_prior` over the ``label_key`` entries of a (transformed) dataset."""
    return location_prior((item[label_key] for item in dataset), num_labels, alpha)
