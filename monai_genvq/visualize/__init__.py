"""Figures: image grids, attribute traversals, SSIM distributions, latent projections, streamline renders, segmentation slices."""

from __future__ import annotations

from monai_genvq.visualize.grids import image_grid, plot_reconstruction_grid, pyplot, save_figure, save_image_grid
from monai_genvq.visualize.projections import (
    PROJECTION_METHODS,
    PROJECTION_NAMES,
    pca_2d,
    project_codes,
    save_latent_projection,
)
from monai_genvq.visualize.segmentation import (
    LABEL_COLOURS,
    add_label_legend,
    crop_around,
    label_legend_handles,
    label_overlay,
    save_overlay_grid,
)
from monai_genvq.visualize.slices import save_segmentation_slices

__all__ = [
    "LABEL_COLOURS",
    "PROJECTION_METHODS",
    "PROJECTION_NAMES",
    "add_label_legend",
    "crop_around",
    "image_grid",
    "label_legend_handles",
    "label_overlay",
    "pca_2d",
    "plot_reconstruction_grid",
    "project_codes",
    "pyplot",
    "save_figure",
    "save_image_grid",
    "save_latent_projection",
    "save_overlay_grid",
    "save_segmentation_slices",
]
