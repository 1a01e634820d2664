"""Figures: image grids, attribute traversals, SSIM distributions."""

from .cardiac import attribute_traversal, plot_attribute_traversal, plot_reconstruction_grid, plot_ssim_distribution
from .grids import atomic_write_bytes, image_grid, save_image_grid

__all__ = ["attribute_traversal", "plot_attribute_traversal", "plot_reconstruction_grid", "plot_ssim_distribution"]
__all__ += ["atomic_write_bytes", "image_grid", "save_image_grid"]
from .segmentation import LABEL_COLOURS, crop_around, label_overlay, save_overlay_grid  # noqa: E402

__all__ += ["LABEL_COLOURS", "crop_around", "label_overlay", "save_overlay_grid"]
