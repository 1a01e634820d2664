"""Codebook perplexity and use over a whole evaluation set, as a MONAI Cumulative metric."""

from __future__ import annotations

import torch
from monai.metrics import Cumulative

from monai_genvq.networks.bottlenecks.base import codebook_statistics

__all__ = ["CodebookUsageMetric"]


class CodebookUsageMetric(Cumulative):
    """Perplexity and codebook use (docs/METRICS.md) of hard code indices accumulated over batches.

    Perplexity is exp(entropy) of the code histogram of all accumulated indices; use is the
    fraction of the K codes that occur at least once. ``collapsed`` is True when the perplexity is
    below ``collapse_threshold`` codes (0 disables the verdict).

    Args:
        num_embeddings: codebook size K.
        collapse_threshold: perplexity (in codes) below which the codebook counts as collapsed.

    Example:
        >>> metric = CodebookUsageMetric(4)
        >>> metric(torch.tensor([[[0, 1], [2, 3]]]))  # (B=1, H, W)
        >>> metric.aggregate()["perplexity"]
        4.0
    """

    def __init__(self, num_embeddings: int, collapse_threshold: float = 0.0) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.collapse_threshold = collapse_threshold

    def __call__(self, indices: torch.Tensor) -> None:  # type: ignore[override]
        indices = torch.as_tensor(indices).detach().long()
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_embeddings):
            raise ValueError(
                f"code indices must lie in [0, {self.num_embeddings}), got {int(indices.min())}..{int(indices.max())}"
            )
        self.extend(indices.reshape(indices.shape[0], -1).cpu())  # one row per image

    def aggregate(self) -> dict:  # type: ignore[override]
        buffers = self.get_buffer()
        if buffers is None or (isinstance(buffers, torch.Tensor) and buffers.numel() == 0):
            raise ValueError("CodebookUsageMetric has no indices; call it on at least one batch.")
        flat = torch.cat([b.reshape(-1) for b in buffers]) if isinstance(buffers, list) else buffers.reshape(-1)
        return codebook_statistics(self.num_embeddings, flat, self.collapse_threshold)
