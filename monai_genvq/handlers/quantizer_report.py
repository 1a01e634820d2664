"""Evaluation report of an image VQ autoencoder: reconstruction MSE, SSIM, perplexity, codebook use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from monai.metrics import SSIMMetric
from monai.utils import CommonKeys as Keys
from torch import nn

from monai_genvq.metrics.codebook import CodebookUsageMetric
from monai_genvq.utils.fileio import atomic_write_text, write_json
from monai_genvq.utils.tables import collect_metrics, format_mean_std, markdown_table, mean_std
from monai_genvq.visualize.grids import plot_reconstruction_grid
from monai_genvq.visualize.projections import PROJECTION_NAMES, save_latent_projection

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["QuantizerEvaluationReport", "quantizer_table", "collect_quantizer_results"]

SSIM_SETTINGS = {"win_size": 11, "kernel": "gaussian", "kernel_sigma": 1.5, "data_range": 1.0, "k1": 0.01, "k2": 0.03}


def _codebook_figure_labels(n_vectors: int, used: torch.Tensor) -> list[str]:
    return ["encoder output"] * n_vectors + ["code (used)" if u else "code (unused)" for u in used.tolist()]


def quantizer_table(results: Mapping[str, Mapping]) -> str:
    """Markdown table, one row per quantizer: MSE, SSIM (mean ± std over images), perplexity, codebook use.

    Args:
        results: ``{method: metrics.json content}``.
    """
    rows = []
    for method, r in results.items():
        cb = r.get("codebook") or {}
        rows.append(
            [
                method,
                format_mean_std(r.get("mse"), 5),
                format_mean_std(r.get("ssim"), 4),
                f"{cb['perplexity']:.1f}" if cb else "–",
                f"{cb['code_use']:.3f} ({cb['codes_used']}/{cb['num_embeddings']})" if cb else "–",
                ("yes" if cb.get("collapsed") else "no") if cb else "–",
            ]
        )
    header = ["quantizer", "MSE", "SSIM", "perplexity", "codebook use", "collapsed"]
    return markdown_table(header, rows)


def collect_quantizer_results(outputs_dir: str | os.PathLike) -> dict[str, dict]:
    """``{variant: metrics}`` from every ``<outputs_dir>/<variant>/eval/metrics.json`` (sorted by variant)."""
    return {
        data.get("method", variant): data
        for variant, data in collect_metrics(outputs_dir).items()
        if "codebook" in data and "mse" in data
    }


class QuantizerEvaluationReport:
    """Writes ``metrics.json`` and ``metrics.md`` for an image autoencoder with a quantizer.

    Attach to an evaluator whose output holds ``pred`` (reconstructions) and ``label`` (inputs),
    (B, 1, H, W) with intensities in [0, 1]. Reported over the whole evaluation set:

    - reconstruction MSE per image (mean ± std);
    - SSIM per image with MONAI's :class:`~monai.metrics.SSIMMetric` defaults (Gaussian window 11,
      σ 1.5, data_range 1, k1 0.01, k2 0.03) — equal to scikit-image's
      ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``;
    - perplexity and codebook use (docs/METRICS.md) of the hard code map — the nearest code of every
      encoder output, ``network.bottleneck.quantize(network.encode(x))``, the indices a stage-2
      prior models — with a collapse verdict.

    Figures (listed under ``figures`` in ``metrics.json``, relative to ``output_dir``):
    ``reconstructions.png`` (first 8 inputs over their reconstructions) and, for quantizers,
    ``latent_<method>.png``: up to ``max_projected`` encoder output vectors (a seeded subsample of all
    latent positions) projected to 2-D together with the codebook, codes marked used / unused on the
    evaluation set — a collapsed or dead codebook is visible at a glance.

    With ``comparison_dir`` it also refreshes ``<comparison_dir>/quantizer_comparison.{md,json}``
    from every ``<comparison_dir>/*/eval/metrics.json`` (one row per evaluated quantizer).

    Args:
        output_dir: folder for ``metrics.json`` and ``metrics.md``.
        network: the evaluated :class:`~monai_genvq.networks.ResNetAutoencoder`.
        method: name of the quantizer variant.
        dataset: description of the evaluated data.
        collapse_threshold: perplexity (codes) below which the code map is reported as collapsed.
        comparison_dir: folder whose variants are tabulated together (e.g. the bundle's outputs/).
        figures: write the figures.
        projection_methods: latent projections to draw ("pca", "tsne").
        max_projected: encoder output vectors kept for the projection.

    Example:
        >>> report = QuantizerEvaluationReport("eval", network=net, method="neural_gas")  # doctest: +SKIP
        >>> report.attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        output_dir: str,
        network: nn.Module,
        method: str,
        dataset: str = "",
        collapse_threshold: float = 2.0,
        comparison_dir: str | None = None,
        figures: bool = True,
        projection_methods: tuple[str, ...] | list[str] = ("pca",),
        max_projected: int = 2000,
    ) -> None:
        self.output_dir = output_dir
        self.network = network
        self.method = method
        self.dataset = dataset
        self.collapse_threshold = collapse_threshold
        self.comparison_dir = comparison_dir
        self.figures = figures
        self.projection_methods = list(projection_methods)
        self.max_projected = int(max_projected)
        self.results: dict | None = None
        self._ssim = SSIMMetric(spatial_dims=2, data_range=1.0, reduction="none")
        self._reset()

    def _reset(self) -> None:
        self._mse: list[torch.Tensor] = []
        self._ssim_values: list[torch.Tensor] = []
        num_embeddings = getattr(getattr(self.network, "bottleneck", None), "num_embeddings", None)
        self._codes = CodebookUsageMetric(num_embeddings, self.collapse_threshold) if num_embeddings else None
        self._examples: tuple[torch.Tensor, torch.Tensor] | None = None
        self._vectors: list[torch.Tensor] = []
        self._generator = torch.Generator().manual_seed(0)

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, lambda _: self._reset())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._report)

    @torch.no_grad()
    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, list):  # decollated
            pred = torch.stack([torch.as_tensor(o[Keys.PRED]) for o in output])
            label = torch.stack([torch.as_tensor(o[Keys.LABEL]) for o in output])
        else:
            pred, label = torch.as_tensor(output[Keys.PRED]), torch.as_tensor(output[Keys.LABEL])
        pred, label = pred.detach().float(), label.detach().float()
        if pred.shape != label.shape or pred.dim() != 4:
            raise ValueError(
                f"expected (B, C, H, W) pred and label of one shape, got {tuple(pred.shape)}, {tuple(label.shape)}"
            )
        self._mse.append((pred - label).square().flatten(1).mean(1).cpu())
        self._ssim_values.append(self._ssim(pred.clamp(0, 1), label.clamp(0, 1)).reshape(-1).cpu())
        if self._examples is None:
            self._examples = (label[:8].cpu(), pred[:8].cpu())
        if self._codes is not None:
            was_training = self.network.training
            self.network.eval()
            z = self.network.encode(label)
            self._codes(self.network.bottleneck.quantize(z))
            self.network.train(was_training)
            if self.figures:
                flat = z.movedim(1, -1).reshape(-1, z.shape[1]).float().cpu()
                keep = self.max_projected - sum(len(v) for v in self._vectors)
                if keep > 0:
                    self._vectors.append(
                        flat[
                            torch.randperm(len(flat), generator=self._generator)[
                                : min(keep, max(1, self.max_projected // 8))
                            ]
                        ]
                    )

    def _report(self, engine: Engine) -> None:
        if not self._mse:
            raise ValueError("QuantizerEvaluationReport saw no batches; is the evaluation dataset empty?")
        mse, ssim = torch.cat(self._mse), torch.cat(self._ssim_values)
        self.results = {
            "method": self.method,
            "dataset": self.dataset,
            "n_images": int(mse.numel()),
            "mse": mean_std(mse),
            "ssim": {**mean_std(ssim), "settings": SSIM_SETTINGS},
            "codebook": self._codes.aggregate() if self._codes is not None else None,
            "codebook_basis": "hard code map: nearest code of each encoder output over the evaluation set",
            "collapse_threshold": self.collapse_threshold,
        }
        out = Path(self.output_dir)
        if self.figures:
            self.results["figures"] = self._write_figures(out)
        write_json(out / "metrics.json", self.results)
        title = f"# {self.method} on {self.dataset or 'evaluation set'} ({mse.numel()} images)\n\n"
        note = "SSIM: MONAI SSIMMetric, Gaussian window 11, σ 1.5, data_range 1; perplexity/use of the hard code map.\n"
        atomic_write_text(out / "metrics.md", title + quantizer_table({self.method: self.results}) + "\n" + note)
        if self.comparison_dir:
            results = collect_quantizer_results(self.comparison_dir)
            results[self.method] = self.results
            write_json(Path(self.comparison_dir) / "quantizer_comparison.json", results)
            atomic_write_text(
                Path(self.comparison_dir) / "quantizer_comparison.md",
                "# Quantizer comparison\n\n" + quantizer_table(results) + "\n" + note,
            )

    @torch.no_grad()
    def _write_figures(self, out: Path) -> list[str]:
        figures = []
        if self._examples is not None:
            plot_reconstruction_grid(
                *self._examples,
                out / "reconstructions.png",
                title=f"{self.method}: inputs (top), reconstructions (bottom)",
            )
            figures.append("reconstructions.png")
        if self._codes is not None and self._vectors:
            vectors = torch.cat(self._vectors)
            codebook = self.network.bottleneck.codebook.detach().float().cpu()
            indices = (
                torch.cat([b.reshape(-1) for b in self._codes.get_buffer()])
                if isinstance(self._codes.get_buffer(), list)
                else self._codes.get_buffer().reshape(-1)
            )
            used = torch.bincount(indices.long(), minlength=codebook.shape[0]) > 0
            for method in self.projection_methods:
                save_latent_projection(
                    torch.cat([vectors, codebook]),
                    {"": _codebook_figure_labels(len(vectors), used)},
                    out / f"latent_{method}.png",
                    method=method,
                    title=f"{self.method}: encoder outputs and codebook ({PROJECTION_NAMES.get(method, method)})",
                )
                figures.append(f"latent_{method}.png")
        return figures
