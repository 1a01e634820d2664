from __future__ import annotations

import torch
from torch import nn

from monai_genvq.networks.bottlenecks.base import Quantizer, QuantizerOutput, codebook_perplexity
from monai_genvq.networks.bottlenecks.soft_assignment import soft_codebook_assignment

__all__ = ["GumbelQuantizer"]

EVAL_MODES = ("soft", "hard", "gumbel")


class GumbelQuantizer(Quantizer):
    """VQ-Diff's differentiable quantizer: a Gumbel-softmax weighted mix of the codebook.

    Logits are negative squared distances ``−‖z − e_k‖²``; in training the assignment is
    ``softmax((logits + g) / τ)`` with Gumbel noise g (Jang et al. 2017, Maddison et al. 2017),
    and the output is the probability-weighted sum of codes, so encoder and codebook receive exact
    gradients (no straight-through estimator). The codebook starts from N(0, σ²) with σ = 2 and
    τ = 10, as in the VQ-Diff paper (differentiable vector quantisation for streamline bundles).

    Evaluation (``eval()``) by ``eval_mode``:

    - ``"soft"`` (default): deterministic, the noise is dropped (``softmax(logits / τ)``);
    - ``"hard"``: deterministic, the nearest code;
    - ``"gumbel"``: the training assignment with fresh Gumbel noise, as the paper's released code
      evaluates (``F.gumbel_softmax`` in ``SoftQuantizer`` has no training switch, drewrl3v/diff-vq-vae
      ``run_experiments/models.py``); reconstructions then vary with the noise seed (seed the global torch
      RNG, e.g. ``monai.utils.set_determinism``, to repeat them).

    Args:
        num_embeddings: number of codes K (paper: 512).
        embedding_dim: code dimension D (paper: 64).
        temperature: softmax temperature τ.
        init_std: σ of the Gaussian codebook initialisation.
        eval_mode: "soft", "hard" or "gumbel", the assignment used in ``eval()`` (see above).
        dead_code_steps: re-seed codes unused for this many training steps (0: off, see :class:`Quantizer`).
        collapse_threshold: warn/flag when batch perplexity falls below this many codes (0: off).
        data_init: seed the codebook from the first training batch (see :class:`Quantizer`).

    The scores, noise, softmax and code mix are computed block by block by
    :func:`~monai_genvq.networks.bottlenecks.soft_assignment.soft_codebook_assignment`, which keeps
    only the (N, K) probabilities for the backward pass.

    Example:
        >>> quantizer = GumbelQuantizer(num_embeddings=512, embedding_dim=64)
        >>> out = quantizer(torch.randn(2, 64, 16, 16))
        >>> out.probs.shape
        torch.Size([2, 16, 16, 512])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        temperature: float = 10.0,
        init_std: float = 2.0,
        eval_mode: str = "soft",
        dead_code_steps: int = 0,
        collapse_threshold: float = 0.0,
        data_init: bool = False,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, dead_code_steps, collapse_threshold, data_init)
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"GumbelQuantizer eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.temperature = temperature
        self.eval_mode = eval_mode
        self.init_codebook(init_std)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat, shape_last = self.flatten(z)
        self.prepare_codebook(flat)
        with torch.autocast(device_type=z.device.type, enabled=False):
            if self.training or self.eval_mode != "hard":
                noise = self.training or self.eval_mode == "gumbel"
                quantized, probs, indices = soft_codebook_assignment(
                    flat.float(), self.codebook.float(), self.temperature, gumbel_noise=noise
                )
            else:
                indices = self.code_scores(flat).argmax(1)
                probs = nn.functional.one_hot(indices, self.num_embeddings).float()
                quantized = self.codebook.float()[indices]
        return QuantizerOutput(
            latent=self.unflatten(quantized, shape_last).to(z.dtype),
            loss=quantized.new_zeros(()),
            indices=indices.reshape(shape_last[:-1]),
            probs=probs.reshape(*shape_last[:-1], self.num_embeddings),
            perplexity=codebook_perplexity(self.num_embeddings, probs=probs),
            **self.usage_report(flat, indices),
        )
