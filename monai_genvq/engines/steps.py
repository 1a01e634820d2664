"""The parts every trainer's ``_iteration`` shares: the AMP region, the non-finite-loss guard and the optimiser step.

Each engine computes its own losses; these helpers do the rest the same way everywhere: the forward
pass under ``torch.autocast`` on the batch's device when the engine's ``amp`` is on (:func:`autocast`),
a clear error naming every loss term when one is NaN/inf, and backward + step (through the engine's AMP
``GradScaler`` when it has one) firing MONAI's ``LOSS_COMPLETED``, ``BACKWARD_COMPLETED`` and
``MODEL_COMPLETED`` events so handlers and decollation work as in :class:`monai.engines.SupervisedTrainer`.
Like MONAI's trainers they decollate by default (``decollate=True``): after ``MODEL_COMPLETED``,
``engine.state.output`` is a list of per-sample dicts in which the batch-level scalar terms (loss,
perplexity, ...) are replicated as Python floats, so MONAI's own handler settings (e.g.
``from_engine(["loss"], first=True)`` of ``--tracking mlflow``) work; :class:`LossTerms` reads
the terms from either form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.engines.utils import IterationEvents
from monai.utils.enums import CommonKeys as Keys
from torch.optim import Optimizer

from monai_genvq.engines.distributed import sync_gradients

__all__ = ["LossTerms", "autocast", "backward_step", "check_finite_loss", "optimizer_step"]


class LossTerms:
    """Handler ``output_transform``: the named scalar terms of a trainer's iteration output as floats.

    Each trainer of the package has one instance (``loss_terms``, ``vae_loss_terms``,
    ``prior_loss_terms`` …) naming the terms it logs; ``None`` terms are skipped. ``output`` is the
    batch dict of a trainer run with ``decollate=False``, or the list of per-sample dicts that
    MONAI's decollation makes (``decollate=True``, the default): scalar terms are replicated into
    every item, so the first item is read.

    Args:
        names: the term names, in logging order.

    Example:
        >>> terms = LossTerms("loss", "kl")
        >>> terms({"loss": torch.tensor(2.0), "kl": None})
        {'loss': 2.0}
        >>> terms([{"loss": 2.0, "pred": torch.zeros(1)}, {"loss": 2.0, "pred": torch.zeros(1)}])
        {'loss': 2.0}
    """

    def __init__(self, *names: str) -> None:
        self.names = tuple(names)

    def __call__(self, output: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, float]:
        if isinstance(output, Sequence) and not isinstance(output, (str, bytes)):
            if not output:
                return {}
            output = output[0]
        return {k: float(output[k]) for k in self.names if output.get(k) is not None}

    def __repr__(self) -> str:
        return f"LossTerms{self.names!r}"


def check_finite_loss(engine: Any, stage: str = "", hint: str = "", **terms: torch.Tensor | float | None) -> None:
    """Raise ``FloatingPointError`` naming the non-finite terms (and all term values) of this iteration.

    Args:
        engine: the running engine (for the iteration number).
        stage: what is being trained, e.g. ``"label prior (stage 1)"``; prefixes the message.
        hint: what the user can do about it; a generic hint is used when empty.
        terms: named scalar (or tensor) loss terms; ``None`` values are skipped.

    Example:
        >>> from types import SimpleNamespace
        >>> engine = SimpleNamespace(state=SimpleNamespace(iteration=3))
        >>> check_finite_loss(engine, loss=torch.tensor(1.0))  # finite: nothing happens
    """
    values = {k: torch.as_tensor(v).detach() for k, v in terms.items() if v is not None}
    bad = [k for k, v in values.items() if not torch.isfinite(v).all()]
    if not bad:
        return
    shown = ", ".join(f"{k}={float(v.float().mean()):.4g}" for k, v in values.items())
    prefix = f"{stage}: " if stage else ""
    hint = hint or "lower the learning rate, or check the inputs for NaN or values far outside the expected range."
    raise FloatingPointError(
        f"{prefix}non-finite loss at iteration {engine.state.iteration} ({', '.join(bad)} not finite; {shown}); {hint}"
    )


def autocast(engine: Any, like: torch.Tensor) -> torch.autocast:
    """The engine's AMP region on ``like``'s device: ``torch.autocast`` enabled when ``engine.amp`` is on.

    MONAI's own engines always use ``torch.autocast("cuda")``; this one follows the batch, so AMP also runs
    on CPU (bfloat16), which is how the tests exercise the mixed-precision code path without a GPU.

    Args:
        engine: the running engine (``amp`` and ``amp_kwargs`` are read).
        like: a tensor on the device of the computation (the batch).

    Example:
        >>> from types import SimpleNamespace
        >>> engine = SimpleNamespace(amp=True, amp_kwargs={})
        >>> with autocast(engine, torch.zeros(1)):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    return torch.autocast(like.device.type, enabled=bool(engine.amp), **(engine.amp_kwargs or {}))


def backward_step(engine: Any, loss: torch.Tensor, optimizer: Optimizer, fire_backward: bool = True) -> None:
    """``loss.backward()``, gradient synchronisation and one step of ``optimizer``, through the engine's AMP
    ``GradScaler`` when it has an enabled one (float16 on CUDA).

    Args:
        engine: the running trainer (``network``, ``amp`` and ``scaler`` are read).
        loss: the scalar loss.
        optimizer: the optimiser to step.
        fire_backward: fire ``BACKWARD_COMPLETED`` between the backward pass and the step (as MONAI does).
    """
    scaler = getattr(engine, "scaler", None)
    scaled = bool(getattr(engine, "amp", False)) and scaler is not None and scaler.is_enabled()
    (scaler.scale(loss) if scaled else loss).backward()
    if fire_backward:
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
    sync_gradients(engine.network, optimizer)
    if scaled:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


def optimizer_step(engine: Any, loss: torch.Tensor, optimizer: Optimizer | None = None, last: bool = True) -> None:
    """``loss.backward()`` and one optimiser step, with the engine's AMP scaler when it uses one.

    Stores the loss in ``engine.state.output`` and fires ``LOSS_COMPLETED`` and
    ``BACKWARD_COMPLETED``; with ``last`` (the iteration's final step) it stores the detached loss
    and fires ``MODEL_COMPLETED``. A trainer with two optimisers can call it once per optimiser,
    ``last=False`` for the first (Soft-Intro calls :func:`backward_step` for its encoder step).

    Args:
        engine: the running trainer (``optimizer``, ``amp``, ``scaler`` and ``state`` are used).
        loss: the scalar loss of this step.
        optimizer: the optimiser to step; ``engine.optimizer`` when None.
        last: whether this is the iteration's last step.
    """
    optimizer = optimizer if optimizer is not None else engine.optimizer
    engine.state.output[Keys.LOSS] = loss
    engine.fire_event(IterationEvents.LOSS_COMPLETED)
    backward_step(engine, loss, optimizer)
    if last:
        engine.state.output[Keys.LOSS] = loss.detach()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
