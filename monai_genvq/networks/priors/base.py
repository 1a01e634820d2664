"""The interface of stage-2 priors over code-index maps, and the stage-1 adapter they use."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["CodePrior", "VQStage1", "load_model_weights"]


class CodePrior(nn.Module):
    """An autoregressive model ``p(x) = Π_t p(x_t | x_<t)`` over (B, H, W) maps of code indices.

    Subclasses implement :meth:`log_likelihood` (per-code conditional log-probabilities, nats) and
    :meth:`sample`; the loss and the bits-per-code NLL are shared.

    Args:
        num_embeddings: number of codes K of the stage-1 quantizer.
    """

    def __init__(self, num_embeddings: int) -> None:
        super().__init__()
        if num_embeddings < 2:
            raise ValueError(f"num_embeddings must be >= 2, got {num_embeddings}")
        self.num_embeddings = num_embeddings

    def check_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Validate a (B, H, W) long index map."""
        if indices.dim() != 3:
            raise ValueError(
                f"{type(self).__name__} expects (B, H, W) code-index maps, got shape {tuple(indices.shape)}"
            )
        if indices.dtype.is_floating_point:
            raise ValueError(f"code indices must be integers, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_embeddings):
            raise ValueError(
                f"code indices must lie in [0, {self.num_embeddings}), got range {int(indices.min())}..{int(indices.max())}"
            )
        return indices.long()

    def log_likelihood(self, indices: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, H, W) ``log p(x_t | x_<t)`` in nats for every code of the map."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self, num_samples: int, spatial_shape: Sequence[int], temperature: float = 1.0, top_k: int | None = None
    ) -> torch.Tensor:  # pragma: no cover - abstract
        """(num_samples, H, W) index maps drawn ancestrally in the model's order."""
        raise NotImplementedError

    def loss(self, indices: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per code, in nats (the training loss)."""
        return -self.log_likelihood(indices).mean()

    def nll_bits(self, indices: torch.Tensor) -> torch.Tensor:
        """(B,) negative log-likelihood in bits per code: ``−mean_t log₂ p(x_t | x_<t)``."""
        return -self.log_likelihood(indices).flatten(1).mean(1) / math.log(2.0)


def load_model_weights(module: nn.Module, path: str | os.PathLike, key: str = "model") -> nn.Module:
    """Load a checkpoint written by MONAI's ``CheckpointSaver`` (``{key: state_dict}`` or a bare state dict).

    Raises:
        FileNotFoundError: the checkpoint is missing (the message names it and says how to make it).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"stage-1 checkpoint '{path}' does not exist; train the autoencoder first "
            "(python -m monai.bundle run training ...) with the same variant and bundle_root."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and key in state and isinstance(state[key], dict):
        state = state[key]
    module.load_state_dict(state)
    return module


class VQStage1(nn.Module):
    """A trained, frozen VQ autoencoder seen as MONAI's VQVAE by stage-2 code: indices in, images out.

    Provides ``index_quantize(images) -> (B, H', W')`` (nearest-code indices of the encoder output),
    ``decode_samples(indices) -> images`` (decode the code vectors) and ``num_embeddings``, which is
    what :class:`monai.inferers.VQVAETransformerInferer` calls, so a package autoencoder can be used
    with MONAI's transformer inferer directly.

    Args:
        autoencoder: a :class:`~monai_genvq.networks.ResNetAutoencoder` with a quantizer bottleneck.
        checkpoint: optional checkpoint to load into it (``CheckpointSaver`` format).

    Example:
        >>> from monai_genvq.networks import ResNetAutoencoder, VectorQuantizer
        >>> stage1 = VQStage1(ResNetAutoencoder(2, 1, bottleneck=VectorQuantizer(512, 64)))
        >>> stage1.index_quantize(torch.rand(2, 1, 64, 64)).shape
        torch.Size([2, 16, 16])
    """

    def __init__(self, autoencoder: nn.Module, checkpoint: str | os.PathLike | None = None) -> None:
        super().__init__()
        if not hasattr(getattr(autoencoder, "bottleneck", None), "num_embeddings"):
            raise ValueError("VQStage1 needs an autoencoder whose bottleneck is a quantizer (has num_embeddings).")
        if checkpoint:
            load_model_weights(autoencoder, checkpoint)
        self.autoencoder = autoencoder.eval()
        for p in self.autoencoder.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> VQStage1:
        return super().train(False)  # always frozen, always in evaluation mode

    @property
    def num_embeddings(self) -> int:
        return int(self.autoencoder.bottleneck.num_embeddings)

    @torch.no_grad()
    def index_quantize(self, images: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.bottleneck.quantize(self.autoencoder.encode(images))

    @torch.no_grad()
    def decode_samples(self, indices: torch.Tensor, statistics: Any = None) -> torch.Tensor:
        """Decode index maps; ``statistics`` (an :class:`~monai_genvq.networks.InputStatistics`) are
        required by autoencoders that standardise their input (``standardize_input=True``): they
        restore the position and scale the code map does not hold."""
        latent = self.autoencoder.bottleneck.embed(indices.long())
        if statistics is None:
            return self.autoencoder.decode(latent)
        return self.autoencoder.decode(latent, statistics)

    @torch.no_grad()
    def input_statistics(self, images: torch.Tensor) -> Any:
        """The per-sample statistics the autoencoder removes before encoding (None if it does not)."""
        stats = getattr(self.autoencoder, "input_statistics", None)
        return stats(images) if stats is not None else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.index_quantize(images)
