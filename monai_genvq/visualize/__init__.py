from .cardiac import attribute_traversal, plot_attribute_traversal, plot_reconstruction_grid, plot_ssim_distribution

__all__ = ["attribute_traversal", "plot_attribute_traversal", "plot_reconstruction_grid", "plot_ssim_distribution"]
