"""Evaluation report of the cardiac VAEs: SSIM + disentanglement metrics, the paper's Table 1, figures."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.metrics import SSIMMetric

from monai_genvq.apps.cardiac.figures import attribute_traversal, plot_attribute_traversal, plot_ssim_distribution
from monai_genvq.metrics.disentanglement import compute_disentanglement
from monai_genvq.utils.fileio import atomic_write_text, write_json
from monai_genvq.utils.tables import collect_metrics, markdown_table, mean_std
from monai_genvq.visualize.grids import plot_reconstruction_grid
from monai_genvq.visualize.projections import PROJECTION_NAMES, save_latent_projection

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["CardiacEvaluationReport", "METHOD_NAMES", "SSIM_SETTINGS", "cardiac_table", "collect_cardiac_results"]

METHOD_NAMES = {
    "beta_vae": "β-VAE",
    "attri_vae": "Attri-VAE",
    "soft_intro_vae": "Soft-Intro VAE",
    "attri_sivae": "Attri-SIVAE",
}
SSIM_SETTINGS = {
    "implementation": "monai.metrics.SSIMMetric",
    "kernel": "gaussian",
    "kernel_size": 11,
    "sigma": 1.5,
    "data_range": 1.0,
    "k1": 0.01,
    "k2": 0.03,
}
TABLE_COLUMNS = ("Interp", "SCC", "Mod", "SAP", "MIG", "SSIM")


def cardiac_table(results: Mapping[str, Mapping[str, Any]], digits: int = 3) -> str:
    """Markdown table in the layout of Attri-SIVAE's Table 1: methods × Interp, SCC, Mod, SAP (+ MIG), SSIM.

    Args:
        results: ``{method key or name: metrics.json content}``.
    """
    rows = []
    for method, m in results.items():
        ssim = m.get("ssim", {})
        rows.append(
            [
                METHOD_NAMES.get(method, method),
                *(
                    f"{m[k]:.{digits}f}" if m.get(k) is not None else "–"
                    for k in ("interpretability", "scc", "modularity", "sap", "mig")
                ),
                f"{ssim['mean']:.{digits}f} ± {ssim['std']:.{digits}f}" if ssim else "–",
            ]
        )
    return markdown_table(("Method",) + TABLE_COLUMNS, rows)


def collect_cardiac_results(outputs_dir: str | os.PathLike, eval_name: str = "eval") -> dict[str, dict[str, Any]]:
    """Read ``<outputs_dir>/<variant>/<eval_name>/metrics.json`` of every variant, in the paper's row order."""
    found = collect_metrics(outputs_dir, f"*/{eval_name}/metrics.json")
    order = [k for k in METHOD_NAMES if k in found] + [k for k in found if k not in METHOD_NAMES]
    return {k: found[k] for k in order}


