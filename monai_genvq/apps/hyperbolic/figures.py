"""Figures of the hyperbolic app: Poincaré-ball codes drawn in the unit disk.

Hsu et al. (2021) plot their hyperbolic embeddings in the disk: codes on the ball of curvature -c
are mapped to the origin's tangent space (``logmap0``), projected onto their two principal
directions *without centring* (the origin, where a hierarchy's root sits, stays at the centre),
mapped back with ``expmap0`` on the 2-D ball and scaled by √c into the unit disk. A 2-D latent is
drawn as it is (only the √c scaling), so distances to the centre are exact there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from monai_genvq.apps.hyperbolic.manifold import as_curvature, expmap0, logmap0
from monai_genvq.visualize.projections import _as_codes, _principal_axes

__all__ = ["poincare_disk_2d"]


def poincare_disk_2d(codes: Any, c: float = 1.0) -> np.ndarray:
    """(N, D) points of the Poincaré ball of curvature -c -> (N, 2) points of the unit disk (module docstring).

    Example:
        >>> p = poincare_disk_2d(np.array([[0.5, 0.0, 0.1], [0.0, -0.9, 0.0]]))
        >>> bool((np.linalg.norm(p, axis=1) < 1).all())
        True
    """
    if not c > 0:
        raise ValueError(f"the Poincaré disk needs a curvature magnitude c > 0, got {c}")
    x = torch.as_tensor(_as_codes(codes))
    if x.shape[1] > 2:
        tangent = logmap0(x, as_curvature(c, x)).numpy()
        tangent2 = tangent @ _principal_axes(tangent)
        x = expmap0(torch.as_tensor(tangent2), as_curvature(c, x))
    elif x.shape[1] == 1:
        x = torch.cat([x, torch.zeros_like(x)], 1)
    else:
        x = expmap0(logmap0(x, as_curvature(c, x)), as_curvature(c, x))  # only clamps into the open ball
    return x.numpy() * np.sqrt(c)
