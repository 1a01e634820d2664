"""The parts every trainer's ``_iteration`` shares: the non-finite-loss guard and the optimiser step.

Each engine computes its own losses; these helpers do the rest the same way everywhere: a clear
error naming every loss term when one is NaN/inf, and backward + step (through the engine's AMP
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

__all__ = ["LossTerms", "check_finite_loss", "optimizer_step"]


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


def optimizer_step(engine: Any, loss: torch.Tensor, optimizer: Optimizer | None = None, last: bool = True) -> None:
    """``loss.backward()`` and one optimiser step, with the engine's AMP scaler when it uses one.

    Stores the loss in ``engine.state.output`` and fires ``LOSS_COMPLETED`` and
    ``BACKWARD_COMPLETED``; with ``last`` (the iteration's final step) it stores the detached loss
    and fires ``MODEL_COMPLETED``. Trainers with two optimisers (Soft-Intro) call it once per
    optimiser, ``last=False`` for the first.

    Args:
        engine: the running trainer (``optimizer``, ``amp``, ``scaler`` and ``state`` are used).
        loss: the scalar loss of this step.
        optimizer: the optimiser to step; ``engine.optimizer`` when None.
        last: whether this is the iteration's last step.
    """
    optimizer = optimizer if optimizer is not None else engine.optimizer
    engine.state.output[Keys.LOSS] = loss
    engine.fire_event(IterationEvents.LOSS_COMPLETED)
    scaler = getattr(engine, "scaler", None)
    if getattr(engine, "amp", False) and scaler is not None:
        scaler.scale(loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        sync_gradients(engine.network, optimizer)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        sync_gradients(engine.network, optimizer)
        optimizer.step()
    if last:
        engine.state.output[Keys.LOSS] = loss.detach()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
