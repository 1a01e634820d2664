"""The VQ-Diff paper's Table 1 layout (BUAN per bundle × method) from evaluation ``metrics.json`` files.

Usage (from the repository root, after training and evaluating with the bundle's own commands)::

    python -m monai_genvq.apps.streamlines.table1 \\
        --column "AE=bundles/streamlines_vqdiff/outputs/ae*/eval/metrics.json" \\
        --column "VQ-Diff=bundles/streamlines_vqdiff/outputs/vqdiff*/eval/metrics.json" \\
        --output table1.md

Each ``--column LABEL=GLOB`` is one method; every file the glob matches is one training seed. The first
row holds the paper's numbers (mean of its 12 TractoInferno bundles, Table 1) for the paper method the
label starts with (``AE``, ``VAE``, ``VQ-VAE``, ``VQ-EMA``, ``VQ-Diff``); a bundle the paper also reports
gets a ``(paper)`` row above ours.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monai_genvq.utils.fileio import atomic_write_text
from monai_genvq.utils.tables import markdown_table

__all__ = ["PAPER_METHODS", "VQDIFF_TABLE1", "paper_method", "table1_markdown"]

PAPER_METHODS = ("VQ-Diff", "AE", "VAE", "VQ-VAE", "VQ-EMA")

#: Table 1 of the VQ-Diff paper (Lizarraga et al.): BUAN (``clust_thr=[0]``, threshold 0.05 in the
#: normalised [-1, 1] space) on the validation groups of 12 TractoInferno bundles, mean ± std over groups,
#: as printed (the paper's "IFOF.L" is IFOF_L).
VQDIFF_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    name: dict(zip(PAPER_METHODS, values))
    for name, values in {
        "PYT_R": ((0.9988, 0.0038), (0.9999, 0.0003), (0.4989, 0.1923), (0.7154, 0.1227), (0.6849, 0.126696)),
        "PYT_L": ((0.9988, 0.0039), (0.9999, 0.0007), (0.4764, 0.2045), (0.7045, 0.1179), (0.6778, 0.119968)),
        "POPT_R": ((0.9990, 0.0034), (0.9999, 0.0008), (0.4649, 0.2166), (0.6867, 0.1494), (0.6562, 0.150048)),
        "POPT_L": ((0.9989, 0.0037), (0.9999, 0.0009), (0.4815, 0.2145), (0.6869, 0.1397), (0.6508, 0.144388)),
        "ILF_R": ((0.9910, 0.0114), (0.9999, 0.0008), (0.2726, 0.2019), (0.3409, 0.1631), (0.2836, 0.159151)),
        "ILF_L": ((0.9910, 0.0112), (0.9999, 0.0007), (0.2399, 0.2018), (0.3228, 0.1561), (0.2408, 0.149510)),
        "IFOF_R": ((0.9888, 0.0133), (0.9988, 0.0012), (0.2808, 0.2366), (0.3437, 0.1970), (0.2793, 0.188292)),
        "IFOF_L": ((0.9855, 0.0164), (0.9975, 0.0016), (0.2340, 0.2130), (0.3143, 0.1773), (0.2296, 0.162993)),
        "FPT_R": ((0.9976, 0.0058), (0.9999, 0.0008), (0.2832, 0.2102), (0.5063, 0.1795), (0.4357, 0.188509)),
        "FPT_L": ((0.9971, 0.0074), (0.9999, 0.0006), (0.2689, 0.2261), (0.4983, 0.2025), (0.4335, 0.209599)),
        "CC_Fr_1": ((0.9974, 0.0110), (0.9999, 0.0004), (0.3750, 0.2033), (0.3380, 0.1742), (0.2458, 0.153786)),
        "MCP": ((0.9986, 0.0043), (0.9999, 0.0008), (0.3593, 0.2528), (0.4989, 0.2298), (0.3740, 0.232267)),
    }.items()
}


def paper_method(label: str) -> str | None:
    """The paper method a column label refers to: its first word, if that is one of :data:`PAPER_METHODS`.

    Example:
        >>> paper_method("VAE (global, paper)"), paper_method("VQ-VAE + remedies"), paper_method("KMeans")
        ('VAE', 'VQ-VAE', None)
    """
    first = label.split()[0] if label.split() else ""
    return first if first in PAPER_METHODS else None


def _cell(values: Sequence[float], group_stds: Sequence[float], digits: int) -> str:
    if not values:
        return "–"
    mean = float(np.mean(values))
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else float(group_stds[0])
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def table1_markdown(runs: Mapping[str, Sequence[Mapping]], space: str = "buan_normalised", digits: int = 3) -> str:
    """Table 1 layout: one row per bundle, one column per method, the paper's numbers in the first row.

    A cell is the mean over seeds (one ``metrics.json`` each) of the per-bundle mean BUAN over groups;
    after ``±`` comes the standard deviation over seeds (sample, ddof 1) when there are two seeds or more,
    and the standard deviation over groups (the paper's ``±``) for a single seed. The caption says which
    and how many seeds each column has.

    Args:
        runs: column label -> the evaluation results (parsed ``metrics.json``) of each seed.
        space: ``"buan_normalised"`` (the paper's threshold 0.05 in [-1, 1]) or ``"buan_mm"``.
        digits: decimals.

    Returns:
        Markdown: caption and table.

    Raises:
        ValueError: no runs, or a column without results.

    Example:
        >>> print(table1_markdown({"AE": [metrics]}))  # doctest: +SKIP
    """
    if not runs:
        raise ValueError("table1_markdown needs at least one column of results.")
    empty = [label for label, results in runs.items() if not results]
    if empty:
        raise ValueError(f"no metrics.json results for column(s) {empty}.")
    labels = list(runs)
    bundles = sorted(
        {
            name
            for results in runs.values()
            for res in results
            for name, v in res[space].items()
            if isinstance(v, Mapping) and "mean" in v and name != "all"
        }
    )
    paper_row = ["seed paper (TractoInferno, mean of its 12 bundles)"]
    for label in labels:
        method = paper_method(label)
        paper_row.append(
            f"{np.mean([VQDIFF_TABLE1[b][method][0] for b in VQDIFF_TABLE1]):.4f}" if method is not None else "–"
        )
    rows = [paper_row]
    for name in [*bundles, "all"]:
        if name in VQDIFF_TABLE1:
            rows.append(
                [f"{name} (paper)"]
                + [
                    "{:.4f} ± {:.4f}".format(*VQDIFF_TABLE1[name][paper_method(label)]) if paper_method(label) else "–"
                    for label in labels
                ]
            )
        row = [f"**{name}**" if name == "all" else name]
        for label in labels:
            stats = [res[space][name] for res in runs[label] if isinstance(res[space].get(name), Mapping)]
            row.append(_cell([s["mean"] for s in stats], [s.get("std", float("nan")) for s in stats], digits))
        rows.append(row)
    first = next(iter(runs.values()))[0][space]
    seeds = ", ".join(f"{label}: {len(results)}" for label, results in runs.items())
    caption = (
        f"BUAN (clust_thr=[0]) of reconstructions vs inputs, {space.replace('buan_', '')} space, threshold "
        f"{first.get('threshold')}; cell = mean over seeds of the per-bundle mean over groups, ± = std over seeds "
        f"(ddof 1) where a column has >= 2 seeds, else std over groups (the paper's ±). Seeds per column: {seeds}.\n\n"
    )
    return caption + markdown_table(["bundle", *labels], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--column", action="append", required=True, help="LABEL=GLOB of metrics.json files (one per seed)"
    )
    parser.add_argument("--space", default="buan_normalised", choices=["buan_normalised", "buan_mm"])
    parser.add_argument("--output", default="", help="write the table here as well as to stdout")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {}
    for spec in args.column:
        label, sep, pattern = spec.partition("=")
        if not sep or not label or not pattern:
            parser.error(f"--column needs LABEL=GLOB, got {spec!r}")
        files = sorted(glob.glob(pattern))
        if not files:
            parser.error(f"--column {label}: no file matches {pattern!r}")
        runs[label] = [json.loads(Path(f).read_text()) for f in files]
    table = table1_markdown(runs, space=args.space)
    print(table)
    if args.output:
        atomic_write_text(args.output, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
