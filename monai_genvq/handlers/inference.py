"""Inference-time helpers shared by the bundles' ``evaluate.json`` / ``inference.json``: where the weights are,
reading them (:func:`load_checkpoint_file`, :class:`CheckedCheckpointLoader`), latent codes to disk."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from monai.handlers import CheckpointLoader
from monai.networks.utils import copy_model_state

from monai_genvq.handlers.resume import CorruptCheckpointError
from monai_genvq.utils.fileio import atomic_write_text, write_json

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = [
    "CheckedCheckpointLoader",
    "LatentCodeWriter",
    "checked_checkpoint",
    "load_checkpoint_file",
    "resolve_checkpoint",
]


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of a user-placed checkpoint, with errors that name the file.

    ``weights_only=True``: tensors and plain containers only, so a planted file whose unpickling would
    run code is refused rather than executed.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptCheckpointError: the file is truncated (e.g. an interrupted copy), is not a PyTorch
            checkpoint, or holds objects other than weights; the message names it and says to retrain
            or pass another checkpoint.

    Example:
        >>> state = load_checkpoint_file("outputs/vanilla/models/model.pt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint '{path}' does not exist; train first, or pass another checkpoint with --checkpoint PATH"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip: RuntimeError; not a checkpoint: UnpicklingError / EOFError / OSError
        raise CorruptCheckpointError(
            f"checkpoint '{path}' cannot be read: it is truncated, corrupt or not a PyTorch weights file "
            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
            "retrain to write it again, or pass another checkpoint with --checkpoint PATH"
        ) from exc


def checked_checkpoint(path: str | os.PathLike) -> str:
    """``path`` after checking that an existing file there loads (:func:`load_checkpoint_file`); a missing one is
    returned unchecked, so the code that needs it reports it with its own advice.

    For configs that hand a checkpoint path to code outside the handlers (e.g. the stage-1 weights of the
    prior configs, loaded by :class:`~monai_genvq.networks.VQStage1`): a truncated or foreign file is
    refused with :class:`CorruptCheckpointError` naming it, before anything is built.

    Example:
        >>> checked_checkpoint("/no/such/model.pt")
        '/no/such/model.pt'
    """
    if Path(path).is_file():
        load_checkpoint_file(path)
    return str(path)


class CheckedCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` whose unreadable or mismatching file raises :class:`CorruptCheckpointError`.

    Same arguments and behaviour (``weights_only=True``); a truncated / non-checkpoint file, or one whose
    tensors do not fit the network, is reported naming the file, with what to do (retrain, or pass another
    checkpoint) instead of a bare ``RuntimeError`` / ``OSError`` from ``torch.load``.

    Example:
        In a bundle config: ``{"_target_": "monai_genvq.handlers.CheckedCheckpointLoader",
        "load_path": "@checkpoint", "load_dict": {"model": "@network"}, "map_location": "@device"}``
    """

    def __call__(self, engine: Engine) -> None:
        """Load the file (see :func:`load_checkpoint_file`), then restore ``load_dict`` as ``CheckpointLoader`` does."""
        from ignite.handlers import Checkpoint  # ignite is imported only when a handler runs

        checkpoint = load_checkpoint_file(self.load_path, self.map_location)
        try:
            k = next(iter(self.load_dict))
            if len(self.load_dict) == 1 and (not isinstance(checkpoint, dict) or k not in checkpoint):
                checkpoint = {k: checkpoint}  # a bare state dict of the single object
            if not self.strict_shape:
                for k, obj in list(self.load_dict.items()):
                    if isinstance(obj, torch.nn.Module):
                        checkpoint[k] = copy_model_state(obj, checkpoint, inplace=False)[0]
                    else:
                        warnings.warn(
                            "`strict_shape` is False: only the model is loaded, the rest of `load_dict` is skipped.",
                            stacklevel=2,
                        )
                        self.load_dict.pop(k)
            prior_max_epochs = engine.state.max_epochs
            Checkpoint.load_objects(to_load=self.load_dict, checkpoint=checkpoint, strict=self.strict)
        except (RuntimeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise CorruptCheckpointError(
                f"checkpoint '{self.load_path}' does not fit this network / config "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                "retrain with this config, or pass the matching checkpoint with --checkpoint PATH"
            ) from exc
        if prior_max_epochs is not None and engine.state.epoch > prior_max_epochs:
            raise ValueError(
                f"Epoch count ({engine.state.epoch}) in checkpoint '{self.load_path}' is larger than the engine's "
                f"max_epochs ({prior_max_epochs})."
            )
        engine.state.max_epochs = prior_max_epochs
        self.logger.info(f"Restored all variables from {self.load_path}")


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
