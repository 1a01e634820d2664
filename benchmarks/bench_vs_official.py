"""Our code against the seeds' official code, side by side in one run on one thread (issue 21).

Every row runs in this one process with ``torch.set_num_threads(1)`` (the per-core speed; one thread
stays stable when other processes share the CPU) after ``monai_genvq.utils.heap_only_malloc`` (what
every bundle applies at run time), so both sides get the same allocator. Speed = official / ours.

* ``ae``, ``vqdiff``: one training step on a batch of 256 streamline groups (3, 64, 64), the seed's
  batch. Ours: the network, loss, Adam optimiser and ``AutoencoderTrainer`` iteration that
  ``bundles/streamlines_vqdiff`` builds from ``train.json`` (with ``ae.json`` for the AE). Official:
  ``AllModels`` of the VQ-Diff authors' ``run_experiments/models.py`` (github.com/drewrl3v/diff-vq-vae;
  ``ae=True`` / ``vq_diff=True``, the Gumbel soft quantiser) with the settings of their ``train.py``
  (read from it at run time) and the body of its training loop (Adam, MSE + bottleneck loss, the
  logged ``.item()`` values). Steps alternate ours / official (ABBA order); medians are reported with
  parameter counts, GFLOP per step (``torch.utils.flop_counter``) and achieved GFLOP/s beside this
  run's one-thread fp32 matmul GFLOP/s.
* ``buan``: our exact batched BUAN (``bundle_adjacency_batched``, all groups at once) against dipy's
  ``bundle_shape_similarity`` called per group as the seed's ``record_validation_losses.py`` calls it
  (``clust_thr=[0]``, threshold 0.05), on the synthetic groups of ``bench_buan.py``; seconds and the
  largest |difference| of the values.
* ``metrics``: ``monai_genvq.metrics.compute_disentanglement`` (all five metrics) against AR-VAE's
  ``utils/evaluation.py`` (github.com/ashispati/ar-vae; the five calls of its
  ``compute_eval_metrics``) on 25,000 codes x 32 dims x 3 attributes; seconds and values of each.
  Both estimate mutual information with sklearn's k-NN estimator (ours by default since issue 19, with a
  fixed ``random_state``; AR-VAE draws its jitter from numpy's global generator, seeded here), so all
  five are compared value for value; MIG and Modularity differ only by the estimator's jitter. Our
  fixed-bin histogram option (``mi_estimator="histogram"``) is timed as a second row.

Targets (issue 21): re-measure the ratios claimed there in one run: AE at parity (0.99x) and ~99 % of
the matmul GFLOP/s, VQ-Diff 0.77-0.88x, BUAN 38x faster with identical values (issue 2: >= 20x,
max |diff| <= 1e-6), all five metrics in 0.17 s (issue 4: <= 0.5 s; now the histogram option; the k-NN default: <= 60 s).

The official code is imported at run time from local checkouts (README, "Tests and benchmarks"); a
row whose checkout is not given says so and is skipped::

    python benchmarks/bench_vs_official.py --vqdiff-code /tmp/official/diff-vq-vae --arvae-code /tmp/official/ar-vae \
        [--batch 256] [--repeats 3] [--out benchmarks/results/vs_official.json]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib.util
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine_info, matmul_gflops, time_call, write_results  # noqa: E402
from bench_buan import DIFF_TARGET, THRESHOLD, make_pairs  # noqa: E402
from bench_cardiac import METRIC_TARGET_S, disentanglement_inputs  # noqa: E402
from bench_streamline_training import bundle_network_def  # noqa: E402

from monai_genvq.apps.streamlines import bundle_adjacency_batched  # noqa: E402
from monai_genvq.engines import AutoencoderTrainer  # noqa: E402
from monai_genvq.metrics import compute_disentanglement  # noqa: E402
from monai_genvq.utils import heap_only_malloc  # noqa: E402

VQDIFF_MODELS = "run_experiments/models.py"
VQDIFF_TRAIN = "run_experiments/train.py"
ARVAE_METRICS = "utils/evaluation.py"
# our bundle variant -> the official AllModels flag (the seed's names)
VARIANTS = {"ae": "ae", "vqdiff": "vq_diff"}
ROWS = ["ae", "vqdiff", "buan", "metrics"]
ARVAE_CALLS = ("interpretability", "scc", "modularity", "mig", "sap")  # the order of AR-VAE's compute_eval_metrics


def official_file(root: str | None, relative: str, option: str) -> Path | str:
    """The official checkout's file, or the reason its rows are skipped."""
    if not root:
        return f"skipped: pass {option} PATH (a checkout of the official code)"
    path = Path(root) / relative
    return path if path.is_file() else f"skipped: {path} not found (pass {option} PATH, the checkout's root)"


