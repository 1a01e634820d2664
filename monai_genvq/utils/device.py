"""The device a bundle runs on, and the options that only pay off on a GPU (AMP, pinned memory, channels-last).

Every bundle config reads ``"device": "$monai_genvq.utils.resolve_device('auto')"``; a command-line
``--device cuda`` (or ``cuda:1``, ``cpu``) replaces that expression with the plain string, so everything that
reads ``@device`` accepts a string or a ``torch.device``, and :func:`resolve_device` turns either into a
``torch.device`` with a clear error when a GPU is asked for but torch sees none. The GPU-only options
``amp``, ``pin_memory`` and ``channels_last`` are ``"auto"`` in the configs (on exactly when the device is
CUDA) or ``true``/``false``; :func:`cuda_option` resolves them (the command line's ``--amp false`` arrives
as the text ``'false'``, which Python would read as true).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from monai_genvq.utils.errors import OptionError, check_option

__all__ = ["AUTO", "cuda_option", "on_cuda", "resolve_device", "to_device"]

AUTO = "auto"


def resolve_device(device: str | torch.device | None = AUTO) -> torch.device:
    """The ``torch.device`` of a ``--device`` value: ``"auto"`` (CUDA when torch sees a GPU, else CPU), ``"cpu"``,
    ``"cuda"``, ``"cuda:N"``, or a ``torch.device``.

    Args:
        device: the value; ``None`` means ``"auto"``.

    Raises:
        OptionError: an unknown device, or a CUDA device that this machine does not have (names what torch
            sees, and ``--device cpu`` / ``--device auto`` as the way out).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("auto").type in ("cpu", "cuda")
        True
    """
    if isinstance(device, torch.device):
        dev = device
    else:
        text = AUTO if device is None else str(device).strip().lower()
        if text == AUTO:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(text)
        except (RuntimeError, ValueError) as e:
            raise OptionError(f"option --device must be auto, cpu, cuda or cuda:N, got {device!r}") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise OptionError(
                f"--device {device} asks for a GPU, but torch {torch.__version__} ({build}) sees none; "
                "use --device cpu, or --device auto to take a GPU only when there is one"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise OptionError(f"--device {device}: this machine has {count} GPU(s), cuda:0 .. cuda:{count - 1}")
    return dev


def on_cuda(device: str | torch.device | None) -> bool:
    """Whether ``device`` (any :func:`resolve_device` value) is a CUDA device.

    Example:
        >>> on_cuda("cpu")
        False
    """
    return resolve_device(device).type == "cuda"


def cuda_option(value: Any, device: str | torch.device | None, name: str = "amp") -> bool:
    """Resolve a GPU-only option: ``"auto"`` (or ``None``) is on exactly when ``device`` is CUDA; ``true``/``false``
    (also as the command line's text) is that.

    Args:
        value: ``"auto"``, ``None``, a bool, or ``"true"``/``"false"``.
        device: the run's device (validated by :func:`resolve_device`).
        name: the option's name, for the error message.

    Raises:
        OptionError: a value that is neither ``auto`` nor a boolean.

    Example:
        >>> cuda_option("auto", "cpu"), cuda_option("true", "cpu"), cuda_option(False, "cpu")
        (False, True, False)
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return on_cuda(device)
    resolve_device(device)
    try:
        return bool(check_option(name, value, "bool"))
    except OptionError as e:
        raise OptionError(f"option --{name} must be auto, true or false, got {value!r}") from e


def to_device(module: nn.Module, device: str | torch.device | None, channels_last: bool = False) -> nn.Module:
    """Move ``module`` to ``device``; with ``channels_last`` the weights of its 2-D convolutions are stored NHWC.

    Channels-last lets cuDNN use its NHWC tensor-core kernels for 2-D convolutions under AMP (the activations
    follow the weights' layout); 3-D convolutions and other layers are left as they are.

    Args:
        module: the network.
        device: any :func:`resolve_device` value.
        channels_last: store 2-D convolution weights channels-last.

    Example:
        >>> net = to_device(torch.nn.Conv2d(3, 8, 3), "cpu", channels_last=True)
        >>> net.weight.is_contiguous(memory_format=torch.channels_last)
        True
    """
    module = module.to(resolve_device(device))
    if channels_last:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.to(memory_format=torch.channels_last)
    return module
