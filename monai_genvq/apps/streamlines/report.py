from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from monai.utils import CommonKeys as Keys
from torch import nn

from monai_genvq.apps.streamlines.buan import bundle_adjacency_batched, summarize_buan
from monai_genvq.apps.streamlines.figures import save_streamline_render, save_subject_render
from monai_genvq.apps.streamlines.transforms import StreamlineNormalizer
from monai_genvq.networks.bottlenecks import codebook_statistics
from monai_genvq.utils.fileio import atomic_write_text, write_json
from monai_genvq.utils.tables import format_mean_std, markdown_table, mean_std
from monai_genvq.visualize.projections import PROJECTION_NAMES, save_latent_projection

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["StreamlineEvaluationReport", "latent_perturbation_buan"]


@torch.no_grad()
def latent_perturbation_buan(
    network: nn.Module,
    bundles: torch.Tensor,
    epsilons: Sequence[float],
    threshold: float,
    seed: int = 0,
    batch_size: int = 64,
) -> list[dict[str, float]]:
    """Latent perturbation analysis of the VQ-Diff paper: BUAN(decode(bottleneck(z + ε·n)), x).

    ``z`` is the encoder output, ``n ~ N(0, I)`` (seeded, the same draw for every ε), and the
    perturbed latent goes through the bottleneck in evaluation mode before decoding, so a
    quantizer that snaps back to its codes is credited for it.

    Args:
        network: a :class:`~monai_genvq.networks.ResNetAutoencoder`.
        bundles: (N, 3, S, P) input groups in the space ``threshold`` refers to.
        epsilons: perturbation scales.
        threshold: BUAN threshold.
        seed: seed of the noise draw.
        batch_size: groups per forward pass.

    Returns:
        one ``{"epsilon", "mean", "std"}`` dict per ε.
    """
    was_training = network.training
    network.eval()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    scores: dict[float, list[torch.Tensor]] = {float(e): [] for e in epsilons}
    for start in range(0, len(bundles), batch_size):
        x = bundles[start : start + batch_size]
        statistics = network.input_statistics(x)
        z = network.encode(x, statistics)
        noise = torch.randn(z.shape, generator=generator).to(z)
        for eps in scores:
            rec = network.decode(network.bottleneck(z + eps * noise).latent, statistics)
            scores[eps].append(bundle_adjacency_batched(rec, x, threshold=threshold))
    network.train(was_training)
    out = []
    for eps, chunks in scores.items():
        out.append({"epsilon": eps, **mean_std(torch.cat(chunks))})
    return out