def import_file(path: Path, name: str) -> ModuleType:
    """Import one source file of an official checkout as module ``name`` (nothing is copied)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def file_id(path: Path) -> dict:
    """Path and SHA-256 (first 12 hex digits) of an official source file: the exact code measured."""
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:12]}


def literal_settings(path: Path) -> dict[str, Any]:
    """The module-level ``name = <literal>`` assignments of a script, read without running it."""
    settings = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError, TypeError, SyntaxError, RecursionError):
                settings[node.targets[0].id] = ast.literal_eval(node.value)
    return settings


def n_parameters(net: torch.nn.Module) -> int:
    """Number of parameters (trainable or not) of ``net``."""
    return sum(p.numel() for p in net.parameters())


def our_step(variant: str, x: torch.Tensor) -> tuple[Callable[[], None], torch.nn.Module, dict]:
    """One iteration of the bundle's trainer: its network, loss, optimiser and prepare_batch from train.json."""
    parser, network = bundle_network_def(variant)
    parser["device"] = "$torch.device('cpu')"
    # what the bundle's trainer gets for ``amp`` (a reference, expression or literal in train#trainer), on CPU
    parser["bench_trainer_amp"] = parser["train#trainer"].get("amp", False)
    amp = bool(parser.get_parsed_content("bench_trainer_amp"))
    torch.manual_seed(0)
    net = parser.get_parsed_content("network")
    optimizer = parser.get_parsed_content("optimizer")
    if optimizer.param_groups[0]["params"][0] is not next(net.parameters()):
        raise RuntimeError("the bundle's optimiser does not hold the network's parameters")
    trainer = AutoencoderTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=[],
        network=net,
        optimizer=optimizer,
        loss_function=parser.get_parsed_content("loss"),
        prepare_batch=parser.get_parsed_content("prepare_batch"),
        amp=amp,
    )
    trainer.state.iteration = 1
    batch = {parser["prepare_batch"]["key"]: x}
    weight = next(p for p in net.parameters() if p.dim() == 4)  # a conv weight: its memory format
    res_channels = (
        parser.get_parsed_content("network_def#res_channels") if "res_channels" in parser["network_def"] else None
    )
    network = {
        "source": "bundles/streamlines_vqdiff/configs/train.json"
        + ("" if variant == "vqdiff" else f" + {variant}.json"),
        **network,
        "residual_hidden_channels": res_channels or max(network["channels"][-1] // 2, 1),  # the network's default
        "bottleneck": parser["bottleneck"]["_target_"],
        "optimizer": parser["optimizer"]["_target_"],
        "amp": amp,
        "channels_last": not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last),
    }
    return lambda: trainer._iteration(trainer, batch), net, network


def official_step(
    models: ModuleType, settings: dict, variant: str, x: torch.Tensor
) -> tuple[Callable[[], None], torch.nn.Module, dict]:
    """The body of the seed's ``train.py`` loop for ``AllModels`` with that script's settings."""
    names = ("num_hiddens", "num_residual_layers", "num_residual_hiddens", "num_embeddings", "embedding_dim")
    names += ("commitment_cost", "tau", "std", "decay")
    missing = [n for n in names + ("learning_rate",) if n not in settings]
    if missing:
        raise KeyError(f"the official train.py no longer sets {missing}")
    torch.manual_seed(0)
    flags = {flag: flag == VARIANTS[variant] for flag in ("ae", "vae", "vq", "vq_ema", "vq_diff")}
    model = models.AllModels(**{n: settings[n] for n in names}, **flags)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"], amsgrad=False)

    def step() -> None:
        optimizer.zero_grad()
        vq_loss, data_recon, perplexity, _ = model(x)
        recon_error = F.mse_loss(data_recon, x)
        loss = recon_error + vq_loss
        loss.backward()
        optimizer.step()
        recon_error.item()  # train.py logs these every step
        if perplexity is not None:
            perplexity.item()

    return step, model, {"source": f"AllModels({VARIANTS[variant]}=True)", **{n: settings[n] for n in names}}


