"""One Markdown report of every bundle's evaluations, laid out like the seed papers' tables, with the figures.

Usage (from the repository root)::

    python -m monai_genvq.report                                   # bundles/ -> report.md
    python -m monai_genvq.report --bundles_dir bundles --output results/report.md
    python -m monai_genvq.report --skip_invalid                    # mark unreadable metrics.json as skipped

It finds every ``<bundles_dir>/<bundle>/outputs/<variant>/<evaluation>/metrics.json`` (``eval``,
``eval_<dataset>`` of the cardiac cross-domain runs, ``prior_<type>`` of the code priors ...) and
writes one document:

- streamlines (VQ-Diff paper): methods (VQ-Diff, AE, VAE, VQ-VAE, VQ-EMA) × BUAN, per data set, per
  bundle, and the latent perturbation analysis;
- quantizers: quantizer variants × MSE, SSIM, perplexity, codebook use; stage-2 code priors × NLL;
- cardiac (Attri-SIVAE paper, Table 1): methods × Interp, SCC, Mod, SAP (+ MIG), SSIM per evaluation set;
- hyperbolic (Hsu et al. 2021): hierarchy levels × configurations (hyperbolic, Euclidean, no
  gyroplane conv, no triplet loss, Riemannian normal, and the no-learning intensity k-means
  reference) for the toy set, whole-tumour Dice for BraTS, classes for cryo-ET;
- anatomical prior: per-label Dice of the model beside its baselines;
- any other bundle: its numeric results as a key × variant table.

Beside our rows, every table has the seed paper's reported numbers in rows of their own (marked
"seed"), transcribed with their table and row names in ``monai_genvq/seed_results.json``
(:func:`load_seed_results`); under each table the report states the data, protocol and seeds of
the seed's numbers and of ours (ours from each variant's ``run_settings.json``), and the seed's
table as published follows each section. Variants a bundle defines (the ``variant`` of its config
files) but that have no evaluation are listed as "not run". Figures listed in each ``metrics.json`` (``figures``, relative to its folder;
every PNG of the folder when the key is absent) are embedded with links relative to the report.
A ``metrics.json`` that cannot be read, or lacks what its bundle's table needs, raises
:class:`ReportError` naming the file (or, with ``skip_invalid``, is listed under "Skipped files").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_genvq.metrics.disentanglement import describe_disentanglement_settings
from monai_genvq.utils.fileio import atomic_write_text
from monai_genvq.utils.tables import format_mean_std, markdown_table

__all__ = [
    "Evaluation",
    "ReportError",
    "build_report",
    "collect_evaluations",
    "expected_variants",
    "load_metrics",
    "load_seed_results",
    "main",
    "write_report",
]

NOT_RUN = "not run"
#: The seed documents' reported numbers (table and row names as printed), read by :func:`load_seed_results`.
SEED_RESULTS_FILE = Path(__file__).with_name("seed_results.json")

STREAMLINE_METHODS = {
    "vqdiff": "VQ-Diff",
    "ae": "AE",
    "vae": "VAE",
    "vae_seed": "VAE, 20-d global as the seed's",
    "vqvae": "VQ-VAE",
    "vqema": "VQ-EMA",
}
#: Evaluation folders of a streamline run that are reconstruction tables (``eval_gumbel.json`` writes the second).
STREAMLINE_EVALUATIONS = {"eval": "", "eval_gumbel": "Gumbel noise at evaluation"}
QUANTIZER_METHODS = {
    "vanilla": "vanilla (k-means, straight-through)",
    "ema": "EMA",
    "gumbel": "Gumbel-softmax",
    "neural_gas": "neural gas",
    "neural_gas_lambda3": "neural gas (fixed λ 3)",
    "neural_gas_lambda10": "neural gas (fixed λ 10)",
    "fcm": "fuzzy c-means",
    "fcm_normalised": "fuzzy c-means (normalised m-power)",
    "fcm_posterior": "fuzzy c-means posterior (thesis eq. 4.6)",
    "sampled_expectation": "sampled expectation",
}
CARDIAC_METHODS = {
    "beta_vae": "β-VAE",
    "attri_vae": "Attri-VAE",
    "soft_intro_vae": "Soft-Intro VAE",
    "attri_sivae": "Attri-SIVAE",
}
HYPERBOLIC_CONFIGS = {
    "hyperbolic": "hyperbolic",
    "euclidean": "Euclidean",
    "no_gyroconv": "no gyroplane conv",
    "no_triplet": "no triplet loss",
    "riemannian": "Riemannian normal",
    "intensity": "intensity k-means (no training)",
    "base": "hyperbolic base (no gyroplane conv, no triplet)",
    "euclidean_base": "Euclidean base (no triplet)",
}
TITLES = {
    "streamlines_vqdiff": "Streamlines: VQ-Diff and its baselines (BUAN)",
    "vq_quantizers": "Quantizers: neural-gas and fuzzy c-means VQ-VAE family",
    "cardiac_attri_sivae": "Cardiac MRI: Attri-SIVAE and its baselines (Table 1)",
    "hyperbolic_toy_seg": "Hyperbolic VAE: hierarchical toy set (Dice per hierarchy level)",
    "hyperbolic_brats_seg": "Hyperbolic VAE: BraTS (whole-tumour Dice)",
    "hyperbolic_cryoet_seg": "Hyperbolic VAE: cryo-ET (Dice over classes)",
    "anatomical_prior_seg": "Anatomical-prior VAE: unsupervised segmentation (per-label Dice)",
}


class ReportError(ValueError):
    """A ``metrics.json`` that cannot be reported (unreadable, not JSON, or lacking what its table needs)."""


@dataclass
class Evaluation:
    """One ``metrics.json``: ``<bundle>/outputs/<variant>/<name>/metrics.json``.

    Args:
        bundle: bundle folder name.
        variant: the variant folder under ``outputs/``.
        name: the evaluation folder(s) under the variant (``eval``, ``eval_mnms``, ``prior_pixelcnn`` ...).
        path: the ``metrics.json`` file.
        metrics: its content.
    """

    bundle: str
    variant: str
    name: str
    path: Path
    metrics: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def figures(self) -> list[Path]:
        """Figures of this evaluation: ``metrics["figures"]`` (relative to its folder; absolute or working-directory
        paths are accepted too), else every PNG there."""
        listed = self.metrics.get("figures")
        if listed is None:
            return sorted(self.folder.glob("*.png"))
        if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
            raise ReportError(
                f"{self.path}: 'figures' must be a list of file names relative to its folder, got {listed!r}"
            )
        return [self._resolve(f) for f in listed]

    def _resolve(self, name: str) -> Path:
        """A listed figure: relative to this folder (the convention), else absolute / relative to the working directory."""
        for candidate in (self.folder / name, Path(name), self.folder / Path(name).name):
            if candidate.is_file():
                return candidate
        return self.folder / name


@dataclass
class _Context:
    output_dir: Path
    strict: bool
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    seeds: dict[str, Any] = field(default_factory=dict)

    def seed_table(self, bundle: str, key: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """``(the bundle's seed entry, its table named key)``; ``None`` for what the seed does not report."""
        seed = self.seeds.get(bundle)
        table = next((t for t in (seed or {}).get("tables", []) if t.get("key") == key), None)
        return seed, table

    def fail(self, path: Path, reason: str) -> None:
        if self.strict:
            raise ReportError(f"{path}: {reason}")
        self.skipped.append((path, reason))

    def link(self, path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), self.output_dir.resolve())).as_posix()


