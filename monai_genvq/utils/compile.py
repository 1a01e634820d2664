"""``torch.compile`` as a trainer option: compiled where it works, eager (with one warning) where it does not.

``torch.compile`` compiles lazily, at the first call with new shapes: a missing C++ compiler, a platform
TorchDynamo does not support or a compiler bug surfaces only there, deep inside a training run. A
:class:`CompiledForward` then warns once, naming the cause, and runs the eager module from then on. The
results are the same either way; only the speed differs (and the first call pays the compile time).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from monai_genvq.utils.errors import check_option

__all__ = ["CompiledForward"]


def _compile_errors() -> tuple[type[BaseException], ...]:
    try:
        from torch._dynamo.exc import TorchDynamoException  # BackendCompilerFailed, InductorError, ...
    except ImportError:  # pragma: no cover - torch without TorchDynamo
        return ()
    return (TorchDynamoException,)


def _dynamo_supported() -> bool:
    try:
        import torch._dynamo
    except ImportError:  # pragma: no cover
        return False
    return hasattr(torch, "compile") and bool(torch._dynamo.is_dynamo_supported())


class CompiledForward:
    """Call ``module`` through ``torch.compile(module, **compile_kwargs)`` when ``enabled``, else eagerly.

    A compilation failure (any TorchDynamo/Inductor exception, e.g. no C++ compiler for Inductor's CPU
    kernels) at any call is caught: a ``RuntimeWarning`` names it, :attr:`error` keeps it, and this and
    every later call run ``module`` eagerly. Where TorchDynamo is not supported at all (some Python
    versions and platforms) the same fallback happens at construction. ``module`` itself is never
    replaced, so its ``state_dict`` keys (checkpoints) are those of the eager module.

    Args:
        module: the network (any callable module).
        enabled: compile it (a bool, or ``"true"``/``"false"`` from a bundle's command line).
        name: what is compiled, for the warning (e.g. ``"hyperbolic VAE"``).
        compile_kwargs: ``torch.compile`` arguments (``mode``, ``backend``, ``dynamic`` …).

    Raises:
        OptionError: ``enabled`` is not a boolean.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> forward = CompiledForward(net, enabled=False)
        >>> torch.equal(forward(torch.ones(1, 2)), net(torch.ones(1, 2)))
        True
    """

    def __init__(self, module: Callable[..., Any], enabled: bool = True, name: str = "network", **compile_kwargs: Any):
        self.module, self.name = module, name
        self.enabled = bool(check_option("compile", enabled, "bool"))
        self.error: str | None = None
        self._compiled: Callable[..., Any] | None = None
        if not self.enabled:
            return
        if not _dynamo_supported():
            self._fall_back("torch.compile (TorchDynamo) is not supported on this platform/Python")
            return
        self._compiled = torch.compile(module, **compile_kwargs)

    @property
    def compiled(self) -> bool:
        """Whether calls currently go through the compiled module."""
        return self._compiled is not None

    def _fall_back(self, reason: str) -> None:
        self._compiled, self.error = None, reason
        warnings.warn(
            f"compile=true: compiling the {self.name} failed, training continues eagerly (same results, "
            f"eager speed): {reason}",
            RuntimeWarning,
            stacklevel=3,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is not None:
            try:
                return self._compiled(*args, **kwargs)
            except _compile_errors() as e:
                self._fall_back(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        return self.module(*args, **kwargs)