def gflop(step: Callable[[], None]) -> float:
    """GFLOP of one call of ``step`` (matmuls and convolutions, as ``torch.utils.flop_counter`` counts them)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9


def bench_training(variant: str, models: ModuleType, settings: dict, batch: int, repeats: int, matmul: float) -> dict:
    """Alternating (ABBA) timed steps of ours and the official code on the same batch."""
    x = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    steps, nets, configs = {}, {}, {}
    steps["ours"], nets["ours"], configs["ours"] = our_step(variant, x)
    steps["official"], nets["official"], configs["official"] = official_step(models, settings, variant, x)
    flops = {}
    for side, step in steps.items():
        step()  # warm-up: allocations, Adam state
        flops[side] = gflop(step)
    times = {"ours": [], "official": []}
    for r in range(repeats):
        for side in ("ours", "official") if r % 2 == 0 else ("official", "ours"):
            t0 = time.perf_counter()
            steps[side]()
            times[side].append(time.perf_counter() - t0)
    row = {"batch": batch, "repeats": repeats}
    for side in steps:
        seconds = float(np.median(times[side]))
        row[side] = {
            "network": configs[side],
            "parameters": n_parameters(nets[side]),
            "seconds_per_step": seconds,
            "all_seconds": times[side],
            "gflop_per_step": flops[side],
            "achieved_gflops": flops[side] / seconds,
            "fraction_of_matmul": flops[side] / seconds / matmul,
        }
    row["speed_official_over_ours"] = row["official"]["seconds_per_step"] / row["ours"]["seconds_per_step"]
    return row


def bench_buan(pairs: int, repeats: int) -> dict:
    """Our batched BUAN against dipy's bundle_shape_similarity called as the seed calls it."""
    from dipy.segment.bundles import bundle_shape_similarity

    target, recon = make_pairs(pairs, padded=False)
    ours = bundle_adjacency_batched(recon, target, threshold=THRESHOLD).numpy()
    ours_seconds = time_call(lambda: bundle_adjacency_batched(recon, target, threshold=THRESHOLD), repeats)
    groups = [(list(g.permute(1, 2, 0).numpy()), list(r.permute(1, 2, 0).numpy())) for g, r in zip(target, recon)]
    rng = np.random.default_rng(0)  # the seed passed a RandomState; dipy >= 1.10 takes a Generator
    bundle_shape_similarity(*groups[0], rng, clust_thr=[0], threshold=THRESHOLD)  # warm-up, as ours gets
    t0 = time.perf_counter()
    official = np.array([bundle_shape_similarity(g, r, rng, clust_thr=[0], threshold=THRESHOLD) for g, r in groups])
    official_seconds = time.perf_counter() - t0
    max_diff = float(np.abs(ours - official).max())
    return {
        "pairs": pairs,
        "group": {"streamlines": int(target.shape[2]), "points": int(target.shape[3])},
        "threshold": THRESHOLD,
        "clust_thr": [0],
        "ours": {"function": "monai_genvq.apps.streamlines.bundle_adjacency_batched", "seconds": ours_seconds},
        "official": {
            "function": "dipy.segment.bundles.bundle_shape_similarity, per group",
            "seconds": official_seconds,
        },
        "speed_official_over_ours": official_seconds / ours_seconds,
        "max_abs_diff": max_diff,
        "identical": max_diff <= DIFF_TARGET,
        "mean_buan": float(official.mean()),
    }


