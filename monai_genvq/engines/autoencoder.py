"""Ignite engines for autoencoders whose network returns an :class:`AutoencoderOutput`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys
from torch.optim import Optimizer

from monai_genvq.engines.steps import LossTerms, autocast, check_finite_loss, optimizer_step
from monai_genvq.networks.export import network_tensor

__all__ = ["PrepareAutoencoderBatch", "ReconstructionInferer", "AutoencoderTrainer", "loss_terms"]


class PrepareAutoencoderBatch:
    """``prepare_batch`` for autoencoders: the input under ``key`` is also the target.

    Args:
        key: batch key holding the input tensor (e.g. "bundle" for streamline groups, "image").

    Example:
        >>> prepare = PrepareAutoencoderBatch("bundle")
        >>> x, y = prepare({"bundle": torch.zeros(2, 3, 64, 64)}, torch.device("cpu"))
    """

    def __init__(self, key: str = "image") -> None:
        self.key = key

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.key not in batchdata:
            raise KeyError(f"batch has no {self.key!r} entry (keys: {sorted(batchdata)}); set the prepare_batch key.")
        x = torch.as_tensor(batchdata[self.key]).to(device=device, non_blocking=non_blocking, **kwargs)
        return x, x


class ReconstructionInferer(Inferer):
    """Runs an autoencoder and returns only its reconstruction tensor.

    Evaluators, metric handlers and MONAI Label's ``BundleInferTask`` expect a tensor, while our
    networks return a dataclass; this inferer bridges the two.

    Example:
        >>> from monai_genvq.networks import ResNetAutoencoder
        >>> ReconstructionInferer()(torch.zeros(1, 3, 64, 64), ResNetAutoencoder()).shape
        torch.Size([1, 3, 64, 64])
    """

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        if args:
            return network(inputs, *args, **kwargs).reconstruction
        return network_tensor(network, inputs, "forward", "reconstruction", kwargs)  # also a TorchScript export


#: ``output_transform`` of the terms an :class:`AutoencoderTrainer` logs.
loss_terms = LossTerms("loss", "rec_loss", "bottleneck_loss", "perplexity", "code_use")


class AutoencoderTrainer(SupervisedTrainer):
    """Trains an autoencoder with a pluggable bottleneck: ``loss = rec_loss + bottleneck.loss``.

    Same arguments as :class:`monai.engines.SupervisedTrainer`; ``loss_function`` is the
    reconstruction loss (``network(x).reconstruction`` vs ``x``). Each iteration's output holds
    ``image``, ``label`` (the target), ``pred`` (reconstruction), ``loss``, ``rec_loss``,
    ``bottleneck_loss``, ``perplexity`` and ``code_use`` (tensors, or None for continuous
    bottlenecks), and fires MONAI's
    FORWARD/LOSS/BACKWARD/MODEL_COMPLETED iteration events. As in MONAI (``decollate=True``), the
    output is then decollated into per-sample dicts with the scalar terms replicated; read the terms
    with :func:`loss_terms`. A non-finite loss stops training with an error naming the iteration and the terms.

    Example:
        >>> from monai_genvq.networks import ResNetAutoencoder
        >>> net = ResNetAutoencoder()
        >>> data = [{"bundle": torch.randn(2, 3, 64, 64)}]
        >>> trainer = AutoencoderTrainer(device=torch.device("cpu"), max_epochs=1, train_data_loader=data,
        ...     network=net, optimizer=torch.optim.Adam(net.parameters(), 1e-3),
        ...     loss_function=torch.nn.MSELoss(), prepare_batch=PrepareAutoencoderBatch("bundle"))
        >>> trainer.run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: torch.nn.Module,
        optimizer: Optimizer,
        loss_function: Callable,
        prepare_batch: Callable = PrepareAutoencoderBatch("image"),
        decollate: bool = True,
        train_handlers: Sequence | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function,
            prepare_batch=prepare_batch,
            decollate=decollate,
            train_handlers=train_handlers,
            **kwargs,
        )

    def _iteration(self, engine: AutoencoderTrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        inputs, targets = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)[
            :2
        ]
        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: targets}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine, inputs):
            out = engine.inferer(inputs, engine.network)
            engine.state.output[Keys.PRED] = out.reconstruction
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            rec_loss = engine.loss_function(out.reconstruction.float(), targets.float()).mean()
            loss = rec_loss + out.bottleneck.loss
        check_finite_loss(engine, loss=loss, rec_loss=rec_loss, bottleneck_loss=out.bottleneck.loss)
        engine.state.output.update(
            {
                Keys.LOSS: loss,
                "rec_loss": rec_loss.detach(),
                "bottleneck_loss": out.bottleneck.loss.detach(),
                "perplexity": out.bottleneck.perplexity,
                "code_use": out.bottleneck.code_use,
            }
        )
        optimizer_step(engine, loss)
        return engine.state.output
