"""MONAI's decoder-only transformer as a prior over code-index maps, through VQVAETransformerInferer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.inferers import VQVAETransformerInferer
from monai.networks.nets import DecoderOnlyTransformer
from monai.utils.ordering import Ordering

from monai_genvq.networks.priors.base import CodePrior

__all__ = ["TransformerCodePrior"]


class _IndexPassthrough:
    """A stand-in "VQVAE" for MONAI's inferer whose inputs already are index maps and whose decoder is the identity."""

    def __init__(self, num_embeddings: int) -> None:
        self.num_embeddings = num_embeddings

    def index_quantize(self, indices: torch.Tensor) -> torch.Tensor:
        return indices

    def decode_samples(self, indices: torch.Tensor) -> torch.Tensor:
        return indices


class TransformerCodePrior(CodePrior):
    """Autoregressive code prior: :class:`monai.networks.nets.DecoderOnlyTransformer` over the index sequence.

    Esser, Rombach & Ommer, "Taming Transformers for High-Resolution Image Synthesis", CVPR 2021
    (VQ + transformer prior), with MONAI Generative's components: the map is flattened by a MONAI
    :class:`~monai.utils.ordering.Ordering` (raster scan by default), a begin-of-sequence token K
    is prepended, and :class:`monai.inferers.VQVAETransformerInferer` computes the logits and draws
    samples. The BOS token is excluded from the likelihood (its logit is masked), matching the
    inferer's sampler, which never draws it.

    Args:
        num_embeddings: number of codes K (the transformer has K + 1 tokens).
        spatial_shape: (H, W) of the index maps (fixes sequence length and ordering).
        attn_layers_dim: transformer width.
        attn_layers_depth: number of blocks.
        attn_layers_heads: attention heads.
        embedding_dropout_rate: dropout on the token embeddings.
        ordering_type: "raster_scan", "s_curve" or "random".

    Example:
        >>> prior = TransformerCodePrior(num_embeddings=512, spatial_shape=(16, 16), attn_layers_dim=32,
        ...                              attn_layers_depth=2, attn_layers_heads=4)
        >>> prior.nll_bits(torch.randint(0, 512, (2, 16, 16))).shape
        torch.Size([2])
    """

    def __init__(
        self,
        num_embeddings: int,
        spatial_shape: Sequence[int],
        attn_layers_dim: int = 128,
        attn_layers_depth: int = 4,
        attn_layers_heads: int = 4,
        embedding_dropout_rate: float = 0.0,
        ordering_type: str = "raster_scan",
    ) -> None:
        super().__init__(num_embeddings)
        self.spatial_shape = tuple(int(s) for s in spatial_shape)
        if len(self.spatial_shape) not in (2, 3):
            raise ValueError(f"spatial_shape must be (H, W) or (H, W, D), got {spatial_shape}")
        seq_len = 1
        for s in self.spatial_shape:
            seq_len *= s
        self.transformer = DecoderOnlyTransformer(
            num_tokens=num_embeddings + 1,
            max_seq_len=seq_len,
            attn_layers_dim=attn_layers_dim,
            attn_layers_depth=attn_layers_depth,
            attn_layers_heads=attn_layers_heads,
            embedding_dropout_rate=embedding_dropout_rate,
        )
        self.ordering = Ordering(
            ordering_type=ordering_type, spatial_dims=len(self.spatial_shape), dimensions=(1, *self.spatial_shape)
        )
        self._codes = _IndexPassthrough(num_embeddings)

    @property
    def inferer(self) -> VQVAETransformerInferer:
        """A fresh (stateless) MONAI inferer; not a registered submodule, as its class skips ``nn.Module.__init__``."""
        return VQVAETransformerInferer()

    def check_indices(self, indices: torch.Tensor) -> torch.Tensor:
        indices = super().check_indices(indices)
        if tuple(indices.shape[1:]) != self.spatial_shape:
            raise ValueError(f"this prior was built for {self.spatial_shape} maps, got {tuple(indices.shape[1:])}")
        return indices

    def log_likelihood(self, indices: torch.Tensor) -> torch.Tensor:
        indices = self.check_indices(indices)
        logits, target, _ = self.inferer(indices, self._codes, self.transformer, self.ordering, return_latent=True)
        logits = logits.float()
        logits[..., self.num_embeddings] = float("-inf")  # the BOS token is never a code
        log_p = F.log_softmax(logits, dim=-1).gather(2, target.long().unsqueeze(2)).squeeze(2)  # ordered (B, S)
        log_p = log_p[:, self.ordering.get_revert_sequence_ordering()]
        return log_p.reshape(indices.shape)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        spatial_shape: Sequence[int] | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> torch.Tensor:
        if spatial_shape is not None and tuple(int(s) for s in spatial_shape) != self.spatial_shape:
            raise ValueError(f"this prior samples {self.spatial_shape} maps, got spatial_shape={tuple(spatial_shape)}")
        device = self.transformer.token_embeddings.weight.device
        start = torch.full((num_samples, 1), self.num_embeddings, dtype=torch.long, device=device)
        return self.inferer.sample(
            self.spatial_shape,
            start,
            self._codes,
            self.transformer,
            self.ordering,
            temperature=temperature,
            top_k=top_k,
            verbose=False,
        )
