"""Markdown tables of evaluation results (one format for every bundle)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_mean_std", "markdown_table"]


def format_mean_std(stats: Mapping[str, float] | None, digits: int = 3) -> str:
    """``{"mean": m, "std": s}`` -> ``"m ± s"``; missing -> ``"–"``."""
    if not stats or stats.get("mean") is None:
        return "–"
    return f"{stats['mean']:.{digits}f} ± {stats.get('std', 0.0):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"
