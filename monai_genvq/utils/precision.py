"""What stays float32 when a bundle trains or infers under automatic mixed precision (AMP).

Under ``torch.autocast`` convolutions and matrix products run in float16 (CUDA) or bfloat16 (CPU). Loss
terms (KL divergences, log-likelihoods, log-sum-exp) are computed by the engines on :func:`to_float32`
outputs, and numerics that lose their meaning in half precision (Poincaré-ball maps near the boundary,
MAP refinement of a latent) run inside :func:`float32_region`, with autocast switched off.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

__all__ = ["autocast_active", "float32_region", "to_float32"]

_HALF = (torch.float16, torch.bfloat16)
_AUTOCAST_DEVICES = ("cuda", "cpu")
F = TypeVar("F", bound=Callable[..., Any])


def autocast_active() -> bool:
    """Whether ``torch.autocast`` is on for CUDA or CPU in this thread.

    Example:
        >>> with torch.autocast("cpu"):
        ...     autocast_active()
        True
    """
    return any(torch.is_autocast_enabled(d) for d in _AUTOCAST_DEVICES)


def to_float32(value: Any) -> Any:
    """``value`` with every float16/bfloat16 tensor cast to float32, through tuples, lists, dicts and dataclasses.

    Other tensors (float32, float64, integer) and other objects are returned as they are.

    Args:
        value: a tensor, a container of tensors, or a dataclass instance (e.g. a network's output).

    Example:
        >>> to_float32({"a": torch.zeros(2, dtype=torch.float16), "n": 3})["a"].dtype
        torch.float32
    """
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in _HALF else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: to_float32(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, Mapping):
        return type(value)({k: to_float32(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        converted = [to_float32(v) for v in value]
        return type(value)(*converted) if hasattr(value, "_fields") else type(value)(converted)
    return value


def float32_region(fn: F) -> F:
    """Decorator: run ``fn`` in float32 even when it is called under ``torch.autocast``.

    Inside an autocast region the wrapped function runs with autocast off (CUDA and CPU) and its
    float16/bfloat16 tensor arguments cast to float32; outside one it is called unchanged (float64 inputs
    stay float64).

    Example:
        >>> @float32_region
        ... def gram(x):
        ...     return x @ x.T
        >>> with torch.autocast("cpu"):
        ...     gram(torch.ones(2, 3)).dtype
        torch.float32
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not autocast_active():
            return fn(*args, **kwargs)
        with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
            return fn(*to_float32(args), **to_float32(kwargs))

    return wrapper  # type: ignore[return-value]
