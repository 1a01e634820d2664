"""Errors raised on bad input files: each message names the file and what is wrong with it."""

from __future__ import annotations

__all__ = ["VolumeFileError"]


class VolumeFileError(ValueError):
    """A volume file is missing, unreadable, truncated or holds unusable values (the message names it)."""
