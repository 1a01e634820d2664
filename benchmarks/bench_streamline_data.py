"""Streamline data at dataset scale: load + resample + group throughput, the group cache, and peak memory.

A synthetic subject of TractoInferno size is written in the real layout
(``derivatives/trainset/sub-*/tractography/sub-*__<BUNDLE>.trk``, 30 bundles, ``--streamlines`` per
subject split evenly over them; bundle files come from the package's synthetic generator). The bundle's
data path is measured as ``bundles/streamlines_vqdiff/configs/train.json`` builds it (its
``streamline_data`` and ``train``/``validate`` data loaders, every default kept: n_points 64, group
size 64, canonical order, balancing, heap-only malloc; only the dataset folder and the group cache
folder, a temporary one, are set). Each row runs in a fresh process, so its peak memory is its own:

* ``cold``: the default (group cache on) with an empty cache: every file is loaded, resampled, grouped
  and written to the cache, one file in memory at a time;
* ``warm``: the default with the cache filled, what every later run (training again, evaluation, the
  prior) gets: the prepared groups are memory-mapped, nothing is loaded or resampled;
* ``off``: ``group_cache_dir=false``: every file prepared in memory, as every run did before the cache.

``build_s`` is the first access of the data (prepare or read, split, streaming normaliser fit);
``streamlines_per_s`` is the input streamlines over ``build_s``; ``first_epoch_s`` adds one pass of the
train and validation loaders (normalised batches), ``epoch_s`` is the next pass. The speedup is cold over
warm ``first_epoch_s`` (a run's first epoch, prepared vs reused). Scaling: 1x, 4x and 16x the work are
1, 4 and 16 subjects (hard links to the first subject's files under new subject names: distinct paths,
so each is prepared and cached on its own; the files are in the page cache, so this measures CPU work,
not disk). Targets (issue 21): the cache's second-run speedup is reported; peak memory stays bounded with
the cache on (``data_peak_mib``, peak RSS above the process after imports, roughly flat from 1x to 16x),
while without it the prepared groups are held in memory.

    python benchmarks/bench_streamline_data.py [--streamlines 10000] [--scales 1 4 16] [--out benchmarks/results/streamline_data.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import HEAP_ONLY_MALLOC, machine_info, peak_rss_mib, reset_peak_rss, write_results  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "streamlines_vqdiff"
MODES = ("cold", "warm", "off")
N_BUNDLES = 30


def write_subjects(root: Path, template: Path, n_subjects: int) -> Path:
    """A TractoInferno-layout folder with ``n_subjects`` subjects, each linking the template subject's files."""
    for s in range(1, n_subjects + 1):
        subject = f"sub-{s:04d}"
        folder = root / "derivatives" / "trainset" / subject / "tractography"
        folder.mkdir(parents=True)
        for source in sorted(template.iterdir()):
            target = folder / f"{subject}__{source.name}"
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
    return root


