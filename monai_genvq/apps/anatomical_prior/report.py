"""Evaluation report of the anatomical-prior segmentation: per-label Dice of several evaluators in one table.

Each method (the unsupervised model, the prior's mean shape, intensity k-means, a supervised UNet
trained by :func:`monai_genvq.apps.anatomical_prior.train_supervised_unet`) runs through its own MONAI ``SupervisedEvaluator`` with a ``MeanDice`` handler (per-image,
per-label details kept); a :class:`SegmentationReport` collects them and writes
``<output_dir>/metrics.json``, ``<output_dir>/results.md`` (Markdown table) and an overlay figure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from torch import nn

from monai_genvq.handlers.inference import load_checkpoint_file
from monai_genvq.metrics.segmentation import summarize_dice
from monai_genvq.utils.fileio import atomic_write_text, write_json
from monai_genvq.utils.tables import format_mean_std, markdown_table, mean_std
from monai_genvq.visualize.projections import save_latent_projection
from monai_genvq.visualize.segmentation import crop_around, label_overlay, save_overlay_grid

__all__ = ["SegmentationReport", "load_module_checkpoint"]

logger = logging.getLogger(__name__)


def load_module_checkpoint(module: nn.Module, path: str | os.PathLike, key: str = "model") -> nn.Module:
    """Load a checkpoint written by MONAI's ``CheckpointSaver`` (``{key: state}`` or the bare state dict) into ``module``.

    Raises:
        FileNotFoundError: no file at ``path`` (the message says which stage writes it).
        CorruptCheckpointError: the file cannot be read (truncated, not a weights file; named).
        ValueError: the file is not a checkpoint of this module (names the missing / unexpected keys).

    Example:
        >>> prior = load_module_checkpoint(LabelPriorVAE(), "outputs/default/prior/models/model.pt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint '{path}' does not exist; run the previous training stage first (or set its path)"
        )
    state = load_checkpoint_file(path, map_location="cpu")
    if isinstance(state, dict) and key in state and isinstance(state[key], dict):
        state = state[key]
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # size mismatches
        raise ValueError(
            f"checkpoint '{path}' does not fit {type(module).__name__} (same channels / latent_dim / image_size "
            f"as at training?): {str(e).splitlines()[-1].strip()}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"checkpoint '{path}' does not fit {type(module).__name__}: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]} (same channels / latent_dim / image_size as at training?)"
        )
    return module


def _label_map(x: Any) -> np.ndarray:
    """(L, *S) one-hot / probabilities or (1, *S) / (*S) ids -> (*S) int ids."""
    a = np.asarray(torch.as_tensor(x).detach().cpu().float())
    return (
        a.argmax(0) if a.ndim >= 3 and a.shape[0] > 1 else a.reshape(a.shape[1:] if a.ndim >= 3 else a.shape)
    ).astype(np.int64)


def _figure_slice(image: np.ndarray, label: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """2-D maps as they are; 3-D volumes -> the axial slice (last axis) holding the most foreground (image: first channel)."""
    image = image[0] if image.ndim == label.ndim + 1 else image.reshape(label.shape)
    if label.ndim == 2:
        return image, label, pred
    z = int(np.argmax((label > 0).reshape(-1, label.shape[-1]).sum(0)))
    return image[..., z], label[..., z], pred[..., z]


class _MethodHandler:
    def __init__(self, report: SegmentationReport, method: str) -> None:
        self.report, self.method = report, method

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.report._collect, self.method)
        engine.add_event_handler(Events.COMPLETED, self.report._complete, self.method)


