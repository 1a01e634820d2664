"""Datalists and the location prior of the anatomical-prior segmentation bundle.

Subjects of the ACDC ``training`` split are divided (by subject, seeded) into two disjoint sets:
``prior`` (their label maps train the stage-1 prior; their paired images train only the
supervised upper-bound baseline) and ``image`` (their images train stage 2; their labels are
never used for learning). ACDC ``testing`` is the evaluation set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_genvq.apps.anatomical_prior.synthetic_brain import ensure_synthetic_brain
from monai_genvq.data.cardiac import discover_acdc
from monai_genvq.data.cardiac_datalist import discover_cardiac_split, expand_slice_offsets, resolve_cardiac_dataset

__all__ = ["anatomical_prior_datalists", "decathlon_prior_datalists", "location_prior", "location_prior_from_dataset"]


def anatomical_prior_datalists(
    dataset_dir: str | os.PathLike | None = None,
    prior_fraction: float = 0.5,
    slice_offsets: Sequence[int] = (-1, 0, 1),
    seed: int = 0,
    synthetic: Mapping[str, Any] | None = None,
    max_subjects: int | None = None,
    test_slice_offsets: Sequence[int] = (0,),
    label_convention: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Datalists ``{"prior", "image", "test"}`` from an ACDC layout (real folder or the phantom).

    Args:
        dataset_dir: an ACDC folder; empty / None -> the embedded phantom (generated on first use).
        prior_fraction: fraction of training subjects whose label maps train the prior.
        slice_offsets: slices around the chosen (middle-of-stack) slice used per subject (prior and image sets).
        seed: seed of the subject split.
        synthetic: phantom parameters (:func:`~monai_genvq.data.ensure_synthetic_acdc`).
        max_subjects: keep at most this many subjects in each of ``prior``, ``image`` and ``test`` (quick runs).
        test_slice_offsets: slice offsets of the test items.
        label_convention: numbering of the ground-truth files (``"acdc"``, the default, or ``"mnms"``);
            see :func:`~monai_genvq.data.discover_acdc`.

    Without ``database/testing`` the ``"test"`` entry is a
    :class:`~monai_genvq.data.cardiac_datalist.MissingSplit` (training works; evaluation names the
    missing folder).

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
    train, test = (
        discover_acdc(root, "training", label_convention),
        discover_cardiac_split("acdc", root, "testing", label_convention),
    )
    if len(train) < 2:
        raise ValueError(f"ACDC folder '{root}' has {len(train)} training subject(s); need 2+ (prior and image sets)")
    order = np.random.default_rng(seed).permutation(len(train))
    n_prior = min(len(train) - 1, max(1, int(round(prior_fraction * len(train)))))
    prior = [train[i] for i in sorted(order[:n_prior])]
    image = [train[i] for i in sorted(order[n_prior:])]
    if max_subjects is not None:
        prior, image, test = prior[: int(max_subjects)], image[: int(max_subjects)], test[: int(max_subjects)]
    return {
        "prior": expand_slice_offsets(prior, slice_offsets),
        "image": expand_slice_offsets(image, slice_offsets),
        "test": expand_slice_offsets(test, test_slice_offsets),
    }


def _split_subjects(
    items: Sequence[dict], prior_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[dict]]:
    if not 0.0 < prior_fraction < 1.0 or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"prior_fraction and test_fraction must be in (0, 1); got {prior_fraction}, {test_fraction}")
    if len(items) < 3:
        raise ValueError(f"{len(items)} labelled subject(s); need 3+ (prior, image and test sets)")
    order = np.random.default_rng(seed).permutation(len(items))
    n_test = min(len(items) - 2, max(1, int(round(test_fraction * len(items)))))
    rest = order[n_test:]
    n_prior = min(len(rest) - 1, max(1, int(round(prior_fraction * len(rest)))))
    pick = lambda idx: [dict(items[i]) for i in sorted(idx)]  # noqa: E731
    return {"prior": pick(rest[:n_prior]), "image": pick(rest[n_prior:]), "test": pick(order[:n_test])}


def decathlon_prior_datalists(
    dataset_dir: str | os.PathLike | None = None,
    prior_fraction: float = 0.5,
    test_fraction: float = 0.25,
    seed: int = 0,
    synthetic: Mapping[str, Any] | None = None,
    max_subjects: int | None = None,
    image_contrast: str = "image",
) -> dict[str, list[dict[str, Any]]]:
    """Datalists ``{"prior", "image", "test"}`` of volumes from a Decathlon-layout folder (``dataset.json``).

    The labelled ``training`` cases (read with MONAI's ``load_decathlon_datalist``) are split by
    subject, seeded: ``test_fraction`` for evaluation, the rest into ``prior`` (label maps train
    the prior) and ``image`` (images train stage 2, labels unused) by ``prior_fraction``.

    Args:
        dataset_dir: a Decathlon-layout folder; empty / None -> the embedded 3-D brain phantom
            (:func:`~monai_genvq.apps.anatomical_prior.synthetic_brain.ensure_synthetic_brain`).
        prior_fraction, test_fraction: split fractions.
        seed: seed of the split.
        synthetic: phantom parameters.
        max_subjects: keep at most this many subjects per set (quick runs).
        image_contrast: the ``dataset.json`` key the ``image`` and ``test`` items take their image
            from (the bundle's ``image_contrast`` option). ``"image"``: the same contrast as the prior
            subjects' images. Another key (the phantom's ``"image_flair"``) gives the seed's
            cross-modality setting: the prior learns from the label maps of ``prior`` subjects (their
            ``image`` contrast, unused by the prior), stage 2 trains and the test scores on the other
            contrast. The split does not depend on it.

    Raises:
        FileNotFoundError: no ``dataset.json`` in ``dataset_dir``.
        ValueError: fewer than 3 labelled cases, fractions outside (0, 1), or an ``image_contrast``
            key some ``training`` entry lacks.

    Example:
        >>> lists = decathlon_prior_datalists(image_contrast="image_flair")  # doctest: +SKIP
        >>> lists["test"][0]["image"].endswith("imagesTr_flair/brain_002.nii.gz")  # doctest: +SKIP
        True
    """
    from monai.data import load_decathlon_datalist

    root = Path(dataset_dir).expanduser() if dataset_dir else ensure_synthetic_brain(**dict(synthetic or {}))
    meta = root / "dataset.json"
    if not meta.is_file():
        raise FileNotFoundError(f"'{root}' has no dataset.json: not a Decathlon-layout folder")
    items = load_decathlon_datalist(str(meta), is_segmentation=True, data_list_key="training", base_dir=str(root))
    missing = [i for i, it in enumerate(items) if image_contrast not in it]
    if missing:
        keys = sorted(k for k in items[0] if k.startswith("image")) if items else []
        raise ValueError(
            f"image_contrast {image_contrast!r}: {len(missing)} 'training' entr(y/ies) of '{meta}' have no such key "
            f"(the first entry's image keys: {keys})"
        )
    for it in items:
        it["subject"] = Path(str(it["image"])).name.split(".")[0]
    lists = _split_subjects(items, prior_fraction, test_fraction, seed)
    for part in ("image", "test"):
        for it in lists[part]:
            it["image"] = it[image_contrast]
    if max_subjects is not None:
        lists = {k: v[: int(max_subjects)] for k, v in lists.items()}
    return lists


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


def location_prior_from_dataset(
    dataset: Iterable[Mapping[str, Any]], num_labels: int, label_key: str = "label", alpha: float = 1.0
) -> torch.Tensor:
    """:func:`location_prior` over the ``label_key`` entries of a (transformed) dataset."""
    return location_prior((item[label_key] for item in dataset), num_labels, alpha)