def _arvae_numpy2_shim(evaluation: ModuleType) -> bool:
    """AR-VAE's ``continuous_entropy`` stores sklearn's 1-element MI array in a float slot, which NumPy 2
    refuses; wrap ``mutual_info_regression`` in AR-VAE's module namespace to return a 0-d array for one
    feature (the same value). Returns whether the shim was applied."""
    if int(np.__version__.split(".")[0]) < 2:
        return False
    sklearn_mi = evaluation.mutual_info_regression

    def mutual_info_regression(x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
        mi = sklearn_mi(x, y, **kwargs)
        return mi[0] if mi.shape == (1,) else mi

    evaluation.mutual_info_regression = mutual_info_regression
    return True


def bench_metrics(evaluation: ModuleType, repeats: int) -> dict:
    """All five disentanglement metrics: ours (median of ``repeats``) and AR-VAE's (once, seeded)."""
    z, y = disentanglement_inputs()
    ours = compute_disentanglement(z, y)
    ours_seconds = time_call(lambda: compute_disentanglement(z, y), 1, warmup=0)  # tens of seconds
    histogram_seconds = time_call(lambda: compute_disentanglement(z, y, mi_estimator="histogram"), repeats)
    shim = _arvae_numpy2_shim(evaluation)
    calls = {
        "interpretability": lambda: evaluation.compute_interpretability_metric(z, y, ["a0", "a1", "a2"]),
        "scc": lambda: evaluation.compute_correlation_score(z, y),
        "modularity": lambda: evaluation.compute_modularity(z, y),
        "mig": lambda: evaluation.compute_mig(z, y),
        "sap": lambda: evaluation.compute_sap_score(z, y),
    }
    np.random.seed(0)  # sklearn's k-NN MI estimator adds noise drawn from numpy's global generator
    official, seconds = {}, {}
    for name in ARVAE_CALLS:
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):  # AR-VAE's tqdm bars
            try:
                out = calls[name]()
            except Exception as e:  # an official function that fails under today's libraries: say which
                out = {"error": f"{type(e).__name__}: {e}"}
        seconds[name] = time.perf_counter() - t0
        official[name] = out
    interp = official["interpretability"]
    values = {
        "interpretability": interp["mean"][1] if "mean" in interp else interp,
        "interpretability_dims": [interp[a][0] for a in ("a0", "a1", "a2")] if "mean" in interp else None,
        "modularity": official["modularity"].get("modularity_score", official["modularity"]),
        "sap": official["sap"].get("SAP_score", official["sap"]),
        "scc": official["scc"].get("Corr_score", official["scc"]),
        "mig": official["mig"].get("mig", official["mig"]),
    }
    values = {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in values.items()}
    official_seconds = sum(seconds.values())
    comparable = ("interpretability", "sap", "scc")  # identical computations
    jittered = ("modularity", "mig")  # the same k-NN estimator, different jitter draws
    diffs = [abs(values[k] - ours[k]) for k in comparable if isinstance(values[k], float)]
    return {
        "codes": list(z.shape),
        "attributes": y.shape[1],
        "ours": {
            "seconds": ours_seconds,
            "target_seconds": METRIC_TARGET_S,
            "values": {
                "interpretability": ours["interpretability"],
                "interpretability_dims": ours["interpretability_per_attribute"]["dims"],
                **{k: ours[k] for k in ("modularity", "sap", "scc", "mig")},
            },
            "mutual_information": ours["mi_description"],
            "histogram_option_seconds": histogram_seconds,
        },
        "official": {
            "seconds": official_seconds,
            "seconds_per_metric": seconds,
            "values": values,
            "mutual_information": "sklearn mutual_info_regression (k-NN), np.random.seed(0)",
            "numpy2_shim": shim,
        },
        "speed_official_over_ours": official_seconds / ours_seconds,
        "max_abs_diff_interpretability_sap_scc": max(diffs) if len(diffs) == len(comparable) else None,
        "abs_diff_modularity_mig": {
            k: abs(values[k] - ours[k]) if isinstance(values[k], float) else None for k in jittered
        },
    }


def _format_diff(value: float | None) -> str:
    return "n/a (an official metric failed)" if value is None else f"{value:.1e}"


