"""Ignite handlers wrapping the package's metrics."""

from .buan import BUANHandler

__all__ = ["BUANHandler"]
