"""The one interface every bottleneck (AE, VAE, and each quantizer) implements.

A bottleneck maps an encoder output ``z`` of shape (B, C, *spatial) to what the decoder consumes,
plus a scalar regularisation loss. Quantizers also return code indices and assignment
probabilities so perplexity and codebook use can be measured the same way for every variant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "BottleneckOutput",
    "QuantizerOutput",
    "Bottleneck",
    "Quantizer",
    "CodebookCollapseWarning",
    "codebook_perplexity",
    "codebook_use",
    "codebook_statistics",
]


class CodebookCollapseWarning(UserWarning):
    """Raised (as a warning) when a quantizer's perplexity falls below its ``collapse_threshold``."""


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
        code_use: fraction of the codebook used at least once by ``indices`` in this batch, or None.
        collapsed: True when the quantizer's collapse check (``collapse_threshold``) fired on this
            batch, False when it passed, None when the check is off.
    """

    latent: torch.Tensor
    loss: torch.Tensor
    indices: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    perplexity: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    code_use: torch.Tensor | None = None
    collapsed: bool | None = None


@dataclass
class QuantizerOutput(BottleneckOutput):
    """A :class:`BottleneckOutput` whose ``latent`` is a quantized code; ``quantized`` aliases it."""

    @property
    def quantized(self) -> torch.Tensor:
        return self.latent


def codebook_perplexity(
    num_embeddings: int, indices: torch.Tensor | None = None, probs: torch.Tensor | None = None
) -> torch.Tensor:
    """exp(entropy) of the mean code-assignment distribution (docs/METRICS.md "Perplexity").

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


def codebook_use(num_embeddings: int, indices: torch.Tensor) -> torch.Tensor:
    """Fraction of the ``num_embeddings`` codes that occur at least once in ``indices`` (docs/METRICS.md).

    Example:
        >>> codebook_use(4, torch.tensor([0, 0, 3]))
        tensor(0.5000)
    """
    counts = torch.bincount(indices.reshape(-1), minlength=num_embeddings)
    return (counts > 0).float().mean()


def codebook_statistics(num_embeddings: int, indices: torch.Tensor, collapse_threshold: float = 0.0) -> dict:
    """Perplexity, codebook use and a collapse verdict of a (whole evaluation set's) hard code map.

    Args:
        num_embeddings: codebook size K.
        indices: code indices of any shape.
        collapse_threshold: the map counts as collapsed when its perplexity is below this many codes
            (0 disables the verdict).

    Returns:
        ``{"perplexity", "code_use", "codes_used", "num_embeddings", "collapsed"}``.

    Example:
        >>> codebook_statistics(8, torch.zeros(100, dtype=torch.long), collapse_threshold=2.0)["collapsed"]
        True
    """
    counts = torch.bincount(indices.reshape(-1).long().cpu(), minlength=num_embeddings)
    perplexity = float(codebook_perplexity(num_embeddings, indices=indices.reshape(-1).long().cpu()))
    return {
        "perplexity": perplexity,
        "code_use": float((counts > 0).float().mean()),
        "codes_used": int((counts > 0).sum()),
        "num_embeddings": num_embeddings,
        "collapsed": bool(collapse_threshold > 0 and perplexity < collapse_threshold),
    }


