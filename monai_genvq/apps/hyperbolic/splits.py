"""The hold-out split of the hyperbolic bundles: the last ``n_test`` cases of a folder are the test set."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from monai_genvq.data.errors import DataSplitError

__all__ = ["split_test_records"]


def split_test_records(
    records: Sequence[Any], n_test: int, folder: str | os.PathLike = "", part: str = "train"
) -> list[Any]:
    """The training (``part="train"``) or test (``part="test"``) records: the test set is the last ``n_test``.

    Both sides must be non-empty, so a test set is never silently the training data (today's
    ``records[:-n]`` with ``n >= len(records)`` trains on everything) and training never runs on nothing.

    Args:
        records: every case of the dataset folder, in a fixed order.
        n_test: cases held out for evaluation (the bundles' ``--n_test``).
        folder: the dataset folder, named in the error.
        part: "train" or "test".

    Raises:
        DataSplitError: ``n_test`` < 1 or ``n_test`` >= the number of cases (the message names the option,
            the folder and the counts).

    Example:
        >>> split_test_records(["a", "b", "c"], 1, part="test"), split_test_records(["a", "b", "c"], 1)
        (['c'], ['a', 'b'])
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    records = list(records)
    where = f" in '{folder}'" if str(folder) else ""
    try:
        n = int(n_test)
        valid = n == n_test
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise DataSplitError(f"n_test must be a whole number of cases, got {n_test!r}")
    if n < 1:
        raise DataSplitError(
            f"n_test={n}: at least 1 case must be held out for evaluation; the dataset{where} has {len(records)} cases"
        )
    if n >= len(records):
        hint = (
            f"pass --n_test {len(records) - 1} or less"
            if len(records) > 1
            else "at least 2 cases are needed (1 to train, 1 to test)"
        )
        raise DataSplitError(
            f"n_test={n} is too large: the dataset{where} has {len(records)} case(s), which leaves "
            f"{max(len(records) - n, 0)} to train on; {hint}"
        )
    return records[:-n] if part == "train" else records[-n:]
