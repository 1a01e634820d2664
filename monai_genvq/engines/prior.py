"""Stage-2 training: an autoregressive prior over the code maps of a frozen VQ autoencoder."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys
from torch.optim import Optimizer

from monai_genvq.engines.autoencoder import PrepareAutoencoderBatch
from monai_genvq.engines.steps import LossTerms, autocast, check_finite_loss, optimizer_step
from monai_genvq.networks.priors.base import CodePrior, VQStage1

__all__ = ["CodePriorTrainer", "prior_loss_terms"]


#: ``output_transform``: the loss (nats per code) and NLL in bits per code of a :class:`CodePriorTrainer`.
prior_loss_terms = LossTerms("loss", "nll_bits")


class CodePriorTrainer(SupervisedTrainer):
    """Trains a :class:`~monai_genvq.networks.CodePrior` on the index maps of a frozen stage-1 model.

    Each iteration encodes the batch's images with ``stage1`` (no gradient, evaluation mode),
    takes the nearest-code index map and minimises the prior's mean NLL per code. The output holds
    ``image``, ``label`` (the index map), ``loss`` (nats per code) and ``nll_bits`` (bits per
    code), and MONAI's FORWARD/LOSS/BACKWARD/MODEL_COMPLETED events fire.

    Args:
        device, max_epochs, train_data_loader, optimizer: as :class:`monai.engines.SupervisedTrainer`.
        network: the prior.
        stage1: the frozen autoencoder as :class:`~monai_genvq.networks.VQStage1`.
        prepare_batch: returns the images first (default: the ``"image"`` key).
        kwargs: further :class:`~monai.engines.SupervisedTrainer` arguments (handlers, amp, ...).

    Example:
        >>> from monai_genvq.networks import GatedPixelCNNPrior, ResNetAutoencoder, VQStage1, VectorQuantizer
        >>> stage1 = VQStage1(ResNetAutoencoder(2, 1, channels=(8, 16), latent_channels=4,
        ...                                     bottleneck=VectorQuantizer(16, 4)))
        >>> prior = GatedPixelCNNPrior(16, channels=8, num_layers=2)
        >>> trainer = CodePriorTrainer(device=torch.device("cpu"), max_epochs=1,
        ...     train_data_loader=[{"image": torch.rand(2, 1, 16, 16)}], network=prior,
        ...     optimizer=torch.optim.Adam(prior.parameters(), 1e-3), stage1=stage1)
        >>> trainer.run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: CodePrior,
        optimizer: Optimizer,
        stage1: VQStage1,
        prepare_batch: Callable = PrepareAutoencoderBatch("image"),
        train_handlers: Sequence | None = None,
        **kwargs: Any,
    ) -> None:
        if stage1.num_embeddings != network.num_embeddings:
            raise ValueError(
                f"the prior models {network.num_embeddings} codes but the stage-1 quantizer has {stage1.num_embeddings}"
            )
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=lambda *a: None,
            prepare_batch=prepare_batch,
            train_handlers=train_handlers,
            **kwargs,
        )
        self.stage1 = stage1.to(device)

    def _iteration(self, engine: CodePriorTrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        images = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)[0]
        codes = engine.stage1.index_quantize(images)
        engine.state.output = {Keys.IMAGE: images, Keys.LABEL: codes}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine, images):
            loss = engine.network.loss(codes).float()
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        check_finite_loss(engine, "code prior (stage 2)", nll=loss)
        engine.state.output["nll_bits"] = loss.detach() / math.log(2.0)
        optimizer_step(engine, loss)
        return engine.state.output
