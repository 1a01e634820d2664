"""What MONAI Label may do with a bundle: the ``monai_label`` section of its ``configs/metadata.json``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["MonaiLabelSpec", "read_monai_label_spec"]

TRAINS_FROM = ("labels", "images")


class MonaiLabelSpec(dict):
    """The parsed ``monai_label`` section of a bundle's metadata (a dict with checked keys).

    Keys: ``served_as`` (``"segmentation"``, or None for a bundle whose output is not a label map),
    ``why`` (for an unserved bundle: what its output is and how to use it instead), ``labels``
    (name -> id of the served label map), ``trains_from`` (``"labels"``: annotated images only;
    ``"images"``: every image, labels used for validation only), ``train_configs`` (the training
    stages, each a list of config files stacked in order), ``trained_model`` (the run-folder-relative
    checkpoint the last stage leaves, published to ``models/model.pt``), ``pretrained`` (whether
    MONAI Label's "pretrained" option may load ``models/model.pt`` into the training network).

    Example:
        >>> spec = MonaiLabelSpec.parse({"served_as": None, "why": "a reconstruction"}, "bundles/x")
        >>> spec.served
        False
    """

    @property
    def served(self) -> bool:
        return self.get("served_as") == "segmentation"

    @classmethod
    def parse(cls, section: Any, where: str) -> MonaiLabelSpec:
        if not isinstance(section, Mapping) or "served_as" not in section:
            raise ValueError(f"{where}: metadata.json has no 'monai_label' section with 'served_as'")
        spec = cls(section)
        if spec.get("served_as") not in (None, "segmentation"):
            raise ValueError(
                f"{where}: monai_label.served_as must be 'segmentation' or null, got {spec['served_as']!r}"
            )
        if not spec.served:
            if not spec.get("why"):
                raise ValueError(f"{where}: an unserved bundle must say why in monai_label.why")
            return spec
        labels = spec.get("labels")
        if (
            not isinstance(labels, Mapping)
            or not labels
            or not all(isinstance(v, int) and v > 0 for v in labels.values())
        ):
            raise ValueError(f"{where}: monai_label.labels must map label names to ids > 0, got {labels!r}")
        if spec.get("trains_from") not in TRAINS_FROM:
            raise ValueError(
                f"{where}: monai_label.trains_from must be one of {TRAINS_FROM}, got {spec.get('trains_from')!r}"
            )
        stages = spec.get("train_configs")
        if not stages or not all(isinstance(s, list) and s for s in stages):
            raise ValueError(f"{where}: monai_label.train_configs must be a list of config-file lists, got {stages!r}")
        if not isinstance(spec.get("trained_model"), str):
            raise ValueError(f"{where}: monai_label.trained_model must be a run-folder-relative path")
        spec.setdefault("pretrained", True)
        return spec


def read_monai_label_spec(bundle: str | os.PathLike) -> MonaiLabelSpec:
    """Read and check the ``monai_label`` section of ``<bundle>/configs/metadata.json``.

    Args:
        bundle: the bundle folder.

    Raises:
        ValueError: the section is missing or malformed (naming the bundle).

    Example:
        >>> read_monai_label_spec("bundles/hyperbolic_brats_seg").served  # doctest: +SKIP
        True
    """
    path = os.path.join(str(bundle), "configs", "metadata.json")
    with open(path) as f:
        metadata = json.load(f)
    return MonaiLabelSpec.parse(metadata.get("monai_label"), path)