def _print_table(rows: dict, matmul: float, malloc: bool) -> None:
    print(
        f"one thread; fp32 matmul (2048²) {matmul:.1f} GFLOP/s; heap_only_malloc applied: {malloc} (one process: "
        "both sides); speed = official / ours"
    )
    print(f"{'row':<9} {'ours':>12} {'official':>12} {'speed':>8}  notes")
    for name, r in rows.items():
        if "skipped" in r:
            print(f"{name:<9} {r['skipped']}")
        elif name in VARIANTS:
            o, f = r["ours"], r["official"]
            print(
                f"{name:<9} {o['seconds_per_step']:>10.3f} s {f['seconds_per_step']:>10.3f} s "
                f"{r['speed_official_over_ours']:>7.2f}x  s/step at batch {r['batch']}; parameters "
                f"{o['parameters'] / 1e6:.2f}M vs {f['parameters'] / 1e6:.2f}M; GFLOP/step {o['gflop_per_step']:.0f} vs "
                f"{f['gflop_per_step']:.0f}; {100 * o['fraction_of_matmul']:.0f}% vs {100 * f['fraction_of_matmul']:.0f}% of matmul"
            )
        elif name == "buan":
            print(
                f"{name:<9} {r['ours']['seconds']:>10.3f} s {r['official']['seconds']:>10.3f} s "
                f"{r['speed_official_over_ours']:>7.1f}x  {r['pairs']} groups; max |diff| {r['max_abs_diff']:.1e}"
            )
        else:
            print(
                f"{name:<9} {r['ours']['seconds']:>10.3f} s {r['official']['seconds']:>10.3f} s "
                f"{r['speed_official_over_ours']:>7.0f}x  five metrics, {r['codes'][0]} codes x {r['codes'][1]} dims; "
                f"max |diff| of Interpretability, SAP, SCC {_format_diff(r['max_abs_diff_interpretability_sap_scc'])}; "
                f"our histogram option {r['ours']['histogram_option_seconds']:.3f} s"
            )
            print(f"  {'metric':<18} {'ours':>8} {'AR-VAE':>8}")
            for k, v in r["ours"]["values"].items():
                w = r["official"]["values"][k]
                fmt = (lambda a: f"{a:>8.3f}") if isinstance(v, float) else (lambda a: f"{a!s:>8}")
                print(f"  {k:<18} {fmt(v)} {fmt(w) if isinstance(w, type(v)) else str(w)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vqdiff-code", help="checkout of github.com/drewrl3v/diff-vq-vae (rows ae, vqdiff)")
    parser.add_argument("--arvae-code", help="checkout of github.com/ashispati/ar-vae (row metrics)")
    parser.add_argument("--batch", type=int, default=256, help="streamline groups per training step (seed: 256)")
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per side (alternating)")
    parser.add_argument("--pairs", type=int, default=256, help="bundle groups of the BUAN row")
    parser.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS)
    parser.add_argument("--out", default="benchmarks/results/vs_official.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    applied = heap_only_malloc(True)
    matmul = matmul_gflops()
    rows: dict[str, dict] = {}
    official: dict[str, Any] = {}

    models = official_file(args.vqdiff_code, VQDIFF_MODELS, "--vqdiff-code")
    train_py = official_file(args.vqdiff_code, VQDIFF_TRAIN, "--vqdiff-code")
    for variant in [v for v in VARIANTS if v in args.rows]:
        if isinstance(models, str) or isinstance(train_py, str):
            rows[variant] = {"skipped": models if isinstance(models, str) else train_py}
            continue
        official["vqdiff"] = {"models": file_id(models), "train": file_id(train_py)}
        module = import_file(models, "diff_vq_vae_models")
        rows[variant] = bench_training(variant, module, literal_settings(train_py), args.batch, args.repeats, matmul)
        print(f"{variant}: speed {rows[variant]['speed_official_over_ours']:.2f}x", flush=True)
    if "buan" in args.rows:
        rows["buan"] = bench_buan(args.pairs, args.repeats)
    if "metrics" in args.rows:
        evaluation = official_file(args.arvae_code, ARVAE_METRICS, "--arvae-code")
        if isinstance(evaluation, str):
            rows["metrics"] = {"skipped": evaluation}
        else:
            official["arvae"] = {"metrics": file_id(evaluation)}
            rows["metrics"] = bench_metrics(import_file(evaluation, "ar_vae_evaluation"), max(3, args.repeats))
    _print_table(rows, matmul, applied)
    results = {
        "benchmark": "vs_official",
        "machine": machine_info(),
        "threads": torch.get_num_threads(),
        "matmul_gflops_fp32": matmul,
        "heap_only_malloc_applied": applied,
        "heap_only_malloc": "monai_genvq.utils.heap_only_malloc(True) at start: one process, the same for both sides",
        "official_code": official,
        "rows": rows,
        "claims_issue_21": {"ae": 0.99, "vqdiff": [0.77, 0.88], "buan": 38.0, "metrics_seconds": 0.17},
    }
    print(f"wrote {write_results(args.out, results)}")


if __name__ == "__main__":
    main()
