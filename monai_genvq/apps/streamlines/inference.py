from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from monai_genvq.apps.streamlines.group_order import apply_group_order, canonical_group_order
from monai_genvq.apps.streamlines.io import check_unique_streamline_outputs, load_streamlines
from monai_genvq.apps.streamlines.transforms import StreamlineNormalizer, resample_streamlines

__all__ = ["streamline_inference_items"]


def streamline_inference_items(
    files: Sequence[str | os.PathLike],
    normalizer: StreamlineNormalizer,
    n_points: int = 64,
    group_size: int = 64,
    canonical_order: bool = True,
) -> list[dict]:
    """Cut whole tractogram files into network-sized groups for inference, keeping every streamline.

    Each file's streamlines are resampled to ``n_points``, normalised, and split in file order into
    ``ceil(S / group_size)`` groups; the last group is filled up by repeating the file's first
    streamlines, and ``count`` says how many entries of a group are real, so
    :class:`~monai_genvq.apps.streamlines.StreamlineWriter` can write back exactly S streamlines. With
    ``canonical_order`` (as in training) each group is put in canonical order and the item keeps
    ``order`` and ``flipped`` so the writer restores the file's own order and orientation.

    Args:
        files: .trk/.tck paths.
        normalizer: the normaliser the model was trained with.
        n_points: points per streamline.
        group_size: streamlines per group.
        canonical_order: put each group in canonical order, as the training data were.

    Returns:
        dicts with ``bundle`` (3, group_size, n_points) float32, ``source``, ``group``,
        ``n_groups``, ``count``, ``order`` and ``flipped``.

    Raises:
        ValueError: if ``files`` is empty.
        StreamlineFileError: for unreadable or invalid files (names the file), or two inputs whose outputs
            would share a name (``subj.trk`` and ``subj.tck``; names keep every dot but the extension's).
    """
    files = [str(f) for f in files]
    if not files:
        raise ValueError("no input streamline files were given to inference (check `input_files`).")
    check_unique_streamline_outputs(files)  # before anything is read or written
    items = []
    for path in files:
        streamlines = resample_streamlines(load_streamlines(path), n_points)
        n_groups = -(-len(streamlines) // group_size)
        order = np.resize(np.arange(len(streamlines)), n_groups * group_size)
        data = np.asarray(normalizer.normalize(streamlines[order].astype(np.float64)), dtype=np.float32)
        for g in range(n_groups):
            group = data[g * group_size : (g + 1) * group_size]
            order, flipped = np.arange(group_size), np.zeros(group_size, dtype=bool)
            if canonical_order:
                order, flipped = canonical_group_order(group)
                group = apply_group_order(group, order, flipped)
            items.append(
                {
                    "bundle": np.ascontiguousarray(group.transpose(2, 0, 1)),
                    "source": path,
                    "group": g,
                    "n_groups": n_groups,
                    "count": min(group_size, len(streamlines) - g * group_size),
                    "order": order,
                    "flipped": flipped,
                }
            )
    return items
