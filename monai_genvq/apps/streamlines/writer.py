from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from monai.utils import CommonKeys as Keys

from monai_genvq.apps.streamlines.group_order import invert_group_order
from monai_genvq.apps.streamlines.io import save_streamlines, streamline_stem
from monai_genvq.apps.streamlines.transforms import StreamlineNormalizer

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["StreamlineWriter"]


class StreamlineWriter:
    """Writes reconstructed groups back to one .trk per input file, in the input's millimetre space.

    Works with items from :func:`~monai_genvq.apps.streamlines.streamline_inference_items`: groups of one
    source are gathered (in any batch order), put back in the file's streamline order and orientation,
    mapped back to mm with ``normalizer``, trimmed to the real streamlines, and saved as ``<output_dir>/<stem>_recon.trk`` with the source file as the
    spatial reference, so TrackVis, MI-Brain and dipy open it aligned with the input.

    Args:
        output_dir: folder for the reconstructed files (created).
        normalizer: the normaliser of the model's training data.
        suffix: appended to the source file's stem.

    Example (in a bundle config):
        ``{"_target_": "monai_genvq.apps.streamlines.StreamlineWriter", "output_dir": "@inference_dir",
        "normalizer": "@normalizer"}``
    """

    def __init__(self, output_dir: str | os.PathLike, normalizer: StreamlineNormalizer, suffix: str = "_recon") -> None:
        self.output_dir = Path(output_dir)
        self.normalizer = normalizer
        self.suffix = suffix
        self.written: list[Path] = []
        self._pending: dict[str, dict[int, np.ndarray]] = {}

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output, batch = engine.state.output, engine.state.batch
        pred = output[Keys.PRED] if isinstance(output, dict) else torch.stack([o[Keys.PRED] for o in output])
        pred = torch.as_tensor(pred).detach().cpu().double().numpy()
        for i, source in enumerate(batch["source"]):
            count, n_groups = int(batch["count"][i]), int(batch["n_groups"][i])
            groups = self._pending.setdefault(str(source), {})
            group = pred[i].transpose(1, 2, 0)
            if "order" in batch:
                group = invert_group_order(group, np.asarray(batch["order"][i]), np.asarray(batch["flipped"][i]))
            groups[int(batch["group"][i])] = group[:count]
            if len(groups) == n_groups:
                self._write(str(source), [groups[g] for g in range(n_groups)])
                del self._pending[str(source)]

    def _write(self, source: str, groups: list[np.ndarray]) -> None:
        streamlines_mm = np.asarray(self.normalizer.denormalize(np.concatenate(groups)), dtype=np.float32)
        stem = streamline_stem(source)  # the whole name but the extension: subj.run1.trk -> subj.run1
        path = self.output_dir / f"{stem}{self.suffix}.trk"
        reference = source if source.endswith(".trk") else None
        save_streamlines(path, list(streamlines_mm), reference=reference)
        self.written.append(path)