def write_template(folder: Path, streamlines: int, workdir: Path) -> tuple[Path, int]:
    """30 bundle files (``<BUNDLE>.trk``) with ``streamlines // 30`` streamlines each; returns (folder, total)."""
    from monai_genvq.apps.streamlines import SYNTHETIC_TRACTS, generate_synthetic_tractoinferno

    per_bundle = max(streamlines // N_BUNDLES, 64)
    n_sources = math.ceil(N_BUNDLES / len(SYNTHETIC_TRACTS))  # synthetic subjects whose tracts fill 30 names
    generated = generate_synthetic_tractoinferno(
        workdir / "generated", n_subjects=n_sources, n_streamlines=per_bundle, splits={"trainset": n_sources}
    )
    files = sorted((generated / "derivatives" / "trainset").glob("sub-*/tractography/*.trk"))[:N_BUNDLES]
    folder.mkdir(parents=True)
    for index, path in enumerate(files):
        tract = path.stem.split("__", 1)[1]
        os.replace(path, folder / f"{tract}_{index // len(SYNTHETIC_TRACTS) + 1}.trk")
    shutil.rmtree(generated)
    return folder, per_bundle * N_BUNDLES


def measure(dataset_dir: str, cache: str) -> dict:
    """One row in this process: build the bundle's data and loaders, then two epochs."""
    from monai.bundle import ConfigParser

    from monai_genvq.utils import heap_only_malloc

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.update({"bundle_root": str(BUNDLE), "dataset": "tractoinferno", "dataset_dir": dataset_dir})
    parser["group_cache_dir"] = cache if cache else False
    applied = heap_only_malloc(parser.get_parsed_content("heap_only_malloc"))  # as the bundle's initialize does
    reset_peak_rss()
    baseline = peak_rss_mib()

    start = time.perf_counter()
    data = parser.get_parsed_content("streamline_data")
    n_train = len(data.train)  # the first access builds everything
    build = time.perf_counter() - start
    loaders = [parser.get_parsed_content(f"{section}#dataloader") for section in ("train", "validate")]
    epochs = []
    for _ in range(2):
        start = time.perf_counter()
        for loader in loaders:
            for _batch in loader:
                pass
        epochs.append(time.perf_counter() - start)
    peak = peak_rss_mib()
    return {
        "build_s": build,
        "first_epoch_s": build + epochs[0],
        "epoch_s": epochs[1],
        "train_samples": n_train,
        "validation_samples": len(data.validation),
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "data_peak_mib": peak - baseline,
        "heap_only_malloc_applied": applied,
        "n_points": data.n_points,
        "group_size": data.group_size,
    }


def _measure_in_child(dataset_dir: Path, cache: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--one", str(dataset_dir), str(cache or "")]
    env = {k: v for k, v in os.environ.items() if k not in HEAP_ONLY_MALLOC}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _cache_mib(cache: Path) -> float:
    return sum(p.stat().st_size for p in cache.glob("*.npy")) / 2**20 if cache.is_dir() else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streamlines", type=int, default=10000, help="streamlines per subject (30 bundles)")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16], help="subjects per row (work)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--workdir", default=None, help="temporary folder for the data and caches")
    parser.add_argument("--out", default="benchmarks/results/streamline_data.json")
    parser.add_argument("--one", nargs=2, metavar=("DATASET_DIR", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one measurement, JSON on the last line
        print(json.dumps(measure(*args.one)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench_streamline_data-", dir=args.workdir))
    rows = []
    try:
        started = time.perf_counter()
        template, per_subject = write_template(workdir / "template", args.streamlines, workdir)
        print(
            f"subject: {N_BUNDLES} bundles x {per_subject // N_BUNDLES} = {per_subject} streamlines "
            f"({sum(p.stat().st_size for p in template.iterdir()) / 2**20:.0f} MiB of .trk), "
            f"written in {time.perf_counter() - started:.0f} s under {workdir}"
        )
        print(
            f"{'scale':>5} {'streamlines':>11} {'mode':>5} {'build s':>8} {'streaml/s':>10} {'1st epoch s':>11} "
            f"{'epoch s':>8} {'samples':>7} {'peak MiB':>9} {'data MiB':>9}"
        )
        for scale in args.scales:
            dataset_dir = write_subjects(workdir / f"x{scale}", template, scale)
            cache = workdir / f"cache_x{scale}"
            for mode in args.modes:
                if mode == "warm" and not cache.is_dir():  # warm needs a filled cache: fill it, unmeasured
                    _measure_in_child(dataset_dir, cache)
                r = _measure_in_child(dataset_dir, None if mode == "off" else cache)
                streamlines = per_subject * scale
                r.update(
                    scale=scale,
                    subjects=scale,
                    files=N_BUNDLES * scale,
                    streamlines=streamlines,
                    mode=mode,
                    streamlines_per_s=streamlines / r["build_s"],
                    cache_mib=_cache_mib(cache) if mode != "off" else 0.0,
                )
                rows.append(r)
                print(
                    f"{scale:>4}x {streamlines:>11} {mode:>5} {r['build_s']:>8.2f} {r['streamlines_per_s']:>10.0f} "
                    f"{r['first_epoch_s']:>11.2f} {r['epoch_s']:>8.2f} {r['train_samples'] + r['validation_samples']:>7} "
                    f"{r['peak_rss_mib']:>9.0f} {r['data_peak_mib']:>9.0f}"
                )
            shutil.rmtree(dataset_dir)
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def row(scale: int, mode: str) -> dict | None:
        return next((r for r in rows if r["scale"] == scale and r["mode"] == mode), None)

    speedup = {}
    for scale in args.scales:
        cold, warm, off = row(scale, "cold"), row(scale, "warm"), row(scale, "off")
        if warm and cold:
            speedup[f"{scale}x"] = {"warm_vs_cold": cold["first_epoch_s"] / warm["first_epoch_s"]}
            if off:
                speedup[f"{scale}x"]["warm_vs_off"] = off["first_epoch_s"] / warm["first_epoch_s"]
            print(
                f"{scale}x: warm (cache filled) first epoch {cold['first_epoch_s'] / warm['first_epoch_s']:.1f}x "
                "faster than cold"
                + (f", {off['first_epoch_s'] / warm['first_epoch_s']:.1f}x than cache off" if off else "")
            )
    growth = {}
    low, high = min(args.scales), max(args.scales)
    for mode in args.modes:
        a, b = row(low, mode), row(high, mode)
        if a and b and high > low:
            growth[mode] = {"work": high / low, "data_peak_mib": [a["data_peak_mib"], b["data_peak_mib"]]}
            print(
                f"{mode}: data peak {a['data_peak_mib']:.0f} -> {b['data_peak_mib']:.0f} MiB for {high // low}x the work"
            )
    results = {
        "machine": machine_info(),
        "subject": {"bundles": N_BUNDLES, "streamlines": per_subject, "per_bundle": per_subject // N_BUNDLES},
        "scaling": "N x the work = N subjects (hard links to subject 1's files under new names)",
        "config": "bundles/streamlines_vqdiff/configs/train.json (defaults; dataset_dir and group_cache_dir set)",
        "rows": rows,
        "speedup_first_epoch": speedup,
        "memory_growth": growth,
        "targets": {"peak_memory": "data_peak_mib roughly flat from 1x to 16x with the cache on (cold, warm)"},
    }
    print(f"wrote {write_results(args.out, results)}")


if __name__ == "__main__":
    main()