class StreamlineEvaluationReport:
    """Writes ``metrics.json`` and ``metrics.md`` of a streamline-autoencoder evaluation.

    Attach to an evaluator whose output holds ``pred`` (reconstructions) and ``label`` (inputs),
    both (B, 3, S, P) in normalised space, and whose batches carry ``name`` (bundle names). At the
    end of the run it reports, per bundle name and overall (mean ± std over groups):

    - BUAN (Chandio et al. 2020) in normalised [-1, 1] space at ``threshold`` (the VQ-Diff paper's
      0.05, ``clust_thr=[0]``) and in millimetres at ``threshold_mm`` (dipy's default 6 mm), after
      mapping both bundles back with ``normalizer``;
    - reconstruction MSE (normalised space) and mean point error in mm;
    - for quantized bottlenecks, perplexity and codebook use on the evaluation set;
    - optionally the latent perturbation analysis (:func:`latent_perturbation_buan`);
    - figures (listed under ``figures`` in ``metrics.json``, paths relative to ``output_dir``):
      ``streamlines.png``, original vs reconstructed streamlines (mm) of one group of each of the
      first ``render_groups`` bundles, and ``latent_<method>.png``, the codes the decoder sees
      (bottleneck output, flattened per group) projected to 2-D, coloured by bundle name, and
      ``subject_<id>.png``, every evaluated group of one subject (all its bundles, in mm) original beside
      reconstruction (the paper's full-subject figure, Fig. 3.1; :func:`save_subject_render`).

    Args:
        output_dir: folder for ``metrics.json`` and ``metrics.md`` (created).
        normalizer: the training normaliser, to map back to mm.
        method: method name used in the tables (e.g. "vqdiff").
        dataset: description of the evaluated data, written with the numbers.
        threshold: BUAN threshold in normalised space.
        threshold_mm: BUAN threshold in mm.
        network: the evaluated network; needed for codebook statistics and perturbation.
        perturbation_epsilons: ε grid; empty disables the analysis.
        seed: seed of the perturbation noise.
        name_key: batch key with bundle names.
        figures: write the figures.
        render_groups: bundles shown in the streamline render.
        projection_methods: latent projections to draw ("pca", "tsne").
        subject_key: batch key with subject ids (for the full-subject figure).
        figure_subject: subject of the full-subject figure; None picks the evaluated subject with the most
            bundle names (the first in sorted order on ties). The figure is skipped when batches carry no
            subject ids.
        subject_max_groups: at most this many groups are drawn in the full-subject figure, taken in turn
            from each bundle name so every bundle appears.
    """

    def __init__(
        self,
        output_dir: str,
        normalizer: StreamlineNormalizer,
        method: str,
        dataset: str = "",
        threshold: float = 0.05,
        threshold_mm: float = 6.0,
        network: nn.Module | None = None,
        perturbation_epsilons: Sequence[float] = (),
        seed: int = 0,
        name_key: str = "name",
        figures: bool = True,
        render_groups: int = 4,
        projection_methods: Sequence[str] = ("pca",),
        subject_key: str = "subject",
        figure_subject: str | None = None,
        subject_max_groups: int = 64,
    ) -> None:
        self.output_dir = output_dir
        self.normalizer = normalizer
        self.method = method
        self.dataset = dataset
        self.threshold = threshold
        self.threshold_mm = threshold_mm
        self.network = network
        self.perturbation_epsilons = list(perturbation_epsilons)
        self.seed = seed
        self.name_key = name_key
        self.figures = figures
        self.render_groups = render_groups
        self.projection_methods = list(projection_methods)
        self.subject_key = subject_key
        self.figure_subject = figure_subject
        self.subject_max_groups = int(subject_max_groups)
        self.results: dict | None = None
        self._reset()

    def _reset(self) -> None:
        self._preds: list[torch.Tensor] = []
        self._inputs: list[torch.Tensor] = []
        self._names: list[str] = []
        self._subjects: list[str] = []

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, lambda _: self._reset())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._report)

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, list):  # decollated
            pred = torch.stack([o[Keys.PRED] for o in output])
            label = torch.stack([o[Keys.LABEL] for o in output])
        else:
            pred, label = output[Keys.PRED], output[Keys.LABEL]
        self._preds.append(torch.as_tensor(pred).detach().float().cpu())
        self._inputs.append(torch.as_tensor(label).detach().float().cpu())
        names = engine.state.batch.get(self.name_key, ["all"] * len(pred))
        self._names.extend(str(n) for n in names)
        subjects = engine.state.batch.get(self.subject_key) if isinstance(engine.state.batch, dict) else None
        if subjects is not None:
            self._subjects.extend(str(s) for s in subjects)

    def _codebook_stats(self, inputs: torch.Tensor) -> dict[str, float] | None:
        bottleneck = getattr(self.network, "bottleneck", None)
        num_embeddings = getattr(bottleneck, "num_embeddings", None)
        if self.network is None or num_embeddings is None:
            return None
        device = next(self.network.parameters()).device
        self.network.eval()
        indices = []
        with torch.no_grad():
            for start in range(0, len(inputs), 64):
                indices.append(self.network(inputs[start : start + 64].to(device)).bottleneck.indices.reshape(-1).cpu())
        stats = codebook_statistics(num_embeddings, torch.cat(indices))
        return {
            "perplexity": stats["perplexity"],
            "codebook_use": stats["code_use"],
            "num_embeddings": int(num_embeddings),
        }

    def _report(self, engine: Engine) -> None:
        if not self._preds:
            raise RuntimeError("StreamlineEvaluationReport saw no iterations: the evaluation dataset is empty.")
        pred, inputs = torch.cat(self._preds), torch.cat(self._inputs)
        names = self._names
        buan_norm = bundle_adjacency_batched(pred, inputs, threshold=self.threshold).numpy()
        pred_mm = torch.as_tensor(self.normalizer.denormalize(pred.double()))
        inputs_mm = torch.as_tensor(self.normalizer.denormalize(inputs.double()))
        buan_mm = bundle_adjacency_batched(pred_mm, inputs_mm, threshold=self.threshold_mm).numpy()
        mse = (pred - inputs).square().flatten(1).mean(1).numpy()
        point_error_mm = (pred_mm - inputs_mm).square().sum(1).sqrt().flatten(1).mean(1).numpy()
        results = {
            "method": self.method,
            "dataset": self.dataset,
            "n_groups": len(names),
            "buan_normalised": {
                "space": "normalised [-1, 1] (one global min/max)",
                "threshold": self.threshold,
                "threshold_mm_equivalent": float(self.threshold * self.normalizer.scale),
                "clust_thr": [0],
                **summarize_buan(buan_norm, names),
            },
            "buan_mm": {
                "space": "mm (RAS)",
                "threshold": self.threshold_mm,
                "clust_thr": [0],
                **summarize_buan(buan_mm, names),
            },
            "mse_normalised": mean_std(mse),
            "point_error_mm": mean_std(point_error_mm),
        }
        codebook = self._codebook_stats(inputs)
        if codebook is not None:
            results["codebook"] = codebook
        if self.perturbation_epsilons and self.network is not None:
            device = next(self.network.parameters()).device
            results["latent_perturbation"] = {
                "threshold": self.threshold,
                "space": "normalised",
                "noise": "z + epsilon * N(0, I) on the encoder output, before the bottleneck",
                "results": latent_perturbation_buan(
                    self.network, inputs.to(device), self.perturbation_epsilons, self.threshold, seed=self.seed
                ),
            }
        if self.figures:
            results["figures"] = self._write_figures(pred_mm, inputs_mm, inputs, names)
        self.results = results
        write_json(f"{self.output_dir}/metrics.json", results)
        atomic_write_text(f"{self.output_dir}/metrics.md", streamline_report_markdown(results))
        engine.state.metrics.setdefault("buan_normalised", results["buan_normalised"]["all"]["mean"])

    def _write_figures(
        self, pred_mm: torch.Tensor, inputs_mm: torch.Tensor, inputs: torch.Tensor, names: list[str]
    ) -> list[str]:
        first = {}
        for i, n in enumerate(names):
            first.setdefault(n, i)
        shown = list(first.items())[: self.render_groups]
        figures = [
            save_streamline_render(
                [inputs_mm[i] for _, i in shown],
                [pred_mm[i] for _, i in shown],
                f"{self.output_dir}/streamlines.png",
                names=[n for n, _ in shown],
                title=f"{self.method}: original (top) vs reconstruction (bottom), mm",
            ).name
        ]
        subject_figure = self._write_subject_figure(pred_mm, inputs_mm, names)
        if subject_figure is not None:
            figures.append(subject_figure)
        if self.network is not None and len(names) > 2:
            device = next(self.network.parameters()).device
            was_training = self.network.training
            self.network.eval()
            with torch.no_grad():
                codes = torch.cat(
                    [
                        self.network(inputs[s : s + 64].to(device)).bottleneck.latent.flatten(1).float().cpu()
                        for s in range(0, len(inputs), 64)
                    ]
                )
            self.network.train(was_training)
            for method in self.projection_methods:
                path = f"{self.output_dir}/latent_{method}.png"
                save_latent_projection(
                    codes,
                    {"bundle": names},
                    path,
                    method=method,
                    seed=self.seed,
                    title=f"{self.method}: bottleneck output per group ({PROJECTION_NAMES.get(method, method)})",
                )
                figures.append(f"latent_{method}.png")
        return figures

    def _write_subject_figure(self, pred_mm: torch.Tensor, inputs_mm: torch.Tensor, names: list[str]) -> str | None:
        """``subject_<id>.png`` (see the class docstring); None when the batches carried no subject ids."""
        if len(self._subjects) != len(names) or not names:
            return None
        subject = self.figure_subject
        if subject is None:
            by_subject: dict[str, set[str]] = {}
            for s, n in zip(self._subjects, names):
                by_subject.setdefault(s, set()).add(n)
            subject = min(by_subject, key=lambda s: (-len(by_subject[s]), s))
        elif subject not in self._subjects:
            raise ValueError(
                f"figure_subject {subject!r} is not among the evaluated subjects {sorted(set(self._subjects))}."
            )
        per_name: dict[str, list[int]] = {}
        for i, (s, n) in enumerate(zip(self._subjects, names)):
            if s == subject:
                per_name.setdefault(n, []).append(i)
        chosen: list[int] = []
        queues = [list(v) for _, v in sorted(per_name.items())]
        while len(chosen) < self.subject_max_groups and any(queues):
            for queue in queues:
                if queue and len(chosen) < self.subject_max_groups:
                    chosen.append(queue.pop(0))
        filename = f"subject_{subject}.png"
        save_subject_render(
            [inputs_mm[i] for i in chosen],
            [pred_mm[i] for i in chosen],
            [names[i] for i in chosen],
            f"{self.output_dir}/{filename}",
            title=f"{self.method}: {subject}, {len(per_name)} bundles, {len(chosen)} groups: original vs reconstruction (mm)",
        )
        return filename


