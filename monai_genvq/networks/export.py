"""One tensor out of a network that returns a dataclass: for inferers, TorchScript export and MONAI Label.

Our networks return small named outputs (dataclasses). ``torch.jit.script``/``trace`` and MONAI
Label's ``BundleInferTask`` need a module that maps a tensor to a tensor; :class:`TensorOutputNetwork`
is the one thin wrapper every bundle exports (``ckpt_export export_network_def``), and
:func:`network_tensor` is the one function inferers use to read that tensor from either the eager
network (dataclass) or the exported TorchScript module (already the tensor).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from monai_genvq.utils.precision import to_float32

__all__ = ["TensorOutputNetwork", "network_tensor"]


def network_tensor(
    network: Any,
    inputs: torch.Tensor,
    method: str = "forward",
    output: str | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """``getattr(network, method)(inputs, **kwargs)`` reduced to the tensor ``output`` names.

    A TorchScript module (an export of :class:`TensorOutputNetwork`) already computes that tensor, so
    it is simply called. A result that is a tensor is returned as it is; a dataclass/object gives its
    attribute ``output``; a mapping its item ``output``. A float16/bfloat16 result (the network ran under
    AMP) is returned as float32, so metrics, post-processing and writers always see float32.

    Raises:
        ValueError: the result is not a tensor and ``output`` is not given or names nothing in it.

    Example:
        >>> from monai_genvq.networks import ResNetAutoencoder
        >>> network_tensor(ResNetAutoencoder(), torch.zeros(1, 3, 64, 64), output="reconstruction").shape
        torch.Size([1, 3, 64, 64])
    """
    if isinstance(network, torch.jit.ScriptModule):
        return network(inputs)
    result = getattr(network, method)(inputs, **dict(kwargs or {}))
    if isinstance(result, torch.Tensor):
        return to_float32(result)
    if output is not None:
        value = result.get(output) if isinstance(result, Mapping) else getattr(result, output, None)
        if isinstance(value, torch.Tensor):
            return to_float32(value)
    raise ValueError(
        f"{type(network).__name__}.{method} returned {type(result).__name__}; name its tensor field with `output` "
        f"(got output={output!r})"
    )


class TensorOutputNetwork(nn.Module):
    """Wrap a network so that ``forward(x)`` returns one tensor (``getattr(network, method)(x, **kwargs).<output>``).

    The wrapper adds no parameters and its ``state_dict``/``load_state_dict`` are the wrapped
    network's (same keys, no ``network.`` prefix), so training checkpoints (``{"model": state}``)
    load into it unchanged, e.g. through ``python -m monai.bundle ckpt_export export_network_def
    --key_in_ckpt model``. TorchScript cannot export our dataclass outputs; this module can be traced
    (``--use_trace true``) and the result reproduces the eager tensor.

    Args:
        network: the network as built for training/inference (``network_def``).
        output: attribute (or mapping key) of the result holding the tensor; None when the method
            already returns a tensor.
        method: the network's method to call (``"forward"``, or e.g. ``"embed_volume"``).
        kwargs: keyword arguments for that call (e.g. ``{"sample": False}`` for a deterministic VAE).

    Example:
        >>> from monai_genvq.networks import ResNetAutoencoder
        >>> net = TensorOutputNetwork(ResNetAutoencoder(), output="reconstruction").eval()
        >>> traced = torch.jit.trace(net, torch.rand(1, 3, 64, 64))
        >>> sorted(net.state_dict()) == sorted(net.network.state_dict())
        True
    """

    def __init__(
        self,
        network: nn.Module,
        output: str | None = None,
        method: str = "forward",
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not callable(getattr(network, method, None)):
            raise ValueError(f"{type(network).__name__} has no method {method!r}")
        self.network, self.output, self.method, self.kwargs = network, output, method, dict(kwargs or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return network_tensor(self.network, x, self.method, self.output, self.kwargs)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)
