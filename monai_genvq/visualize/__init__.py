"""Figures: image grids."""

from .grids import atomic_write_bytes, image_grid, save_image_grid

__all__ = ["atomic_write_bytes", "image_grid", "save_image_grid"]
