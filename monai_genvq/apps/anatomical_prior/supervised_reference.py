"""The supervised reference (upper bound) of the anatomical-prior report: a MONAI ``UNet`` trained by a
``monai.engines.SupervisedTrainer`` with Dice + cross-entropy on paired (image, label) slices.

The paired data are the *prior* subjects (never the stage-2 image subjects or the test set). The
trainer runs ``iterations`` steps in one epoch; each step draws ``batch_size`` items *with
replacement* from a generator seeded with ``seed`` (the network is initialised after
``torch.manual_seed(seed)``), so a run is reproducible and independent of the dataset's order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from monai.utils import CommonKeys as Keys
from torch import nn
from torch.utils.data import DataLoader, Sampler

from monai_genvq.engines.steps import check_finite_loss

__all__ = ["build_supervised_reference", "train_supervised_unet"]


class _RandomIndexBatches(Sampler[list[int]]):
    """Batch sampler: ``num_batches`` batches of ``min(batch_size, n)`` indices drawn with replacement.

    One ``torch.randint`` per batch from a CPU generator seeded with ``seed`` at each iteration start.
    """

    def __init__(self, n: int, batch_size: int, num_batches: int, seed: int) -> None:
        self.n, self.batch_size, self.num_batches, self.seed = int(n), int(batch_size), int(num_batches), int(seed)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.num_batches):
            yield torch.randint(0, self.n, (min(self.batch_size, self.n),), generator=g).tolist()

    def __len__(self) -> int:
        return self.num_batches


def _stack(dataset: Any, key: str) -> torch.Tensor:
    try:
        return torch.stack([torch.as_tensor(item[key]) for item in dataset])
    except KeyError:
        raise KeyError(f"the supervised reference needs paired items with {key!r}") from None


def build_supervised_reference(
    dataset: Any,
    num_labels: int,
    iterations: int = 300,
    batch_size: int = 16,
    lr: float = 1e-3,
    channels: Sequence[int] = (16, 32, 64),
    device: str | torch.device = "cpu",
    seed: int = 0,
    train_handlers: Sequence | None = None,
) -> SupervisedTrainer:
    """A MONAI ``SupervisedTrainer`` of the report's supervised reference, ready to ``run()``.

    Network: MONAI ``UNet`` (``spatial_dims`` from the data, ``channels``, stride 2, one residual
    unit), loss ``DiceCELoss(to_onehot_y=True, softmax=True)``, Adam (``lr``); one epoch of
    ``iterations`` batches drawn with replacement (see the module docstring). A non-finite loss
    raises ``FloatingPointError`` before the backward pass.

    Args:
        dataset: paired items ``{"image": (C, *spatial), "label": (1, *spatial) or (*spatial)}``.
        num_labels: output channels (labels ``0..num_labels-1``).
        iterations: optimiser steps.
        batch_size: items per step (at most the dataset size).
        lr: Adam learning rate.
        channels: UNet channels per level.
        device: training device.
        seed: seed of the network initialisation and of the batch draws.
        train_handlers: extra Ignite / MONAI handlers (e.g. a ``StatsHandler``).

    Returns:
        the trainer; its ``network`` is the UNet.

    Example:
        >>> data = [{"image": torch.rand(1, 16, 16), "label": torch.randint(0, 3, (1, 16, 16))} for _ in range(4)]
        >>> trainer = build_supervised_reference(data, 3, iterations=2, batch_size=2, channels=(4, 8))
        >>> trainer.run(); trainer.state.iteration
        2
    """
    x, y = _stack(dataset, "image").float(), _stack(dataset, "label").long()
    if x.ndim < 4:
        raise ValueError(
            f"images must be (C, *spatial) with 2 or 3 spatial dims; got items of shape {tuple(x.shape[1:])}"
        )
    y = y if y.ndim == x.ndim else y[:, None]
    if y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:]:
        raise ValueError(f"images {tuple(x.shape[1:])} and labels {tuple(y.shape[1:])} differ in spatial shape")
    torch.manual_seed(seed)
    network = UNet(
        x.ndim - 2,
        x.shape[1],
        num_labels,
        channels=tuple(channels),
        strides=(2,) * (len(channels) - 1),
        num_res_units=1,
    ).to(device)
    items = [{Keys.IMAGE: x[i], Keys.LABEL: y[i]} for i in range(x.shape[0])]
    loader = DataLoader(items, batch_sampler=_RandomIndexBatches(len(items), batch_size, iterations, seed))
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=1,
        train_data_loader=loader,
        network=network,
        optimizer=torch.optim.Adam(network.parameters(), lr),
        loss_function=DiceCELoss(to_onehot_y=True, softmax=True),
        train_handlers=train_handlers,
        decollate=False,
        optim_set_to_none=True,
    )

    def _check(engine: SupervisedTrainer) -> None:
        check_finite_loss(engine, stage="supervised UNet reference", loss=engine.state.output[Keys.LOSS])

    trainer.add_event_handler(IterationEvents.LOSS_COMPLETED, _check)
    return trainer


def train_supervised_unet(
    dataset: Any,
    num_labels: int,
    iterations: int = 300,
    batch_size: int = 16,
    lr: float = 1e-3,
    channels: Sequence[int] = (16, 32, 64),
    device: str | torch.device = "cpu",
    seed: int = 0,
    train_handlers: Sequence | None = None,
) -> nn.Module:
    """Upper bound of the report: run :func:`build_supervised_reference` and return the trained UNet in eval mode.

    Args:
        dataset, num_labels, iterations, batch_size, lr, channels, device, seed, train_handlers:
            as :func:`build_supervised_reference`.

    Example:
        >>> data = [{"image": torch.rand(1, 16, 16), "label": torch.randint(0, 3, (1, 16, 16))} for _ in range(4)]
        >>> train_supervised_unet(data, 3, iterations=2, batch_size=2, channels=(4, 8))(torch.rand(1, 1, 16, 16)).shape
        torch.Size([1, 3, 16, 16])
    """
    trainer = build_supervised_reference(
        dataset, num_labels, iterations, batch_size, lr, channels, device, seed, train_handlers
    )
    trainer.run()
    return trainer.network.eval()
