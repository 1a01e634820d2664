"""Evaluation report of the cardiac VAEs: SSIM + disentanglement metrics, the paper's Table 1, figures."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.metrics import SSIMMetric

from monai_genvq.apps.cardiac.figures import attribute_traversal, plot_attribute_traversal, plot_ssim_distribution
from monai_genvq.metrics.disentanglement import compute_disentanglement, describe_disentanglement_settings
from monai_genvq.report import load_seed_results
from monai_genvq.utils.fileio import atomic_write_text, write_json
from monai_genvq.utils.tables import collect_metrics, markdown_table, mean_std
from monai_genvq.visualize.grids import plot_reconstruction_grid
from monai_genvq.visualize.projections import PROJECTION_NAMES, save_latent_projection

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = [
    "CardiacEvaluationReport",
    "METHOD_NAMES",
    "SEED_CROSS_DOMAIN",
    "SEED_TABLE1",
    "SSIM_SETTINGS",
    "cardiac_seed_table",
    "cardiac_table",
    "collect_cardiac_results",
    "training_summary",
]

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
_METRIC_KEYS = ("interpretability", "scc", "modularity", "sap", "mig")


def _seed_tables() -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, Any]]]:
    """Table 1 and the section 4.3 numbers of the Attri-SIVAE paper, from the one transcription of the seeds'
    numbers (``monai_genvq/seed_results.json``, read by :func:`monai_genvq.report.load_seed_results`)."""
    tables = {t["key"]: t for t in load_seed_results()["cardiac_attri_sivae"]["tables"]}
    table1: dict[str, dict[str, dict[str, float]]] = {k: {} for k in tables["table1"]["split_keys"]}
    for variant, row in zip(tables["table1"]["row_keys"], tables["table1"]["rows"]):
        for metric, cell in zip(tables["table1"]["column_keys"][1:], row[1:]):
            for dataset, value in zip(tables["table1"]["split_keys"], cell.split(tables["table1"]["split"])):
                table1[dataset].setdefault(variant, {})[metric] = float(value)
    cross: dict[str, dict[str, Any]] = {}
    for variant, row in zip(tables["cross_domain"]["row_keys"], tables["cross_domain"]["rows"]):
        ssim_mean, ssim_std = (float(v) for v in row[5].split("±"))
        cross[variant] = {
            "interpretability": float(row[1]),
            "per_attribute": tuple(float(v) for v in row[2:5]),
            "ssim": (ssim_mean, ssim_std),
        }
    return table1, cross


#: Attri-SIVAE (Di Folco et al.) Table 1: ACDC (black) and M&Ms (blue) columns, 5 seeds ("std < 0.01 for all
#: metrics, except the Modularity: ± 0.03"); metrics by AR-VAE's code; no MIG, no SSIM. SEED_CROSS_DOMAIN:
#: section 4.3, trained on M&Ms, tested on ACDC (Interpretability per attribute LVEDV, MEDV, RVEDV).
SEED_TABLE1, SEED_CROSS_DOMAIN = _seed_tables()
_TRAINING_KEYS = (
    "seed",
    "max_epochs",
    "image_size",
    "latent_dim",
    "reconstruction",
    "perceptual_delta",
    "perceptual_weights",
    "perceptual_network",
    "perceptual_distance",
    "perceptual_mse_weight",
    "gamma",
    "delta",
    "beta_neg",
)


def training_summary(settings_file: str | os.PathLike) -> dict[str, Any]:
    """What a trained model was trained with, from its run's ``run_settings.json``, incl. the perceptual term.

    Returns ``{}`` when the file does not exist (a model trained elsewhere). ``"perceptual_term"`` is
    ``"off"`` or ``"on (δ = ..., <network> <distance>, weights <file>)"``.

    Example:
        >>> training_summary("/no/such/run_settings.json")
        {}
    """
    path = Path(settings_file)
    if not path.is_file():
        return {}
    options = json.loads(path.read_text()).get("options", {})
    out = {k: options[k] for k in _TRAINING_KEYS if k in options}
    delta = float(out.get("perceptual_delta") or 0.0)
    out["perceptual_term"] = (
        f"on (δ = {delta:g}, {out.get('perceptual_network')} {out.get('perceptual_distance')}, "
        f"weights {out.get('perceptual_weights')})"
        if delta > 0
        else "off"
    )
    return out


def _mean_std_cell(values: Sequence[float], digits: int) -> str:
    values = [float(v) for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def cardiac_seed_table(
    per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]],
    seed_rows: Mapping[str, Mapping[str, float]] | None = None,
    digits: int = 3,
    seed_rows_seeds: str = "5",
) -> str:
    """Table 1 layout over several training seeds: the seed paper's rows first, then mean ± std per method.

    Args:
        per_seed: ``{seed: {method key: metrics.json content}}`` (e.g. :func:`collect_cardiac_results` per seed).
        seed_rows: the paper's numbers ``{method key: {"interpretability", "scc", "modularity", "sap", "ssim"}}``
            (any subset; ``"ssim"`` as (mean, std)), e.g. ``SEED_TABLE1["acdc"]`` or :data:`SEED_CROSS_DOMAIN`,
            shown as "<method> (seed paper)" rows; None: none.
        digits: decimals.
        seed_rows_seeds: the "seeds" cell of the seed paper's rows (its Table 1: 5 runs).

    Returns:
        Markdown: columns Method, seeds, Interp, SCC, Mod, SAP, MIG, SSIM; each cell of ours is the mean ±
        population std over the seeds that have that method (SSIM: mean over seeds of the per-image mean).

    Example:
        >>> r = {"interpretability": 0.5, "scc": 0.7, "modularity": 0.3, "sap": 0.2, "mig": 0.1, "ssim": {"mean": 0.9}}
        >>> print(cardiac_seed_table({0: {"attri_vae": r}, 1: {"attri_vae": r}}).splitlines()[2])
        | Attri-VAE | 0, 1 | 0.500 ± 0.000 | 0.700 ± 0.000 | 0.300 ± 0.000 | 0.200 ± 0.000 | 0.100 ± 0.000 | 0.900 ± 0.000 |
    """
    rows = []
    for method, m in (seed_rows or {}).items():
        name = f"{METHOD_NAMES.get(method, method)} (seed paper)"
        ssim = f"{m['ssim'][0]:.2f} ± {m['ssim'][1]:.2f}" if m.get("ssim") is not None else "–"
        rows.append(
            [name, seed_rows_seeds, *(f"{m[k]:.2f}" if m.get(k) is not None else "–" for k in _METRIC_KEYS), ssim]
        )
    methods = list(dict.fromkeys(k for results in per_seed.values() for k in results))
    methods = [k for k in METHOD_NAMES if k in methods] + [k for k in methods if k not in METHOD_NAMES]
    for method in methods:
        seeds = [s for s, results in per_seed.items() if method in results]
        cells = [_mean_std_cell([per_seed[s][method].get(k) for s in seeds], digits) for k in _METRIC_KEYS]
        ssim = [per_seed[s][method].get("ssim", {}).get("mean") for s in seeds]
        rows.append(
            [METHOD_NAMES.get(method, method), ", ".join(map(str, seeds)), *cells, _mean_std_cell(ssim, digits)]
        )
    return markdown_table(("Method", "seeds") + TABLE_COLUMNS, rows)


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
        bins: histogram bins of the MI estimator (``mi_estimator="histogram"``).
        outputs_root: folder whose variants are gathered into the combined table (None: skip).
        table_name: file name of the combined table.
        n_traversal: traversal steps.
        projection_methods: latent projections to draw ("pca", "tsne").
        seed: t-SNE seed.
        mi_estimator: mutual-information estimator of Interpretability, Modularity and MIG: ``"knn"``
            (default: sklearn ``mutual_info_regression`` as AR-VAE's metric code, which the seed used)
            or ``"histogram"`` (``bins`` fixed bins); see :func:`~monai_genvq.metrics.compute_disentanglement`.
        n_neighbors: k of the k-NN MI estimator.
        mi_random_state: seed of the k-NN estimator's jitter.
        scc_max_p: SCC counts a correlation only where its p-value is ``<= scc_max_p`` (AR-VAE's 0.05;
            ``None``: every correlation).
        training_settings: the trained run's ``run_settings.json`` (default ``<output_dir>/../run_settings.json``);
            its seed, length, reconstruction objective and whether the perceptual term was on are copied into
            ``metrics.json`` (``training``, ``perceptual_term``) and named in ``metrics.md`` and the combined table.

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
        mi_estimator: str = "knn",
        n_neighbors: int = 3,
        mi_random_state: int | None = 0,
        scc_max_p: float | None = 0.05,
        training_settings: str | os.PathLike | None = None,
    ) -> None:
        self.output_dir, self.method, self.network = Path(output_dir), method, network
        self.attribute_names = list(attribute_names)
        self.regularized_dims = None if regularized_dims is None else [int(d) for d in regularized_dims]
        self.dataset, self.bins, self.n_traversal = dataset, int(bins), int(n_traversal)
        self.outputs_root = None if outputs_root is None else Path(outputs_root)
        self.table_name = table_name
        self.projection_methods, self.seed = list(projection_methods), int(seed)
        self.training_settings = (
            self.output_dir.parent / "run_settings.json" if training_settings is None else Path(training_settings)
        )
        self.metric_options = {
            "mi_estimator": mi_estimator,
            "n_neighbors": int(n_neighbors),
            "random_state": mi_random_state,
            "scc_max_p": scc_max_p,
        }
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
        metrics = compute_disentanglement(z, y, self.bins, **self.metric_options)
        per_attr = metrics.pop("interpretability_per_attribute")
        domains = sorted(set(self.domains))
        training = training_summary(self.training_settings)
        result = {
            "method": self.method,
            "method_name": METHOD_NAMES.get(self.method, self.method),
            "dataset": self.dataset,
            "n_images": int(len(ssim)),
            "codes": "posterior mean μ",
            "attributes": self.attribute_names,
            "regularized_dims": self.regularized_dims,
            "training": training,
            "perceptual_term": training.get("perceptual_term", "unknown (no run_settings.json)"),
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
        text = (
            f"# {result['method_name']} on {self.dataset}\n\nCodes: posterior mean μ; {describe_disentanglement_settings(result)}; "
            "SSIM: MONAI SSIMMetric (Gaussian 11, σ 1.5, data range 1). "
            f"Training: seed {training.get('seed', '?')}, {training.get('max_epochs', '?')} epochs, "
            f"reconstruction {training.get('reconstruction', '?')}, perceptual term {result['perceptual_term']}.\n\n"
        )
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
            f"{result['method_name']}: traversal from 2nd to 98th percentile of each dim\n{self.dataset}",
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
                    f"# Cardiac VAEs ({eval_name}: {self.dataset})\n\nCodes: posterior mean μ; "
                    f"{describe_disentanglement_settings(result)}; SSIM mean ± std. Perceptual term: "
                    + "; ".join(
                        f"{METHOD_NAMES.get(k, k)} {m.get('perceptual_term', 'unknown')}" for k, m in collected.items()
                    )
                    + ".\n\n"
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