def load_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read one ``metrics.json``; :class:`ReportError` naming the file when it is unreadable or not a JSON object."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    if not text.strip():
        raise ReportError(f"{path}: the file is empty (an evaluation that was interrupted?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); re-run the evaluation"
        ) from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object of metrics, got a {type(data).__name__}")
    return data


def expected_variants(bundle_dir: str | os.PathLike) -> list[str]:
    """The variants a bundle defines: the literal ``variant`` of its config files (train.json's first)."""
    configs = Path(bundle_dir) / "configs"
    names: list[str] = []
    files = sorted(configs.glob("*.json"), key=lambda p: (p.name not in ("train.json", "train.json"), p.name))
    for f in files:
        if f.name in ("inference.json", "metadata.json"):
            continue
        try:
            value = json.loads(f.read_text()).get("variant")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, str) and not value.startswith(("$", "@", "%")) and value not in names:
            names.append(value)
    return names


def collect_evaluations(
    bundles_dir: str | os.PathLike, strict: bool = True, skipped: list[tuple[Path, str]] | None = None
) -> dict[str, list[Evaluation]]:
    """``{bundle: [Evaluation, ...]}`` for every bundle folder with ``configs/`` (sorted; bundles without outputs map to [])."""
    bundles_dir = Path(bundles_dir)
    if not bundles_dir.is_dir():
        raise ReportError(f"{bundles_dir}: no such bundles folder")
    found: dict[str, list[Evaluation]] = {}
    for bundle in sorted(p for p in bundles_dir.iterdir() if (p / "configs").is_dir()):
        evaluations = []
        outputs = bundle / "outputs"
        for path in sorted(outputs.rglob("metrics.json")) if outputs.is_dir() else []:
            parts = path.relative_to(outputs).parts
            if len(parts) < 3:  # outputs/<variant>/metrics.json has no evaluation name: not an evaluation layout
                continue
            try:
                metrics = load_metrics(path)
            except ReportError as e:
                if strict:
                    raise
                if skipped is not None:
                    skipped.append((path, str(e).split(": ", 1)[-1]))
                continue
            evaluations.append(Evaluation(bundle.name, parts[0], "/".join(parts[1:-1]), path, metrics))
        found[bundle.name] = evaluations
    return found


# ----------------------------------------------------------------------------------------------- seed numbers


def load_seed_results(path: str | os.PathLike = SEED_RESULTS_FILE) -> dict[str, Any]:
    """The seed papers' reported numbers: ``{bundle: {"document", "paper", "tables": [...], "none"?}}``.

    Each table holds ``title``, ``where``, ``header``, ``rows`` (strings as printed), ``column_keys``
    (per header cell: our metric / level it corresponds to, or null), ``row_keys`` (per row: our
    variant, or null), optionally ``split`` / ``split_keys`` (cells printing several data sets, e.g.
    "ACDC / M&Ms"), and ``metric``, ``data``, ``protocol``, ``seeds``, ``notes`` as the seed states them.

    Raises:
        ReportError: the file cannot be read, or a table's rows or keys do not fit its header.

    Example:
        >>> load_seed_results()["cardiac_attri_sivae"]["tables"][0]["rows"][0][:2]
        ['β-VAE', '0.28 / 0.14']
    """
    data = load_metrics(path)
    for bundle, entry in data.items():
        if bundle == "about":
            continue
        if not isinstance(entry, Mapping) or not isinstance(entry.get("tables"), list):
            raise ReportError(f"{path}: '{bundle}' needs a 'tables' list")
        for t in entry["tables"]:
            width = len(t.get("header", []))
            where = f"{path}: {bundle} table {t.get('title', '?')!r}"
            if not width or any(len(r) != width for r in t.get("rows", [])):
                raise ReportError(f"{where}: every row must have one cell per header cell ({width})")
            if len(t.get("column_keys", [])) != width:
                raise ReportError(f"{where}: 'column_keys' must have {width} entries")
            if "row_keys" in t and len(t["row_keys"]) != len(t["rows"]):
                raise ReportError(f"{where}: 'row_keys' must have one entry per row ({len(t['rows'])})")
    return data


