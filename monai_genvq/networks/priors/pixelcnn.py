"""Gated PixelCNN prior over 2-D code-index maps (van den Oord et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from monai_genvq.networks.priors.base import CodePrior

__all__ = ["GatedMaskedConv2d", "GatedPixelCNNPrior"]


class GatedMaskedConv2d(nn.Module):
    """One gated PixelCNN layer with a vertical and a horizontal stack (no blind spot).

    The vertical stack sees the rows above (a (k//2+1) × k kernel padded and cropped so row i sees
    rows i−k//2..i; in the first, type "A", layer the last kernel row is masked so row i is not
    seen); the horizontal stack sees the pixels to the left on the same row (a 1 × (k//2+1)
    kernel; type "A" masks the current pixel). The vertical features feed the horizontal stack by
    a 1×1 convolution; both use the gated activation ``tanh(a) ⊙ σ(b)``.

    Args:
        channels: feature channels.
        kernel_size: odd kernel size k.
        mask_type: "A" (first layer: excludes the current pixel) or "B".
    """

    def __init__(self, channels: int, kernel_size: int = 5, mask_type: str = "B") -> None:
        super().__init__()
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        half = kernel_size // 2
        self.mask_type = mask_type
        self.vertical = nn.Conv2d(channels, 2 * channels, (half + 1, kernel_size), padding=(half, half))
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, half + 1), padding=(0, half))
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)
        v_mask = torch.ones_like(self.vertical.weight)
        h_mask = torch.ones_like(self.horizontal.weight)
        if mask_type == "A":
            v_mask[:, :, -1] = 0  # not the current row
            h_mask[:, :, :, -1] = 0  # not the current pixel
        self.register_buffer("v_mask", v_mask, persistent=False)
        self.register_buffer("h_mask", h_mask, persistent=False)

    @staticmethod
    def _gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = v.shape[-2:]
        v_feat = F.conv2d(v, self.vertical.weight * self.v_mask, self.vertical.bias, padding=self.vertical.padding)
        v_feat = v_feat[:, :, :height, :]
        h_feat = F.conv2d(
            h, self.horizontal.weight * self.h_mask, self.horizontal.bias, padding=self.horizontal.padding
        )
        h_feat = h_feat[:, :, :, :width]
        h_out = self.horizontal_out(self._gate(h_feat + self.vertical_to_horizontal(v_feat)))
        if self.mask_type == "B":
            h_out = h_out + h
        return self._gate(v_feat), h_out


class GatedPixelCNNPrior(CodePrior):
    """Autoregressive prior over code-index maps: a gated PixelCNN in raster order.

    van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image
    Generation with PixelCNN Decoders", NeurIPS 2016; used as the VQ-VAE prior in van den Oord et
    al. 2017. Codes are embedded, passed through one type-A and ``num_layers − 1`` type-B gated
    layers (:class:`GatedMaskedConv2d`), and a 1×1 head gives K logits per position;
    ``p(x_ij | codes above, and left on the same row)``.

    Args:
        num_embeddings: number of codes K.
        channels: feature channels.
        num_layers: gated layers (receptive field grows by k//2 per layer).
        kernel_size: odd kernel size.

    Example:
        >>> prior = GatedPixelCNNPrior(num_embeddings=512, channels=32, num_layers=4)
        >>> codes = torch.randint(0, 512, (2, 16, 16))
        >>> prior.nll_bits(codes).shape, prior.sample(1, (4, 4)).shape
        (torch.Size([2]), torch.Size([1, 4, 4]))
    """

    def __init__(self, num_embeddings: int, channels: int = 64, num_layers: int = 8, kernel_size: int = 5) -> None:
        super().__init__(num_embeddings)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.embedding = nn.Embedding(num_embeddings, channels)
        self.layers = nn.ModuleList(
            [GatedMaskedConv2d(channels, kernel_size, "A" if i == 0 else "B") for i in range(num_layers)]
        )
        self.head = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 1), nn.ReLU(), nn.Conv2d(2 * channels, num_embeddings, 1)
        )

    def logits(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) logits of ``p(x_ij | x_<ij)``."""
        x = self.embedding(self.check_indices(indices)).permute(0, 3, 1, 2)
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def log_likelihood(self, indices: torch.Tensor) -> torch.Tensor:
        indices = self.check_indices(indices)
        log_probs = F.log_softmax(self.logits(indices).float(), dim=1)
        return log_probs.gather(1, indices.unsqueeze(1)).squeeze(1)

    @torch.no_grad()
    def sample(
        self, num_samples: int, spatial_shape: Sequence[int], temperature: float = 1.0, top_k: int | None = None
    ) -> torch.Tensor:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        height, width = (int(s) for s in spatial_shape)
        device = self.embedding.weight.device
        codes = torch.zeros(num_samples, height, width, dtype=torch.long, device=device)
        for i in range(height):
            for j in range(width):
                logits = self.logits(codes)[:, :, i, j].float() / temperature
                if top_k is not None:
                    kth = logits.topk(min(top_k, logits.shape[1]), dim=1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                codes[:, i, j] = torch.multinomial(torch.softmax(logits, dim=1), 1).squeeze(1)
        return codes