class CardiacEvaluationReport:
    """Writes ``metrics.json``, ``metrics.md`` and figures when an evaluation epoch completes.

    Attach to a :class:`monai_genvq.engines.VAEEvaluator` (its output holds ``image``, ``pred``,
    ``latent`` = posterior mean μ and ``attributes``). Computes per-image SSIM with MONAI's
    :class:`~monai.metrics.SSIMMetric` (:data:`SSIM_SETTINGS`), Interpretability, Modularity, SAP,
    SCC and MIG of μ against the attributes (:func:`~monai_genvq.metrics.compute_disentanglement`),
    per-domain SSIM, and draws an attribute traversal along each regularised dim (or, for
    unregularised models, along the most informative dim of each attribute), the SSIM distribution,
    a reconstruction grid and projections of μ (PCA, and t-SNE as Attri-VAE shows its latent space)
    with one panel per attribute coloured by its value; the figures are listed (relative to
    ``output_dir``) under ``figures`` in ``metrics.json``. It also refreshes ``<outputs_root>/<table_name>`` with every
    variant's results found under ``outputs_root``.

    Args:
        output_dir: folder of this evaluation (``.../outputs/<variant>/eval``).
        method: variant key (``attri_sivae``, ``beta_vae``, ...).
        network: the evaluated VAE (for traversals).
        attribute_names: names of the attribute columns.
        regularized_dims: latent dims tied to the attributes (None for unregularised models).
        dataset: description of the evaluated data (written to the report).
        bins: histogram bins of the MI estimator.
        outputs_root: folder whose variants are gathered into the combined table (None: skip).
        table_name: file name of the combined table.
        n_traversal: traversal steps.
        projection_methods: latent projections to draw ("pca", "tsne").
        seed: t-SNE seed.

    Example:
        >>> CardiacEvaluationReport("out/eval", "attri_sivae", net).attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        method: str,
        network: torch.nn.Module,
        attribute_names: Sequence[str] = ("LVEDV", "MEDV", "RVEDV"),
        regularized_dims: Sequence[int] | None = None,
        dataset: str = "",
        bins: int = 20,
        outputs_root: str | os.PathLike | None = None,
        table_name: str = "table1.md",
        n_traversal: int = 7,
        projection_methods: Sequence[str] = ("pca", "tsne"),
        seed: int = 0,
    ) -> None:
        self.output_dir, self.method, self.network = Path(output_dir), method, network
        self.attribute_names = list(attribute_names)
        self.regularized_dims = None if regularized_dims is None else [int(d) for d in regularized_dims]
        self.dataset, self.bins, self.n_traversal = dataset, int(bins), int(n_traversal)
        self.outputs_root = None if outputs_root is None else Path(outputs_root)
        self.table_name = table_name
        self.projection_methods, self.seed = list(projection_methods), int(seed)
        self.ssim = SSIMMetric(spatial_dims=2, data_range=1.0, reduction="none")
        self._reset()

    def _reset(self, *_: Any) -> None:
        self.latents: list[torch.Tensor] = []
        self.attributes: list[torch.Tensor] = []
        self.ssims: list[torch.Tensor] = []
        self.domains: list[str] = []
        self.examples: tuple[torch.Tensor, torch.Tensor] | None = None

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        out = engine.state.output
        x, pred = out["image"].float(), out["pred"].float()
        self.ssims.append(self.ssim(pred, x).reshape(-1).cpu())
        self.latents.append(out["latent"].detach().cpu())
        if out.get("attributes") is None:
            raise ValueError("the evaluation batches hold no 'attributes'; add CardiacAttributesd to the preprocessing")
        self.attributes.append(out["attributes"].detach().cpu())
        batch = engine.state.batch if isinstance(engine.state.batch, Mapping) else {}
        domains = batch.get("domain", ["all"] * x.shape[0])
        self.domains += [str(d) for d in domains]
        if self.examples is None:
            self.examples = (x[:8].cpu(), pred[:8].cpu())

    def _write(self, engine: Engine) -> None:
        z, y = torch.cat(self.latents).numpy(), torch.cat(self.attributes).numpy()
        ssim = torch.cat(self.ssims).numpy().astype(float)
        metrics = compute_disentanglement(z, y, self.bins)
        per_attr = metrics.pop("interpretability_per_attribute")
        domains = sorted(set(self.domains))
        result = {
            "method": self.method,
            "method_name": METHOD_NAMES.get(self.method, self.method),
            "dataset": self.dataset,
            "n_images": int(len(ssim)),
            "codes": "posterior mean μ",
            "attributes": self.attribute_names,
            "regularized_dims": self.regularized_dims,
            **metrics,
            "interpretability_per_attribute": {
                name: {"dim": int(d), "r2": float(s)}
                for name, d, s in zip(self.attribute_names, per_attr["dims"], per_attr["scores"])
            },
            "ssim": {**mean_std(ssim), "settings": SSIM_SETTINGS},
            "ssim_per_domain": {
                d: {
                    "mean": float(ssim[np.array(self.domains) == d].mean()),
                    "n": int((np.array(self.domains) == d).sum()),
                }
                for d in domains
            },
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        np.save(self.output_dir / "ssim_per_image.npy", ssim)
        text = f"# {result['method_name']} on {self.dataset}\n\nCodes: posterior mean μ; SSIM: MONAI SSIMMetric (Gaussian 11, σ 1.5, data range 1).\n\n"
        atomic_write_text(self.output_dir / "metrics.md", text + cardiac_table({self.method: result}))

        dims = self.regularized_dims if self.regularized_dims is not None else per_attr["dims"]
        lo, hi = np.percentile(z[:, dims], 2, axis=0), np.percentile(z[:, dims], 98, axis=0)
        ref = torch.as_tensor(z[0], dtype=torch.float32)
        device = next(self.network.parameters()).device
        rows, row_values = [], []
        for k, d in enumerate(dims):
            values = np.linspace(lo[k], hi[k], self.n_traversal).tolist()
            rows.append(attribute_traversal(self.network, ref.to(device), [d], values)[0].cpu())
            row_values.append(values)
        names = [f"{n} (z{d})" for n, d in zip(self.attribute_names, dims)]
        plot_attribute_traversal(
            torch.stack(rows),
            names,
            list(np.linspace(0, 1, self.n_traversal)),
            self.output_dir / "attribute_traversal.png",
            f"{result['method_name']}: traversal from 2nd to 98th percentile of each dim",
            row_values=row_values,
        )
        plot_ssim_distribution({result["method_name"]: ssim.tolist()}, self.output_dir / "ssim_distribution.png")
        figures = ["attribute_traversal.png", "ssim_distribution.png"]
        if self.examples is not None:
            plot_reconstruction_grid(
                *self.examples, self.output_dir / "reconstructions.png", title=result["method_name"]
            )
            figures.append("reconstructions.png")
        if len(z) > 2:
            for method in self.projection_methods:
                save_latent_projection(
                    z,
                    {n: y[:, k] for k, n in enumerate(self.attribute_names)},
                    self.output_dir / f"latent_{method}.png",
                    method=method,
                    seed=self.seed,
                    title=f"{result['method_name']}: posterior mean μ ({PROJECTION_NAMES.get(method, method)})",
                )
                figures.append(f"latent_{method}.png")
        result["figures"] = figures
        write_json(self.output_dir / "metrics.json", result)
        if self.outputs_root is not None:
            eval_name = self.output_dir.name
            collected = collect_cardiac_results(self.outputs_root, eval_name)
            if collected:
                header = (
                    f"# Cardiac VAEs ({eval_name}: {self.dataset})\n\nCodes: posterior mean μ; SSIM mean ± std.\n\n"
                )
                atomic_write_text(
                    self.outputs_root / f"{eval_name}_{self.table_name}", header + cardiac_table(collected)
                )
                if len(collected) > 1:
                    plot_ssim_distribution(
                        {
                            METHOD_NAMES.get(k, k): np.load(
                                self.outputs_root / k / eval_name / "ssim_per_image.npy"
                            ).tolist()
                            for k in collected
                            if (self.outputs_root / k / eval_name / "ssim_per_image.npy").is_file()
                        },
                        self.outputs_root / f"{eval_name}_ssim_distribution.png",
                    )
