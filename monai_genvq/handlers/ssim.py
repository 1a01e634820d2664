"""Ignite handler for MONAI's SSIM metric (the Attri-SIVAE reconstruction score)."""

from __future__ import annotations

from collections.abc import Callable

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.handlers.utils import from_engine
from monai.metrics import SSIMMetric

__all__ = ["SSIMHandler"]


class SSIMHandler(IgniteMetricHandler):
    """Mean SSIM of reconstructions over an epoch, MONAI :class:`~monai.metrics.SSIMMetric`.

    Defaults are the settings reported with every SSIM of the package: Gaussian window 11,
    σ = 1.5, ``data_range`` 1 (images in [0, 1]), k1 = 0.01, k2 = 0.03 — equal to scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Args:
        spatial_dims: 2 or 3.
        data_range: intensity range of the images.
        output_transform: maps ``engine.state.output`` to ``(reconstruction, image)``.

    Example:
        >>> SSIMHandler().attach(evaluator, "val_ssim")  # doctest: +SKIP
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        data_range: float = 1.0,
        output_transform: Callable = from_engine(["pred", "label"]),
    ) -> None:
        super().__init__(
            metric_fn=SSIMMetric(spatial_dims=spatial_dims, data_range=data_range), output_transform=output_transform
        )