def _seed_cell(table: Mapping[str, Any], row: Sequence[str], key: str, split_key: str | None = None) -> str:
    """The printed value of ``row`` in the column whose key is ``key`` (one part of a split cell); "–" if none."""
    keys = list(table["column_keys"])
    if key not in keys:
        return "–"
    cell = str(row[keys.index(key)])
    if split_key is not None and table.get("split"):
        parts = cell.split(table["split"])
        cell = parts[list(table["split_keys"]).index(split_key)] if len(parts) == len(table["split_keys"]) else cell
    return cell.strip()


def _seed_rows(table: Mapping[str, Any], key: str) -> list[tuple[str, Sequence[str]]]:
    """``(row key, printed row)`` of every row the table maps to one of our variants / configurations."""
    return [(k, r) for k, r in zip(table.get("row_keys", [None] * len(table["rows"])), table["rows"]) if k == key]


def _leading_number(cell: str) -> float | None:
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", cell)
    return float(m.group(1)) if m else None


def _seed_source(seed: Mapping[str, Any], table: Mapping[str, Any]) -> str:
    return f"seed `{seed['document']}` ({seed['paper']}), {table['title']} ({table['where']})"


def _seed_block(seeds: Mapping[str, Any], bundle: str) -> str:
    """The seed's tables for ``bundle`` as published, each with its metric, data, protocol and seeds."""
    seed = seeds.get(bundle)
    if not seed:
        return ""
    if not seed["tables"]:
        return f"\n**Seed's reported numbers**: none. {seed.get('none', '')} (`{seed['document']}`)\n"
    out = ["\n**Seed's reported numbers, as published**\n"]
    for t in seed["tables"]:
        out.append(
            f"\n{_seed_source(seed, t)}:\n\n"
            + markdown_table(t["header"], t["rows"])
            + f"\nMetric: {t['metric']}. Data: {t['data']}. Protocol: {t['protocol']}. Seeds: {t['seeds']}."
            + (f" Note: {t['notes']}" if t.get("notes") else "")
            + "\n"
        )
    return "".join(out)


def _seed_caption(seed: Mapping[str, Any] | None, table: Mapping[str, Any] | None) -> str:
    """One line under our table: where its seed rows come from and how the seed got them."""
    if not seed or table is None:
        return "Seed rows: the seed reports no number for this table.\n"
    return (
        f"Seed rows: {_seed_source(seed, table)}; data: {table['data']}; seeds: {table['seeds']} "
        "(protocol and metric with the published table below).\n"
    )


def _run_settings(ev: Evaluation) -> dict[str, Any]:
    """The training options of the evaluated run (``outputs/<variant>/run_settings.json``), or ``{}``."""
    for folder in (ev.folder.parent, ev.folder.parent.parent):
        path = folder / "run_settings.json"
        if path.is_file():
            try:
                options = json.loads(path.read_text()).get("options", {})
            except (OSError, ValueError, AttributeError):
                return {}
            return options if isinstance(options, dict) else {}
    return {}


def _ours_caption(evaluations: Sequence[Evaluation], names: Mapping[str, str] | None = None) -> str:
    """One line under our table: the data, and each row's training seed and length (from ``run_settings.json``)."""
    if not evaluations:
        return ""
    names = names or {}
    datasets = sorted({str(ev.metrics.get("dataset")) for ev in evaluations if ev.metrics.get("dataset")})
    runs = []
    for ev in evaluations:
        opts = _run_settings(ev) or (
            ev.metrics.get("training") if isinstance(ev.metrics.get("training"), Mapping) else {}
        )
        label = names.get(ev.variant, ev.variant)
        if opts:
            length = next(
                (f"{opts[k]} {k.replace('max_', '')}" for k in ("max_epochs", "max_iterations") if k in opts), ""
            )
            runs.append(f"{label}: seed {opts.get('seed', '?')}" + (f", {length}" if length else ""))
        else:
            runs.append(f"{label}: seed not recorded (no run_settings.json)")
    return (
        f"\nOurs: data {', '.join(datasets) or 'not recorded'}; protocol: the bundle's configs (train.json + the "
        f"variant's file, evaluate.json), one training run per row; {'; '.join(dict.fromkeys(runs))}.\n"
    )


# ----------------------------------------------------------------------------------------------- cells


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return (
            "–"
            if isinstance(value, float) and math.isnan(value)
            else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))
        )
    if isinstance(value, Mapping) and "mean" in value:
        return format_mean_std(value, digits)
    return str(value)


def _need(ev: Evaluation, *keys: str) -> Any:
    """``ev.metrics[k0][k1]...`` or a KeyError naming the missing key path."""
    node: Any = ev.metrics
    for i, k in enumerate(keys):
        if not isinstance(node, Mapping) or k not in node:
            raise KeyError("/".join(keys[: i + 1]))
        node = node[k]
    return node


