"""Ventricular volumes of the end-diastolic ground truth: the attributes Attri-SIVAE regularises.

Cetin et al. 2023 (Attri-VAE) and the Attri-SIVAE seed: LVEDV, MEDV (myocardial volume) and RVEDV
in mL, from the ED ground truth in the package's internal label convention (1 LV, 2 MYO, 3 RV).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform, Transform

from monai_genvq.data.cardiac import CARDIAC_LABELS
from monai_genvq.transforms.cardiac import _as_numpy, _squeeze_channel

__all__ = ["ATTRIBUTE_NAMES", "CardiacAttributes", "CardiacAttributesd", "cardiac_attributes"]

ATTRIBUTE_NAMES = ("LVEDV", "MEDV", "RVEDV")
_ATTRIBUTE_LABELS = (CARDIAC_LABELS["LV"], CARDIAC_LABELS["MYO"], CARDIAC_LABELS["RV"])


def cardiac_attributes(label: Any, spacing: Sequence[float]) -> np.ndarray:
    """LVEDV, MEDV and RVEDV in mL: voxel counts of labels 1, 2, 3 × voxel volume (mm³) / 1000.

    Args:
        label: ED ground truth (X, Y, Z) or (1, X, Y, Z), internal convention.
        spacing: voxel size in mm (3 values).

    Example:
        >>> lab = np.zeros((4, 4, 2), np.uint8); lab[0, 0, 0] = 1; lab[1, :, :] = 3
        >>> [round(float(v), 6) for v in cardiac_attributes(lab, (2.0, 2.0, 10.0))]  # 40 mm³ per voxel
        [0.04, 0.0, 0.32]
    """
    label = _squeeze_channel(_as_numpy(label), 3)
    spacing = np.asarray(_as_numpy(spacing), dtype=np.float64).reshape(-1)
    if spacing.size != label.ndim or np.any(~np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ValueError(f"spacing must hold {label.ndim} positive voxel sizes (mm); got {spacing.tolist()}")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    counts = np.bincount(label.reshape(-1).astype(np.int64), minlength=4)
    return np.array([counts[k] * voxel_ml for k in _ATTRIBUTE_LABELS], dtype=np.float32)


class CardiacAttributes(Transform):
    """Array transform: ED ground truth + spacing -> ``[LVEDV, MEDV, RVEDV]`` (mL) as a float32 tensor.

    Example:
        >>> CardiacAttributes()(np.ones((2, 2, 1), np.uint8), (10.0, 10.0, 10.0))
        tensor([4., 0., 0.])
    """

    def __call__(self, label: Any, spacing: Sequence[float]) -> torch.Tensor:  # type: ignore[override]
        return torch.as_tensor(cardiac_attributes(label, spacing))


class CardiacAttributesd(MapTransform):
    """Dictionary form of :class:`CardiacAttributes`.

    Args:
        label_key: key of the 3-D ED ground truth (run before the 2-D alignment).
        spacing_key: key of the voxel spacing (mm).
        output_key: key that receives the (3,) attribute tensor.

    Example:
        >>> d = CardiacAttributesd()({"label": np.ones((2, 2, 1), np.uint8), "spacing": (10.0, 10.0, 10.0)})
        >>> d["attributes"]
        tensor([4., 0., 0.])
    """

    def __init__(self, label_key: str = "label", spacing_key: str = "spacing", output_key: str = "attributes") -> None:
        super().__init__(keys=[label_key])
        self.label_key, self.spacing_key, self.output_key = label_key, spacing_key, output_key
        self.op = CardiacAttributes()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.output_key] = self.op(d[self.label_key], d[self.spacing_key])
        return d
