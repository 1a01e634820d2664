"""The one interface every bottleneck (AE, VAE, and each quantizer) implements.

A bottleneck maps an encoder output ``z`` of shape (B, C, *spatial) to what the decoder consumes,
plus a scalar regularisation loss. Quantizers also return code indices and assignment
probabilities so perplexity and codebook use can be measured the same way for every variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["BottleneckOutput", "QuantizerOutput", "Bottleneck", "Quantizer", "codebook_perplexity"]


@dataclass
class BottleneckOutput:
    """What a bottleneck returns.

    Args:
        latent: tensor the decoder consumes, same shape as the bottleneck's input (B, C, *spatial).
        loss: scalar regularisation loss (KL for a VAE, codebook + commitment for VQ; 0 for an AE),
            already weighted, ready to add to the reconstruction loss.
        indices: (B, *spatial) long code indices, or None for continuous bottlenecks.
        probs: (B, *spatial, K) assignment probabilities for soft quantizers, else None.
        perplexity: exp(entropy) of the batch's mean code-assignment distribution, or None.
        mean: posterior mean for probabilistic bottlenecks (VAE), else None.
        logvar: posterior log-variance for probabilistic bottlenecks (VAE), else None.
    """

    latent: torch.Tensor
    loss: torch.Tensor
    indices: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    perplexity: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


@dataclass
class QuantizerOutput(BottleneckOutput):
    """A :class:`BottleneckOutput` whose ``latent`` is a quantized code; ``quantized`` aliases it."""

    @property
    def quantized(self) -> torch.Tensor:
        return self.latent


def codebook_perplexity(
    num_embeddings: int, indices: torch.Tensor | None = None, probs: torch.Tensor | None = None
) -> torch.Tensor:
    """exp(entropy) of the mean code-assignment distribution (METRICS.md "Perplexity").

    Soft assignments (``probs``, (..., K)) are averaged directly; hard ones (``indices``) are counted.

    Example:
        >>> codebook_perplexity(4, indices=torch.tensor([0, 1, 2, 3]))
        tensor(4.)
    """
    if probs is not None:
        mean_probs = probs.reshape(-1, num_embeddings).float().mean(0)
    elif indices is not None:
        counts = torch.bincount(indices.reshape(-1), minlength=num_embeddings).float()
        mean_probs = counts / counts.sum().clamp_min(1.0)
    else:
        raise ValueError("codebook_perplexity needs indices or probs.")
    entropy = -(mean_probs * torch.log(mean_probs.clamp_min(1e-12))).sum()
    return entropy.exp()


class Bottleneck(nn.Module):
    """Base class: ``forward(z: (B, C, *spatial)) -> BottleneckOutput``; works for 1-, 2- and 3-D."""

    def forward(self, z: torch.Tensor) -> BottleneckOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class Quantizer(Bottleneck):
    """Base class of vector quantizers with a codebook of ``num_embeddings`` × ``embedding_dim``.

    Subclasses implement ``forward`` and may override ``codebook``; ``embed`` and ``quantize``
    (the indices of the nearest codes) are shared. ``z`` has the embedding along dim 1.

    Args:
        num_embeddings: number of codes K.
        embedding_dim: code dimension D; must equal the channel count of ``z``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        if num_embeddings < 2 or embedding_dim < 1:
            raise ValueError(f"need num_embeddings >= 2 and embedding_dim >= 1, got {num_embeddings}, {embedding_dim}.")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim

    @property
    def codebook(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def flatten(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
        """(B, D, *spatial) -> ((N, D), channels-last shape) with N = B·prod(spatial)."""
        if z.dim() < 3 or z.shape[1] != self.embedding_dim:
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.embedding_dim}, *spatial) latents, got {tuple(z.shape)}."
            )
        z_last = z.movedim(1, -1)
        return z_last.reshape(-1, self.embedding_dim), z_last.shape

    @staticmethod
    def unflatten(flat: torch.Tensor, shape_last: torch.Size) -> torch.Tensor:
        """Inverse of :meth:`flatten` for (N, D) code vectors."""
        return flat.reshape(shape_last).movedim(-1, 1)

    def squared_distances(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, K) squared Euclidean distances to every code, by one matmul (no (N, K, D) tensor)."""
        flat = flat.float()
        return self.code_scores(flat).neg_().add_((flat * flat).sum(1, keepdim=True)).clamp_min_(0.0)

    def code_scores(self, flat: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """(N, K) ``scale·(2 z·e − ‖e‖²)``: ``−‖z − e‖²`` up to a per-row constant, in one ``addmm``.

        Rankings and softmaxes over codes only need distances up to a per-row constant, so this
        skips the ‖z‖² pass and the clamp of :meth:`squared_distances`.
        """
        codebook = self.codebook.float()
        bias = (codebook * codebook).sum(1).mul_(-scale).unsqueeze(0)
        return torch.addmm(bias, flat.float(), codebook.t(), beta=1.0, alpha=2.0 * scale)

    @torch.no_grad()
    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Indices (B, *spatial) of the nearest code of every latent vector."""
        flat, shape_last = self.flatten(z)
        return self.code_scores(flat).argmax(1).reshape(shape_last[:-1])

    def straight_through(
        self, z: torch.Tensor, flat: torch.Tensor, codes: torch.Tensor, indices: torch.Tensor, loss: torch.Tensor
    ) -> QuantizerOutput:
        """Output of a hard quantizer: ``codes`` forward, identity gradient to ``z`` (straight-through).

        Args:
            z: the (B, D, *spatial) input, for shape and dtype.
            flat: (N, D) flattened latents (float32).
            codes: (N, D) selected code vectors.
            indices: (N,) selected code indices.
            loss: the quantizer's scalar loss.
        """
        quantized = flat + (codes - flat).detach()
        shape_last = z.movedim(1, -1).shape
        return QuantizerOutput(
            latent=self.unflatten(quantized, shape_last).to(z.dtype),
            loss=loss,
            indices=indices.reshape(shape_last[:-1]),
            perplexity=codebook_perplexity(self.num_embeddings, indices=indices),
        )

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors for ``indices`` (B, *spatial) as (B, D, *spatial)."""
        return nn.functional.embedding(indices, self.codebook).movedim(-1, 1)