class _LatentHandler:
    """Collects the image encoder's posterior means μ(x) of the evaluated (preprocessed) images and the label areas."""

    def __init__(self, report: SegmentationReport, network: nn.Module) -> None:
        self.report, self.network = report, network

    def attach(self, engine: Engine) -> None:
        # no write of its own: the report writes (with this figure) when an evaluator's method handler completes
        engine.add_event_handler(Events.STARTED, lambda e: self.report.latents.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)

    def _collect(self, engine: Engine) -> None:
        batch = engine.state.batch
        items = (
            batch
            if isinstance(batch, list)
            else [
                {k: v[i] for k, v in batch.items() if isinstance(v, torch.Tensor)}
                for i in range(len(batch[self.report.image_key]))
            ]
        )
        images = torch.stack([torch.as_tensor(b[self.report.image_key]) for b in items]).float()
        network = getattr(self.network, "module", self.network)
        with torch.no_grad():
            mu = network.encode(images.to(next(network.parameters()).device))[0]
        for code, item in zip(mu.reshape(len(items), -1).cpu().numpy(), items):
            label = _label_map(item[self.report.label_key])
            self.report.latents.append(
                (code, [int((label == k).sum()) for k in range(1, len(self.report.label_names) + 1)])
            )


class SegmentationReport:
    """Per-label Dice of several evaluators in one report: ``metrics.json``, ``results.md`` and an overlay figure.

    Attach ``report.handler(method)`` to each method's evaluator (it must carry a MONAI ``MeanDice``
    handler named ``metric_name`` with ``save_details=True``, i.e. per-image, per-label Dice in
    ``engine.state.metric_details``). When an evaluator completes, the report re-writes its files
    with every method seen so far. Scores and figures are in each image's own frame (the
    evaluators invert the preprocessing geometry of the predictions before scoring).

    Args:
        output_dir: receives ``metrics.json``, ``results.md`` and ``overlays.png``.
        label_names: names of labels 1..L-1.
        metric_name: name of the ``MeanDice`` handler in the evaluators.
        dataset_name: written into the report.
        n_figure: test items shown in the figure (rows); 0 disables it.
        figure_size: side of the square (pixels of the image's own frame) shown around the ground truth.
        notes: free text written into ``metrics.json``.
        image_key, label_key, pred_key: keys of the evaluator's (decollated, post-processed) output.

    Example:
        >>> report = SegmentationReport("eval", ["LV", "MYO", "RV"])  # doctest: +SKIP
        >>> evaluator = SupervisedEvaluator(..., val_handlers=[report.handler("my model")])  # doctest: +SKIP
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        label_names: Sequence[str] = ("LV", "MYO", "RV"),
        metric_name: str = "dice",
        dataset_name: str = "",
        n_figure: int = 6,
        figure_size: int = 96,
        notes: str = "",
        image_key: str = "image",
        label_key: str = "label",
        pred_key: str = "pred",
    ) -> None:
        self.output_dir, self.label_names = Path(output_dir), list(label_names)
        self.metric_name, self.dataset_name, self.notes = metric_name, dataset_name, notes
        self.n_figure, self.figure_size = int(n_figure), int(figure_size)
        self.image_key, self.label_key, self.pred_key = image_key, label_key, pred_key
        self.results: dict[str, dict[str, dict[str, float]]] = {}
        self.n_images: dict[str, int] = {}
        self.other_metrics: dict[str, dict[str, dict[str, float]]] = {}
        self.samples: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.latents: list[tuple[np.ndarray, list[int]]] = []

    def handler(self, method: str) -> _MethodHandler:
        """An Ignite handler (``attach(engine)``) reporting the evaluator's results under ``method``."""
        return _MethodHandler(self, method)

    def latent_handler(self, network: nn.Module) -> _LatentHandler:
        """An Ignite handler adding ``latent_pca.png``: PCA of ``network.encode(image)`` posterior means of the
        evaluated images, one panel per label coloured by its area in the ground truth (pixels/voxels).
        Attach it, together with :meth:`handler`, to one evaluator whose batches hold the preprocessed
        ``image`` the network encodes; the figure is written with the report."""
        return _LatentHandler(self, network)

    def _collect(self, engine: Engine, method: str) -> None:
        if engine.state.iteration == 1:
            self.samples[method] = []
        samples = self.samples.setdefault(method, [])
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        for item in outputs:
            if len(samples) >= self.n_figure:
                return
            samples.append(
                _figure_slice(
                    np.asarray(torch.as_tensor(item[self.image_key]).detach().cpu().float()),
                    _label_map(item[self.label_key]),
                    _label_map(item[self.pred_key]),
                )
            )

    def _complete(self, engine: Engine, method: str) -> None:
        details = getattr(engine.state, "metric_details", {}).get(self.metric_name)
        if details is None:
            raise KeyError(
                f"evaluator of {method!r} has no per-image '{self.metric_name}' details: attach a MeanDice handler "
                f"named {self.metric_name!r} with save_details=True"
            )
        details = torch.as_tensor(details).reshape(-1, len(self.label_names))
        self.results[method] = summarize_dice(details, self.label_names)
        self.n_images[method] = int(details.shape[0])
        self.other_metrics[method] = {}
        for name, value in engine.state.metrics.items():
            if name == self.metric_name:
                continue
            per_image = getattr(engine.state, "metric_details", {}).get(name)
            if per_image is not None:
                self.other_metrics[method][name] = mean_std(torch.as_tensor(per_image, dtype=torch.float64))
            elif isinstance(value, (int, float)):
                self.other_metrics[method][name] = {"mean": float(value), "std": 0.0, "n": int(details.shape[0])}
        self.write()

    def write(self) -> dict[str, Any]:
        """Write ``metrics.json``, ``results.md`` and the figure for the methods seen so far; returns the metrics."""
        out = self.output_dir
        figures = []
        if self.n_figure > 0 and self.samples:
            figure = self.write_figure(out / "overlays.png")
            if figure is not None:
                figures.append(str(figure))
        if len(self.latents) >= 3:
            codes = np.stack([c for c, _ in self.latents])
            areas = np.asarray([a for _, a in self.latents], np.float64)
            path = out / "latent_pca.png"
            save_latent_projection(
                codes,
                {f"{n} area (ground truth)": areas[:, k] for k, n in enumerate(self.label_names)},
                path,
                method="pca",
                title="image encoder μ(x), PCA",
            )
            figures.append(str(path))
        n = max(self.n_images.values(), default=0)
        metrics = {
            "dataset": self.dataset_name,
            "n_test_images": n,
            "label_names": self.label_names,
            "dice": self.results,
            "other_metrics": self.other_metrics,
            "figures": figures,
            "notes": self.notes,
        }
        write_json(out / "metrics.json", metrics)
        extra = sorted({k for m in self.other_metrics.values() for k in m})
        header = ["method", *self.label_names, "mean", *extra]
        rows = [
            [name]
            + [format_mean_std(r[k]) for k in (*self.label_names, "mean")]
            + [format_mean_std(self.other_metrics.get(name, {}).get(k)) for k in extra]
            for name, r in self.results.items()
        ]
        table = markdown_table(header, rows)
        atomic_write_text(
            out / "results.md",
            f"# Anatomical-prior segmentation: Dice on {self.dataset_name or 'test'} ({n} images)\n\n{table}\n\n{self.notes}\n",
        )
        logger.info("anatomical prior evaluation:\n%s", table)
        return metrics

    def write_figure(self, path: Path) -> Path | None:
        """Rows of test items: image, ground truth, then each method's prediction, overlaid in colour."""

        methods = [m for m in self.results if self.samples.get(m)]
        if not methods:
            return None
        n = min(len(self.samples[m]) for m in methods)
        rows = []
        for i in range(n):
            image, label, _ = self.samples[methods[0]][i]
            size = min(self.figure_size, max(label.shape))
            maps = [label] + [self.samples[m][i][2] for m in methods]
            cropped = crop_around([image, *maps], label, size)
            lo, hi = (float(v) for v in np.percentile(cropped[0], [1, 99]))
            rows.append(
                [label_overlay(cropped[0], None, value_range=(lo, hi))]
                + [label_overlay(cropped[0], m, value_range=(lo, hi)) for m in cropped[1:]]
            )
        columns = ["image", "ground truth", *methods]
        save_overlay_grid(rows, path, column_titles=columns, label_names=self.label_names)
        caption = " | ".join(columns)
        atomic_write_text(path.with_suffix(".txt"), f"columns: {caption}\n")
        return path