class Bottleneck(nn.Module):
    """Base class: ``forward(z: (B, C, *spatial)) -> BottleneckOutput``; works for 1-, 2- and 3-D."""

    def forward(self, z: torch.Tensor) -> BottleneckOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class Quantizer(Bottleneck):
    """Base class of vector quantizers with a codebook of ``num_embeddings`` × ``embedding_dim``.

    Subclasses implement ``forward`` and may override ``codebook``; ``embed`` and ``quantize``
    (the indices of the nearest codes) are shared. ``z`` has the embedding along dim 1.

    Every quantizer reports, per batch, perplexity and codebook use (:meth:`usage_report`), and
    has two options that are off by default:

    - dead-code reinitialisation (``dead_code_steps > 0``): a code that no latent selected for
      that many consecutive training steps is re-seeded, at the start of the next training step,
      with a randomly drawn encoder output of that batch (plus 1 % noise) (the "codebook reset" of Dhariwal et al. 2020, Jukebox; Łańcucki et al.
      2020). Under DDP the usage counts are all-reduced and rank 0's draw is broadcast.
    - data initialisation (``data_init=True``): the first training batch seeds every code with a
      randomly drawn encoder output (plus 1 % noise), as k-means / fuzzy c-means are classically
      initialised from data points; a tiny random codebook is otherwise a symmetric fixed point
      for soft posteriors whose weights barely differ between nearly coincident codes.
    - collapse detection (``collapse_threshold > 0``): when a training batch's perplexity falls
      below that many codes the output's ``collapsed`` flag is set and a
      :class:`CodebookCollapseWarning` is issued (once, until perplexity recovers).

    Args:
        num_embeddings: number of codes K.
        embedding_dim: code dimension D; must equal the channel count of ``z``.
        dead_code_steps: re-seed codes unused for this many training steps; 0 disables.
        collapse_threshold: perplexity (in codes) below which a batch counts as collapsed; 0 disables.
        data_init: seed the codebook from the first training batch's encoder outputs (a bool, or the
            command line's text "true" / "false").
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        dead_code_steps: int = 0,
        collapse_threshold: float = 0.0,
        data_init: bool = False,
    ) -> None:
        super().__init__()
        if num_embeddings < 2 or embedding_dim < 1:
            raise ValueError(f"need num_embeddings >= 2 and embedding_dim >= 1, got {num_embeddings}, {embedding_dim}.")
        if dead_code_steps < 0 or collapse_threshold < 0:
            raise ValueError(
                f"dead_code_steps and collapse_threshold must be >= 0, got {dead_code_steps}, {collapse_threshold}."
            )
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.dead_code_steps = int(dead_code_steps)
        self.collapse_threshold = float(collapse_threshold)
        self.collapsed = False
        if isinstance(data_init, str) and data_init.lower() in ("true", "false"):
            data_init = data_init.lower() == "true"  # the bundle command line passes --data_init false as text
        if not isinstance(data_init, bool):
            raise ValueError(f"data_init must be true or false, got {data_init!r} ({type(data_init).__name__}).")
        self.data_init = data_init
        if self.dead_code_steps > 0:  # only then, so checkpoints of the default quantizers keep their keys
            self.register_buffer("steps_unused", torch.zeros(num_embeddings, dtype=torch.long))
        if self.data_init:
            self.register_buffer("data_initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def prepare_codebook(self, flat: torch.Tensor) -> None:
        """Start of every forward: data initialisation and pending dead-code re-seeding (training only).

        Both modify the codebook in place, so they happen before the codebook enters this step's
        graph (never between a forward and its backward).
        """
        if not self.training or flat.shape[0] == 0:
            return
        if self.data_init and not bool(self.data_initialized):
            self.reseed_codes(
                torch.arange(self.num_embeddings, device=flat.device), self._draw_latents(flat, self.num_embeddings)
            )
            self.data_initialized.fill_(True)
        if self.dead_code_steps > 0:
            self.reset_dead_codes(flat)

    def _draw_latents(self, flat: torch.Tensor, count: int) -> torch.Tensor:
        """``count`` random rows of ``flat`` (without replacement while possible) plus 1 % noise; rank 0's under DDP."""
        flat = flat.detach().float()
        n = flat.shape[0]
        pick = torch.randperm(n, device=flat.device)[:count]
        if n < count:
            pick = torch.cat([pick, torch.randint(n, (count - n,), device=flat.device)])
        vectors = flat[pick] + 0.01 * flat.std(0, keepdim=True).nan_to_num(0.0) * torch.randn_like(flat[pick])
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(vectors, src=0)
        return vectors.to(self.codebook.dtype)

    def init_codebook(self, init_std: float | None = None) -> None:
        """Create ``self.embedding``, the trainable K×D code table that :attr:`codebook` returns.

        ``init_std=None`` draws codes from U(−1/K, 1/K) (the VQ-VAE initialisation), otherwise from
        N(0, init_std²) (VQ-Diff uses σ = 2).
        """
        self.embedding = nn.Embedding(self.num_embeddings, self.embedding_dim)
        if init_std is None:
            nn.init.uniform_(self.embedding.weight, -1.0 / self.num_embeddings, 1.0 / self.num_embeddings)
        else:
            nn.init.normal_(self.embedding.weight, 0.0, init_std)

    @property
    def codebook(self) -> torch.Tensor:
        """The (K, D) codes; subclasses that keep them elsewhere (EMA buffers) override this."""
        return self.embedding.weight

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
            **self.usage_report(flat, indices),
        )

    def usage_report(self, flat: torch.Tensor, indices: torch.Tensor) -> dict:
        """Per-batch codebook use and collapse flag; in training also runs the dead-code reset.

        Every subclass calls this once per forward with the (N, D) latents and the (N,) hard
        indices; the result is unpacked into the :class:`QuantizerOutput`.

        Returns:
            ``{"code_use": tensor, "collapsed": bool | None}``.
        """
        indices = indices.reshape(-1)
        if self.training and self.dead_code_steps > 0:
            self.count_unused_steps(indices)
        collapsed = None
        if self.training and self.collapse_threshold > 0:
            perplexity = float(codebook_perplexity(self.num_embeddings, indices=indices))
            collapsed = perplexity < self.collapse_threshold
            if collapsed and not self.collapsed:
                warnings.warn(
                    f"{type(self).__name__}: codebook collapse, batch perplexity {perplexity:.2f} < "
                    f"collapse_threshold {self.collapse_threshold:g} codes (of {self.num_embeddings}); consider "
                    "dead_code_steps, a lower learning rate, or another quantizer.",
                    CodebookCollapseWarning,
                    stacklevel=3,
                )
            self.collapsed = collapsed
        return {"code_use": codebook_use(self.num_embeddings, indices.detach()), "collapsed": collapsed}

    @torch.no_grad()
    def count_unused_steps(self, indices: torch.Tensor) -> None:
        """Add one step without use to every code absent from ``indices``; reset the others (all-reduced under DDP)."""
        counts = torch.bincount(indices.reshape(-1), minlength=self.num_embeddings)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)

    @torch.no_grad()
    def reset_dead_codes(self, flat: torch.Tensor) -> torch.Tensor:
        """Re-seed every code unused for ``dead_code_steps`` steps with a random row of ``flat`` (N, D).

        Returns:
            the (M,) indices of the re-seeded codes.
        """
        dead = torch.nonzero(self.steps_unused >= self.dead_code_steps).reshape(-1)
        if dead.numel() == 0 or flat.shape[0] == 0:
            return dead
        self.reseed_codes(dead, self._draw_latents(flat, dead.numel()))
        self.steps_unused[dead] = 0
        return dead

    @torch.no_grad()
    def reseed_codes(self, codes: torch.Tensor, vectors: torch.Tensor) -> None:
        """Overwrite the code vectors ``codes`` with ``vectors``; subclasses with statistics extend it."""
        self.codebook[codes] = vectors

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors for ``indices`` (B, *spatial) as (B, D, *spatial)."""
        return nn.functional.embedding(indices, self.codebook).movedim(-1, 1)
