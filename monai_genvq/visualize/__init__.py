"""Figures: image grids, attribute traversals, SSIM distributions, latent projections, streamline renders, segmentation slices."""

from .cardiac import attribute_traversal, plot_attribute_traversal, plot_reconstruction_grid, plot_ssim_distribution
from .grids import atomic_write_bytes, image_grid, save_image_grid

__all__ = ["attribute_traversal", "plot_attribute_traversal", "plot_reconstruction_grid", "plot_ssim_distribution"]
__all__ += ["atomic_write_bytes", "image_grid", "save_image_grid"]
from .projections import PROJECTION_METHODS, PROJECTION_NAMES, pca_2d, poincare_disk_2d, project_codes, save_latent_projection
from .slices import save_segmentation_slices
from .streamlines import as_streamline_points, save_streamline_render

__all__ += ["PROJECTION_METHODS", "PROJECTION_NAMES", "pca_2d", "poincare_disk_2d", "project_codes", "save_latent_projection"]
__all__ += ["save_segmentation_slices", "as_streamline_points", "save_streamline_render"]
from .segmentation import LABEL_COLOURS, crop_around, label_overlay, save_overlay_grid  # noqa: E402

__all__ += ["LABEL_COLOURS", "crop_around", "label_overlay", "save_overlay_grid"]