def _rows(
    ctx: _Context, evaluations: Iterable[Evaluation], row: Callable[[Evaluation], list[Any]]
) -> list[tuple[Evaluation, list[Any]]]:
    """Build one row per evaluation; an evaluation lacking a key is an error naming its file (or a skip)."""
    out = []
    for ev in evaluations:
        try:
            out.append((ev, row(ev)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            reason = f"missing key '{e.args[0]}'" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            ctx.fail(
                ev.path,
                f"cannot be tabulated for {ev.bundle} ({reason}); is it an output of this bundle's evaluate.json?",
            )
    return out


def _order(variants: Iterable[str], preferred: Sequence[str]) -> list[str]:
    variants = list(dict.fromkeys(variants))
    return [v for v in preferred if v in variants] + [v for v in variants if v not in preferred]


def _by(evaluations: Iterable[Evaluation], key: Callable[[Evaluation], str]) -> dict[str, list[Evaluation]]:
    groups: dict[str, list[Evaluation]] = {}
    for ev in evaluations:
        groups.setdefault(key(ev), []).append(ev)
    return groups


def _not_run_line(expected: Sequence[str], present: Iterable[str], names: Mapping[str, str]) -> str:
    missing = [names.get(v, v) for v in expected if v not in set(present)]
    return f"\nNot run: {', '.join(missing)}.\n" if missing else ""


def _figures(ctx: _Context, evaluations: Sequence[Evaluation], label: Callable[[Evaluation], str]) -> str:
    """A table of thumbnails: rows = evaluations, columns = figure names."""
    per_row: list[tuple[str, dict[str, str]]] = []
    columns: list[str] = []
    for ev in evaluations:
        try:
            figures = ev.figures()
        except ReportError as e:
            ctx.fail(ev.path, str(e).split(": ", 1)[-1])
            continue
        cells = {}
        for f in figures:
            stem = f.stem
            columns.append(stem)
            cells[stem] = f"![{ev.variant} {stem}]({ctx.link(f)})" if f.is_file() else f"missing: `{f.name}`"
        if cells:
            per_row.append((label(ev), cells))
    if not per_row:
        return ""
    columns = list(dict.fromkeys(columns))
    rows = [[name] + [cells.get(c, "") for c in columns] for name, cells in per_row]
    return "\n**Figures**\n\n" + markdown_table(["evaluation", *columns], rows)


def _bundle_figures(ctx: _Context, bundle_dir: Path) -> str:
    pngs = sorted((bundle_dir / "outputs").glob("*.png")) if (bundle_dir / "outputs").is_dir() else []
    if not pngs:
        return ""
    return "\n**Bundle-level figures**\n\n" + "\n".join(f"![{p.stem}]({ctx.link(p)})" for p in pngs) + "\n"


def _label(names: Mapping[str, str]) -> Callable[[Evaluation], str]:
    return lambda ev: f"{names.get(ev.variant, ev.variant)} ({ev.name})"


# ----------------------------------------------------------------------------------------------- sections


def _priors(ctx: _Context, evaluations: Sequence[Evaluation], names: Mapping[str, str]) -> str:
    """Stage-2 code priors (``prior_<type>`` folders, :class:`~monai_genvq.handlers.CodePriorReport` schema)."""
    priors = [ev for ev in evaluations if ev.name.startswith("prior")]
    if not priors:
        return ""
    rows = _rows(
        ctx,
        priors,
        lambda ev: [
            names.get(ev.variant, ev.variant),
            ev.metrics.get("prior", ev.name),
            _num(_need(ev, "nll_bits_per_code")),
            _num(ev.metrics.get("uniform_bits_per_code")),
            _num(ev.metrics.get("marginal_entropy_bits_per_code")),
            _num(ev.metrics.get("sampled_codes_used")),
        ],
    )
    header = [
        "stage 1",
        "prior",
        "NLL (bits/code)",
        "uniform log2 K",
        "held-out code entropy (bits)",
        "codes used by samples",
    ]
    text = "\n### Stage-2 code priors\n\n" + markdown_table(header, [r for _, r in rows])
    return text + _figures(ctx, [ev for ev, _ in rows], _label(names))


def _streamline_run(ev: Evaluation) -> tuple[str, str]:
    """``(method, label)`` of one streamline evaluation: each run (variant folder incl. its ``run_tag``, e.g.
    ``vqvae_remedies_s0`` or ``dipy_vqdiff_s1``) and each evaluation mode (``eval``, ``eval_gumbel``) is a row."""
    method = str(ev.metrics.get("method", ev.variant))
    tag = ev.variant[len("dipy_") :] if ev.variant.startswith("dipy_") else ev.variant
    tag = tag[len(method) :] if tag.startswith(method) else f"_{tag}"
    notes = [t for t in (tag.strip("_").replace("_", " "), STREAMLINE_EVALUATIONS.get(ev.name, ev.name)) if t]
    return method, STREAMLINE_METHODS.get(method, method) + (f" ({', '.join(notes)})" if notes else "")


def _streamlines(ctx: _Context, bundle_dir: Path, evaluations: Sequence[Evaluation], expected: Sequence[str]) -> str:
    recon = [ev for ev in evaluations if ev.name in STREAMLINE_EVALUATIONS]
    methods = _order(expected, list(STREAMLINE_METHODS))
    out = []
    groups = _by(recon, lambda ev: str(ev.metrics.get("dataset", "")))
    seed, table = ctx.seed_table(bundle_dir.name, "table1")
    seed_rows = []
    for key in STREAMLINE_METHODS:  # the seed reports BUAN per bundle: its range over the 12 bundles
        values = [_leading_number(_seed_cell(table, r, key)) for r in table["rows"]] if table else []
        values = [v for v in values if v is not None]
        if values:
            seed_rows.append(
                [f"{STREAMLINE_METHODS[key]} (seed)", f"{min(values):.4f}–{max(values):.4f} over {len(values)} bundles"]
            )
    if not groups:
        out.append(
            markdown_table(
                ["method", "BUAN"], [*seed_rows, *([STREAMLINE_METHODS.get(m, m), NOT_RUN] for m in methods)]
            )
            + "\n"
            + _seed_caption(seed, table)
        )
    for dataset, evs in groups.items():
        method_rank = {m: i for i, m in enumerate(_order(list(methods), list(STREAMLINE_METHODS)))}
        evs = sorted(
            evs,
            key=lambda ev: (
                method_rank.get(_streamline_run(ev)[0], len(method_rank)),
                len(ev.variant),
                ev.variant,
                ev.name,
            ),
        )
        by_method = {_streamline_run(ev)[1]: ev for ev in evs}  # label -> evaluation, one row per run
        ran = {_streamline_run(ev)[0] for ev in evs}
        order = list(by_method) + [m for m in methods if m not in ran]
        rows_ok = dict(
            (_streamline_run(ev)[1], r)
            for ev, r in _rows(
                ctx,
                by_method.values(),
                lambda ev: [
                    _num(_need(ev, "buan_normalised", "all")),
                    _num(_need(ev, "buan_mm", "all")),
                    _num(ev.metrics.get("mse_normalised"), 5),
                    _num(ev.metrics.get("point_error_mm"), 2),
                    _num((ev.metrics.get("codebook") or {}).get("perplexity"), 1),
                    _num((ev.metrics.get("codebook") or {}).get("codebook_use")),
                    ev.metrics.get("n_groups", "–"),
                ],
            )
        )
        first = next(iter(by_method.values())).metrics
        norm, mm = first.get("buan_normalised", {}), first.get("buan_mm", {})
        thr = f"thr {norm.get('threshold', '?')}" + (
            f", ≈{norm['threshold_mm_equivalent']:.2f} mm" if "threshold_mm_equivalent" in norm else ""
        )
        header = [
            "method",
            f"BUAN normalised ({thr})",
            f"BUAN mm (thr {mm.get('threshold', '?')} mm)",
            "MSE (normalised)",
            "point error (mm)",
            "perplexity",
            "codebook use",
            "groups",
        ]
        rows = [[STREAMLINE_METHODS.get(m, m), *(rows_ok[m] if m in rows_ok else [NOT_RUN] + [""] * 6)] for m in order]
        rows = [r + ["–"] * (len(header) - len(r)) for r in seed_rows] + rows
        out.append(
            f"\n### Data: {dataset or 'unnamed'}\n\nBUAN (clust_thr=[0]) of reconstructions vs inputs, mean ± std over groups.\n\n"
            + markdown_table(header, rows)
            + "\n"
            + _seed_caption(seed, table)
            + _ours_caption([by_method[m] for m in order if m in rows_ok], STREAMLINE_METHODS)
        )
        ok = [by_method[m] for m in order if m in rows_ok]
        bundles = sorted(
            {
                k
                for ev in ok
                for k, v in ev.metrics["buan_normalised"].items()
                if isinstance(v, Mapping) and "mean" in v and k != "all"
            }
        )
        if bundles:
            out.append(
                "\nBUAN (normalised) per bundle:\n\n"
                + markdown_table(
                    ["method", *bundles],
                    [
                        [
                            _streamline_run(ev)[1],
                            *(_num(ev.metrics["buan_normalised"].get(b)) for b in bundles),
                        ]
                        for ev in ok
                    ],
                )
            )
        perturbed = [ev for ev in ok if isinstance(ev.metrics.get("latent_perturbation"), Mapping)]
        if perturbed:
            eps = sorted(
                {float(r["epsilon"]) for ev in perturbed for r in ev.metrics["latent_perturbation"].get("results", [])}
            )
            rows = []
            for ev in perturbed:
                res = {float(r["epsilon"]): r for r in ev.metrics["latent_perturbation"].get("results", [])}
                rows.append(
                    [
                        _streamline_run(ev)[1],
                        *(_num(res.get(e)) for e in eps),
                    ]
                )
            out.append(
                "\nLatent perturbation: BUAN (normalised) of decode(bottleneck(z + ε·n)) vs the input:\n\n"
                + markdown_table(["method", *(f"ε = {e:g}" for e in eps)], rows)
            )
        out.append(_figures(ctx, ok, _label(STREAMLINE_METHODS)))
    out.append(_seed_block(ctx.seeds, bundle_dir.name))
    return "\n".join(out) + _priors(ctx, evaluations, STREAMLINE_METHODS)


def _quantizer_row(ev: Evaluation) -> list[Any]:
    cb = ev.metrics.get("codebook") or {}
    use = (
        f"{cb['code_use']:.3f} ({cb.get('codes_used', '?')}/{cb.get('num_embeddings', '?')})"
        if "code_use" in cb
        else "–"
    )
    return [
        _num(_need(ev, "mse"), 5),
        _num(_need(ev, "ssim"), 4),
        _num(cb.get("perplexity"), 1),
        use,
        _num(cb.get("collapsed")),
        ev.metrics.get("n_images", "–"),
    ]


def _quantizers(ctx: _Context, bundle_dir: Path, evaluations: Sequence[Evaluation], expected: Sequence[str]) -> str:
    recon = [ev for ev in evaluations if ev.name == "eval"]
    variants = _order(expected, list(QUANTIZER_METHODS))
    out = []
    groups = _by(recon, lambda ev: str(ev.metrics.get("dataset", ""))) or {"": []}
    for dataset, evs in groups.items():
        by_variant = {ev.variant: ev for ev in evs}
        rows_ok = {ev.variant: r for ev, r in _rows(ctx, evs, _quantizer_row)}
        order = _order(list(variants) + list(by_variant), list(QUANTIZER_METHODS))
        header = ["quantizer", "MSE", "SSIM", "perplexity", "codebook use", "collapsed", "images"]
        rows = [[QUANTIZER_METHODS.get(v, v), *(rows_ok[v] if v in rows_ok else [NOT_RUN] + [""] * 5)] for v in order]
        seed, table = ctx.seed_table(bundle_dir.name, "training_list")
        seed_rows = [
            [
                f"{r[0]}, α {r[1]}, λ {r[3]} (seed)",
                f"{_seed_cell(table, r, 'mse')} (train-set error, not our MSE)",
                "–",
                _seed_cell(table, r, "perplexity"),
                "–",
                "–",
                "CIFAR-10 train",
            ]
            for r in (table["rows"] if table else [])
        ]
        out.append(
            f"\n### Data: {dataset or '–'}\n\nSSIM: MONAI SSIMMetric (Gaussian window 11, σ 1.5, data range 1); "
            "perplexity / use of the hard code map on the evaluation set.\n\n"
            + markdown_table(header, seed_rows + rows)
            + "\n"
            + _seed_caption(seed, table)
            + _ours_caption([by_variant[v] for v in order if v in rows_ok], QUANTIZER_METHODS)
        )
        out.append(_figures(ctx, [by_variant[v] for v in order if v in rows_ok], _label(QUANTIZER_METHODS)))
    out.append(_seed_block(ctx.seeds, bundle_dir.name))
    return "\n".join(out) + _priors(ctx, evaluations, QUANTIZER_METHODS)


def _cardiac_seed_column(dataset: str) -> tuple[str, bool]:
    """``(the seed's data-set column, "acdc" or "mnms"; whether it is the M&Ms -> ACDC cross-domain test)``."""
    evaluated, _, trained = dataset.partition(", trained on ")
    on = "mnms" if re.search(r"M&Ms|mnms", evaluated, re.IGNORECASE) else "acdc"
    return on, on == "acdc" and bool(re.search(r"M&Ms|mnms", trained, re.IGNORECASE))


def _cardiac(ctx: _Context, bundle_dir: Path, evaluations: Sequence[Evaluation], expected: Sequence[str]) -> str:
    methods = _order(expected, list(CARDIAC_METHODS))
    out = []
    # outputs/<variant>/eval*/, and runs with their own outputs root (M&Ms: outputs/mnms/<variant>/eval*/)
    groups: dict[str, list[tuple[str, Evaluation]]] = {}
    for ev in evaluations:
        parts = ev.name.split("/")
        if len(parts) == 1 and parts[0].startswith("eval"):
            groups.setdefault(ev.name, []).append((ev.variant, ev))
        elif len(parts) == 2 and parts[1].startswith("eval"):
            groups.setdefault(f"{ev.variant}/{parts[1]}", []).append((parts[0], ev))
    for name in sorted(groups or {"eval": []}, key=lambda n: (n != "eval", n)):
        pairs = groups.get(name, [])
        variant_of = {id(ev): v for v, ev in pairs}
        rows_ok = {
            variant_of[id(ev)]: r
            for ev, r in _rows(
                ctx,
                [ev for _, ev in pairs],
                lambda ev: [
                    *(_num(_need(ev, k)) for k in ("interpretability", "scc", "modularity", "sap")),
                    _num(ev.metrics.get("mig")),
                    _num(_need(ev, "ssim")),
                ],
            )
        }
        evs = {v: ev for v, ev in pairs if v in rows_ok}
        order = _order(list(methods) + [v for v, _ in pairs], list(CARDIAC_METHODS))
        rows = [[CARDIAC_METHODS.get(v, v), *(rows_ok[v] if v in rows_ok else [NOT_RUN] + [""] * 5)] for v in order]
        dataset = next((ev.metrics.get("dataset") for _, ev in pairs if ev.metrics.get("dataset")), "")
        on, cross = _cardiac_seed_column(str(dataset or ("ACDC" if name == "eval" else name)))
        seed, table = ctx.seed_table(bundle_dir.name, "cross_domain" if cross else "table1")
        seed_rows = []
        for key in CARDIAC_METHODS:
            for _, r in _seed_rows(table, key) if table else []:
                cells = [_seed_cell(table, r, k, on) for k in ("interpretability", "scc", "modularity", "sap", "mig")]
                where = "section 4.3" if cross else f"Table 1, {'M&Ms' if on == 'mnms' else 'ACDC'}"
                seed_rows.append([f"{CARDIAC_METHODS[key]} (seed, {where})", *cells, _seed_cell(table, r, "ssim")])
        codes = next((ev.metrics.get("codes") for ev in evs.values() if ev.metrics.get("codes")), "posterior mean μ")
        settings = sorted({describe_disentanglement_settings(ev.metrics) for ev in evs.values()})
        out.append(
            f"\n### Evaluation `{name}`{': ' + dataset if dataset else ''}\n\nCodes: {codes}; SSIM mean ± std over images "
            "(MONAI SSIMMetric, Gaussian 11, σ 1.5, data range 1)"
            + (f"; our MI-based numbers and SCC: {' | '.join(settings)}.\n\n" if settings else ".\n\n")
            + markdown_table(["Method", "Interp", "SCC", "Mod", "SAP", "MIG", "SSIM"], seed_rows + rows)
            + "\n"
            + _seed_caption(seed, table)
            + _ours_caption([evs[v] for v in order if v in evs], CARDIAC_METHODS)
        )
        out.append(_figures(ctx, [evs[v] for v in order if v in evs], _label(CARDIAC_METHODS)))
    out.append(_seed_block(ctx.seeds, bundle_dir.name))
    return "\n".join(out)


def _hyperbolic(ctx: _Context, bundle_dir: Path, evaluations: Sequence[Evaluation], expected: Sequence[str]) -> str:
    evs = [ev for ev in evaluations if ev.name == "eval"]
    configs = _order(list(expected) + [ev.variant for ev in evs], list(HYPERBOLIC_CONFIGS))
    ok = dict((ev.variant, ev) for ev, _ in _rows(ctx, evs, lambda ev: [_need(ev, "levels").items()]))
    levels = list(dict.fromkeys(lv for ev in ok.values() for lv in ev.metrics["levels"]))
    header = ["level", *(HYPERBOLIC_CONFIGS.get(c, c) for c in configs)]
    seed = ctx.seeds.get(bundle_dir.name) or {}
    table = next(iter(seed.get("tables", [])), None)
    seed_levels = [k for k in (table["column_keys"] if table else []) if k]

    def seed_row(lv: str) -> list[str]:  # the seed's value for each of our configurations it has a row for
        cells = [next((_seed_cell(table, r, lv) for _, r in _seed_rows(table, c)), "–") for c in configs]
        return [f"{lv} (seed)", *cells] if table and lv in seed_levels and any(c != "–" for c in cells) else []

    rows = []
    for lv in levels or seed_levels:
        rows += [r for r in (seed_row(lv),) if r]
        rows.append([lv, *(_num(ok[c].metrics["levels"].get(lv)) if c in ok else NOT_RUN for c in configs)])
    if not levels and not seed_levels:
        rows = [["–", *(NOT_RUN for _ in configs)]]
    clustering = ", ".join(
        f"{HYPERBOLIC_CONFIGS.get(c, c)}: {ok[c].metrics.get('clustering', '?')}" for c in configs if c in ok
    )
    datasets = sorted({str(ev.metrics.get("dataset", "")) for ev in ok.values()} - {""})
    unmatched = sorted(
        {str(ev.metrics["unmatched_labels"]) for ev in ok.values() if ev.metrics.get("unmatched_labels")}
    )
    out = [
        "Dice after Hungarian matching of clusters to labels (mean over labels), mean ± std over volumes"
        + (f"; data: {', '.join(datasets)}" if datasets else "")
        + (f"; k-means: {clustering}" if clustering else "")
        + (f"; {' | '.join(unmatched)}" if unmatched else "")
        + ".\n",
        markdown_table(header, rows)
        + "\n"
        + _seed_caption(seed, table)
        + _ours_caption(list(ok.values()), HYPERBOLIC_CONFIGS),
    ]
    per_label = [
        (c, lv)
        for c in configs
        if c in ok
        for lv in levels
        if isinstance(ok[c].metrics["levels"].get(lv, {}).get("per_label"), Mapping)
    ]
    if per_label:
        ids = list(dict.fromkeys(i for c, lv in per_label for i in ok[c].metrics["levels"][lv]["per_label"]))
        out.append(
            "\nDice per label:\n\n"
            + markdown_table(
                ["configuration", "level", *(f"label {i}" for i in ids)],
                [
                    [
                        HYPERBOLIC_CONFIGS.get(c, c),
                        lv,
                        *(_num(ok[c].metrics["levels"][lv]["per_label"].get(i)) for i in ids),
                    ]
                    for c, lv in per_label
                ],
            )
        )
    out.append(_figures(ctx, [ok[c] for c in configs if c in ok], _label(HYPERBOLIC_CONFIGS)))
    out.append(_seed_block(ctx.seeds, bundle_dir.name))
    return "\n".join(out)


def _dice_methods(metrics: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``{method: {label: {mean, std}, ...}}`` block of a segmentation evaluation, wherever it sits."""
    for key in ("dice", "methods", "results"):
        block = metrics.get(key)
        if isinstance(block, Mapping) and block and all(isinstance(v, Mapping) for v in block.values()):
            return block
    return None


def _anatomical(ctx: _Context, bundle_dir: Path, evaluations: Sequence[Evaluation], expected: Sequence[str]) -> str:
    evs = [ev for ev in evaluations if ev.name.startswith("eval")]
    if not evs:
        return markdown_table(["method", "Dice"], [[v, NOT_RUN] for v in expected or ["default"]]) + _seed_block(
            ctx.seeds, bundle_dir.name
        )
    out = []
    for ev in evs:
        block = _dice_methods(ev.metrics)
        if block is None:
            out.append(
                f"\n### {ev.variant} ({ev.name})\n\nNo per-method Dice block found; its numbers:\n\n"
                + _generic_table([ev])
            )
        else:
            labels = list(
                ev.metrics.get("label_names") or dict.fromkeys(k for r in block.values() for k in r if k != "mean")
            )
            cols = [*labels, "mean"]
            other = ev.metrics.get("other_metrics") if isinstance(ev.metrics.get("other_metrics"), Mapping) else {}
            extra = sorted({k for m in other.values() if isinstance(m, Mapping) for k in m})
            rows = [
                [
                    name,
                    *(_num(r.get(k)) if isinstance(r, Mapping) else "–" for k in cols),
                    *(_num((other.get(name) or {}).get(k)) for k in extra),
                ]
                for name, r in block.items()
            ]
            n = ev.metrics.get("n_test_images", ev.metrics.get("n_images"))
            head = f"\n### {ev.variant} ({ev.name}){': ' + str(ev.metrics['dataset']) if ev.metrics.get('dataset') else ''}\n\n"
            out.append(
                head
                + f"Dice per foreground label, mean ± std over {n if n is not None else 'the'} test images.\n\n"
                + markdown_table(["method", *cols, *extra], rows)
                + "\n"
                + _ours_caption([ev])
            )
            if ev.metrics.get("notes"):
                out.append(f"\n_{ev.metrics['notes']}_\n")
        out.append(_figures(ctx, [ev], lambda e: f"{e.variant} ({e.name})"))
    out.append(_seed_block(ctx.seeds, bundle_dir.name))
    return "\n".join(out) + _not_run_line(expected, [ev.variant for ev in evs], {})


def _leaves(node: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(node, Mapping):
        if "mean" in node and isinstance(node.get("mean"), (int, float)):
            yield prefix, node
            return
        for k, v in node.items():
            if k in ("figures", "settings"):
                continue
            yield from _leaves(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix, node


def _generic_table(evaluations: Sequence[Evaluation], max_rows: int = 40) -> str:
    values = {f"{ev.variant} ({ev.name})": dict(_leaves(ev.metrics)) for ev in evaluations}
    keys = list(dict.fromkeys(k for v in values.values() for k in v))[:max_rows]
    if not keys:
        return "(no numeric results)\n"
    return markdown_table(["metric", *values], [[k, *(_num(v.get(k)) for v in values.values())] for k in keys])


def _generic(ctx: _Context, bundle_dir: Path, evaluations: Sequence[Evaluation], expected: Sequence[str]) -> str:
    if not evaluations:
        return markdown_table(["variant", "status"], [[v, NOT_RUN] for v in expected or ["(any)"]]) + _seed_block(
            ctx.seeds, bundle_dir.name
        )
    return (
        _generic_table(evaluations)
        + _not_run_line(expected, [ev.variant for ev in evaluations], {})
        + _figures(ctx, evaluations, lambda e: f"{e.variant} ({e.name})")
        + _seed_block(ctx.seeds, bundle_dir.name)
    )


SECTIONS: dict[str, Callable[[_Context, Path, Sequence[Evaluation], Sequence[str]], str]] = {
    "streamlines_vqdiff": _streamlines,
    "vq_quantizers": _quantizers,
    "cardiac_attri_sivae": _cardiac,
    "hyperbolic_toy_seg": _hyperbolic,
    "hyperbolic_brats_seg": _hyperbolic,
    "hyperbolic_cryoet_seg": _hyperbolic,
    "anatomical_prior_seg": _anatomical,
}


def build_report(
    bundles_dir: str | os.PathLike = "bundles", output: str | os.PathLike = "report.md", skip_invalid: bool = False
) -> str:
    """The Markdown text of the report (links relative to ``output``'s folder).

    Raises:
        ReportError: a ``metrics.json`` cannot be read or tabulated (unless ``skip_invalid``).
    """
    bundles_dir = Path(bundles_dir)
    ctx = _Context(Path(output).parent, strict=not skip_invalid, seeds=load_seed_results())
    found = collect_evaluations(bundles_dir, strict=not skip_invalid, skipped=ctx.skipped)
    order = [b for b in SECTIONS if b in found] + [b for b in found if b not in SECTIONS]
    summary, sections = [], []
    for bundle in order:
        evaluations, expected = found[bundle], expected_variants(bundles_dir / bundle)
        run = list(dict.fromkeys(ev.variant for ev in evaluations))
        not_run = [v for v in expected if v not in run]
        title = TITLES.get(bundle, bundle)
        summary.append(
            [f"[{bundle}](#{_anchor(title)})", len(evaluations), ", ".join(run) or "–", ", ".join(not_run) or "–"]
        )
        body = SECTIONS.get(bundle, _generic)(ctx, bundles_dir / bundle, evaluations, expected)
        sections.append(f"## {title}\n\n`{bundles_dir / bundle}`\n\n{body}{_bundle_figures(ctx, bundles_dir / bundle)}")
    text = [
        "# monai-genvq: evaluation report\n",
        f"Gathered from `{bundles_dir}/*/outputs/*/*/metrics.json` by `python -m monai_genvq.report`. "
        f'Each table follows its seed paper\'s layout; "{NOT_RUN}" marks a method or configuration the bundle defines '
        "whose evaluation was not found.\n",
        markdown_table(["bundle", "evaluations", "variants evaluated", NOT_RUN], summary)
        if summary
        else "No bundles found.\n",
        *sections,
    ]
    if ctx.skipped:
        text.append(
            "## Skipped files\n\n" + markdown_table(["file", "reason"], [[f"`{p}`", r] for p, r in ctx.skipped])
        )
    return re.sub(r"\n{3,}", "\n\n", "\n".join(text))


def _anchor(title: str) -> str:
    keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return keep.replace(" ", "-")


def write_report(
    bundles_dir: str | os.PathLike = "bundles", output: str | os.PathLike = "report.md", skip_invalid: bool = False
) -> Path:
    """Build the report and write it atomically to ``output``."""
    return atomic_write_text(output, build_report(bundles_dir, output, skip_invalid))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_genvq.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles_dir", default="bundles", help="folder holding the bundles (default: bundles)")
    parser.add_argument("--output", default="report.md", help="Markdown file to write (default: report.md)")
    parser.add_argument(
        "--skip_invalid",
        action="store_true",
        help="list unreadable or incomplete metrics.json files under 'Skipped files' instead of failing",
    )
    args = parser.parse_args(argv)
    try:
        path = write_report(args.bundles_dir, args.output, args.skip_invalid)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
