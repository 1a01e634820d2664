"""Inferers that return one tensor, as MONAI evaluators and MONAI Label's ``BundleInferTask`` call them.

``inferer(inputs, network)`` -> tensor, for the eager network (dataclass outputs) and for its
TorchScript export (:class:`~monai_genvq.networks.TensorOutputNetwork`) alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.inferers import Inferer

from monai_genvq.networks.export import network_tensor

__all__ = ["OutputInferer"]


class OutputInferer(Inferer):
    """Returns the tensor ``output`` of ``network(inputs, **kwargs)``, optionally as a label map (argmax over channels).

    Args:
        output: field of the network's output dataclass (e.g. ``"reconstruction"``, ``"logits"``).
        kwargs: keyword arguments of the call (e.g. ``{"sample": False}``: VAEs decode their posterior mean).
        argmax: return ``argmax`` over the channel axis, keeping it: (B, 1, *spatial) int64 labels.

    Example:
        >>> from monai_genvq.networks import ResNetAutoencoder
        >>> OutputInferer("reconstruction")(torch.zeros(1, 3, 64, 64), ResNetAutoencoder()).shape
        torch.Size([1, 3, 64, 64])
    """

    def __init__(self, output: str, kwargs: Mapping[str, Any] | None = None, argmax: bool = False) -> None:
        super().__init__()
        self.output, self.kwargs, self.argmax = output, dict(kwargs or {}), bool(argmax)

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        out = network_tensor(network, inputs, "forward", self.output, {**self.kwargs, **kwargs})
        return out.argmax(1, keepdim=True) if self.argmax else out
