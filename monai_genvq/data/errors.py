"""Errors raised on bad input files: each message names the file and what is wrong with it."""

from __future__ import annotations

__all__ = ["DataSplitError", "VolumeFileError"]


class VolumeFileError(ValueError):
    """A volume file is missing, unreadable, truncated or holds unusable values (the message names it)."""


class DataSplitError(ValueError):
    """A split option (e.g. ``n_test``) does not fit the data found (the message names the option, folder and counts)."""
