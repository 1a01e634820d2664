"""Evaluation results as numbers and tables: mean ± std summaries, metrics.json collection, Markdown tables.

One summary convention for every table of the package: NaN entries are left out, and the std is the
population standard deviation (``ddof=0``) over what is left, reported with the count ``n``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATASET_NAMES", "collect_metrics", "describe_dataset", "format_mean_std", "markdown_table", "mean_std"]

# display names of the datasets the bundles read (real data, or the layout a generated phantom is written in)
DATASET_NAMES = {
    "acdc": "ACDC",
    "mnms": "M&Ms",
    "tractoinferno": "TractoInferno",
    "dipy": "dipy's bundled tractograms",
    "brats": "BraTS",
    "cryoet": "cryo-ET",
    "decathlon": "Decathlon",
    "hierarchy_toy": "hierarchy-toy volumes",
    "folder": "2-D slice folder",
}
# what a generated stand-in is called when "synthetic <layout>-layout phantom" does not fit
_SYNTHETIC_NAMES = {
    "hierarchy_toy": "synthetic hierarchy-toy volumes",
    "folder": "synthetic 2-D slice set",
}


def format_mean_std(stats: Mapping[str, float] | None, digits: int = 3) -> str:
    """``{"mean": m, "std": s}`` -> ``"m ± s"``; missing -> ``"–"``."""
    if not stats or stats.get("mean") is None:
        return "–"
    return f"{stats['mean']:.{digits}f} ± {stats.get('std', 0.0):.{digits}f}"


def describe_dataset(name: str, split: str = "", synthetic: bool | None = None, location: str = "") -> str:
    """What a report says the data was: the embedded synthetic phantom or the real dataset, and the split.

    Args:
        name: the dataset key of a bundle (``acdc``, ``mnms``, ``tractoinferno``, ``brats``, ``cryoet``,
            ``hierarchy_toy``, ``folder``, ...); a ``synthetic_`` prefix means the generated phantom.
        split: the evaluated split (``test``, ``testing``, ...); left out when empty.
        synthetic: whether the data is the embedded generated phantom. The bundles pass
            ``not @dataset_dir`` (an empty ``dataset_dir`` means the phantom). ``None``: from the prefix.
        location: the real dataset's folder, written after its name (ignored for the phantom).

    Example:
        >>> describe_dataset("acdc", "test", synthetic=True)
        'synthetic ACDC-layout phantom (test split)'
        >>> describe_dataset("acdc", "test", synthetic=False)
        'ACDC (test split)'
        >>> describe_dataset("synthetic_acdc", "test")
        'synthetic ACDC-layout phantom (test split)'
        >>> describe_dataset("brats", "test", synthetic=False, location="/data/BraTS2021")
        'BraTS at /data/BraTS2021 (test split)'
    """
    name = str(name)
    if name.startswith("synthetic_"):
        name = name[len("synthetic_") :]
        synthetic = True if synthetic is None else synthetic
    display = DATASET_NAMES.get(name.lower(), name)
    if synthetic:
        text = _SYNTHETIC_NAMES.get(name.lower(), f"synthetic {display}-layout phantom")
    else:
        text = display + (f" at {location}" if location else "")
    return text + (f" ({split} split)" if split else "")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def mean_std(values: Any) -> dict[str, Any]:
    """``{"mean", "std", "n"}`` of ``values`` (array, tensor or list), NaN entries left out, population std.

    Example:
        >>> mean_std([1.0, 0.5, float("nan")])
        {'mean': 0.75, 'std': 0.25, 'n': 2}
        >>> mean_std([])
        {'mean': nan, 'std': nan, 'n': 0}
    """
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if not v.size:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def collect_metrics(outputs_dir: str | os.PathLike, pattern: str = "*/eval/metrics.json") -> dict[str, dict[str, Any]]:
    """``{variant: metrics}`` from every ``<outputs_dir>/<variant>/…/metrics.json`` matching ``pattern``, by variant.

    The variant is the first folder under ``outputs_dir``. A file that is not valid JSON is an error
    that names it (a half-written or hand-edited file must not silently drop a row of a table).

    Raises:
        ValueError: a matching file is not a JSON object.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "vqvae" / "eval").mkdir(parents=True)
        >>> _ = (root / "vqvae" / "eval" / "metrics.json").write_text('{"mse": 0.1}')
        >>> collect_metrics(root)
        {'vqvae': {'mse': 0.1}}
    """
    outputs_dir = Path(outputs_dir)
    found = {}
    for path in sorted(outputs_dir.glob(pattern)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"'{path}' is not valid JSON ({exc}); rerun that evaluation or remove the file") from exc
        if not isinstance(data, dict):
            raise ValueError(f"'{path}' holds {type(data).__name__}, not a JSON object of metrics")
        found[path.relative_to(outputs_dir).parts[0]] = data
    return found
