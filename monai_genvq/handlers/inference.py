"""Inference-time helpers shared by the bundles' ``inference.json``: where the weights are, latent codes to disk."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from monai_genvq.utils.fileio import atomic_write_text, write_json

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["resolve_checkpoint", "LatentCodeWriter"]


def resolve_checkpoint(*candidates: str | os.PathLike) -> str:
    """The first existing file of ``candidates``, else the first candidate (so the error names the usual place).

    The bundles' inference configs use ``resolve_checkpoint(@ckpt_dir/model.pt, @bundle_root/models/model.pt)``:
    weights trained in place (``outputs/<variant>/models/model.pt``) win, and a bundle laid out for
    MONAI Label / the model zoo (``<bundle>/models/model.pt``) works too. ``--checkpoint PATH`` overrides both.

    Example:
        >>> resolve_checkpoint("/no/such/model.pt", __file__) == __file__
        True
    """
    if not candidates:
        raise ValueError("resolve_checkpoint needs at least one path")
    for c in candidates:
        if Path(c).is_file():
            return str(c)
    return str(candidates[0])


class LatentCodeWriter:
    """Ignite handler: writes each input's posterior mean ``μ(x)`` (and the attribute-regularised dimensions by name).

    On every iteration it encodes ``engine.state.batch[image_key]`` with ``network.encode`` (a flat-latent
    VAE) and keeps ``μ``; when the run completes it writes ``latents.json`` (``{name: {"mu": [...],
    <attribute>: value}}``) and ``latents.csv`` in ``output_dir``. Names come from the batch's
    ``<image_key>_meta_dict``/MetaTensor ``filename_or_obj`` (file stem), else the running index.

    Args:
        network: the VAE (with ``encode(x) -> (mu, logvar)``).
        output_dir: where the two files go.
        attribute_names: names of the regularised attributes (Attri-VAE: LVEDV, MEDV, RVEDV).
        regularized_dims: latent dimension of each attribute (same order); None writes ``mu`` only.
        image_key: batch key of the (preprocessed) input images.

    Example:
        >>> LatentCodeWriter(net, "outputs/attri_sivae/inference", ["LVEDV"], [0]).attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        network: torch.nn.Module,
        output_dir: str | os.PathLike,
        attribute_names: Sequence[str] = (),
        regularized_dims: Sequence[int] | None = None,
        image_key: str = "image",
    ) -> None:
        if regularized_dims is not None and len(regularized_dims) != len(attribute_names):
            raise ValueError(f"{len(attribute_names)} attribute names but {len(regularized_dims)} regularised dims")
        self.network, self.output_dir, self.image_key = network, Path(output_dir), image_key
        self.attribute_names, self.regularized_dims = (
            list(attribute_names),
            None if regularized_dims is None else list(regularized_dims),
        )
        self.codes: dict[str, dict[str, Any]] = {}

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, lambda _: self.codes.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def _names(self, images: list[Any]) -> list[str]:
        names = []
        for i, img in enumerate(images):
            f = getattr(img, "meta", {}).get("filename_or_obj") if hasattr(img, "meta") else None
            names.append(Path(str(f)).name.split(".nii")[0] if f else f"{len(self.codes) + i:04d}")
        return names

    def iteration_completed(self, engine: Engine) -> None:
        batch = engine.state.batch  # a dict of batched tensors, or a list of items once decollated
        items = batch if isinstance(batch, list) else None
        images = [item[self.image_key] for item in items] if items is not None else list(batch[self.image_key])
        x = torch.stack([torch.as_tensor(im) for im in images]).to(next(self.network.parameters()).device).float()
        with torch.no_grad():
            mu = self.network.encode(x)[0].cpu()
        for name, m in zip(self._names(images), mu):
            entry: dict[str, Any] = {"mu": [float(v) for v in m]}
            for attr, dim in zip(self.attribute_names, self.regularized_dims or []):
                entry[attr] = float(m[dim])
            self.codes[name] = entry

    def completed(self, engine: Engine) -> None:
        write_json(self.output_dir / "latents.json", self.codes)
        dims = len(next(iter(self.codes.values()))["mu"]) if self.codes else 0
        header = ["name", *(self.attribute_names if self.regularized_dims else []), *(f"z{i}" for i in range(dims))]
        rows = [",".join(header)]
        for name, e in self.codes.items():
            attrs = [f"{e[a]:.6g}" for a in self.attribute_names] if self.regularized_dims else []
            rows.append(",".join([name, *attrs, *(f"{v:.6g}" for v in e["mu"])]))
        atomic_write_text(self.output_dir / "latents.csv", "\n".join(rows) + "\n")