def streamline_report_markdown(results: dict) -> str:
    """Markdown of one method's streamline evaluation (per-bundle BUAN in both spaces)."""
    norm, mm = results["buan_normalised"], results["buan_mm"]
    bundle_names = [k for k in norm if isinstance(norm[k], dict) and "mean" in norm[k] and k != "all"]
    rows = [[n, format_mean_std(norm[n]), format_mean_std(mm.get(n)), norm[n].get("n", "")] for n in bundle_names]
    rows.append(["**all**", format_mean_std(norm["all"]), format_mean_std(mm["all"]), norm["all"].get("n", "")])
    text = [
        f"# {results['method']} — {results.get('dataset', '')}\n",
        markdown_table(
            [
                "bundle",
                f"BUAN normalised (thr {norm['threshold']}, ≈{norm['threshold_mm_equivalent']:.2f} mm)",
                f"BUAN mm (thr {mm['threshold']} mm)",
                "groups",
            ],
            rows,
        ),
        f"\nReconstruction MSE (normalised): {format_mean_std(results['mse_normalised'], 5)}; "
        f"mean point error: {format_mean_std(results['point_error_mm'], 2)} mm. BUAN uses `clust_thr=[0]`.\n",
    ]
    if "codebook" in results:
        cb = results["codebook"]
        text.append(
            f"\nCodebook: perplexity {cb['perplexity']:.1f} of {cb['num_embeddings']}, use {cb['codebook_use']:.3f}.\n"
        )
    if "latent_perturbation" in results:
        lp = results["latent_perturbation"]["results"]
        text.append("\n" + markdown_table(["ε", "BUAN (normalised)"], [[r["epsilon"], format_mean_std(r)] for r in lp]))
    return "".join(text)
