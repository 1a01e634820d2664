"""Sampled-expectation quantizer (Roy et al. 2018): the mean of m codes drawn from the posterior."""

from __future__ import annotations

import torch

from monai_genvq.networks.bottlenecks.base import Quantizer, QuantizerOutput, codebook_perplexity

__all__ = ["SampledExpectationQuantizer", "distance_posterior", "sample_code_mean", "SE_EVAL_MODES"]

SE_EVAL_MODES = ("hard", "expectation")


def distance_posterior(scores: torch.Tensor) -> torch.Tensor:
    """``q(k | z) ∝ exp(scores_k)`` with scores ``−‖z − w_k‖²/τ`` (up to a per-row constant).

    Example:
        >>> distance_posterior(torch.tensor([[0.0, -float("inf")]]))
        tensor([[1., 0.]])
    """
    return torch.softmax(scores, dim=1)


def sample_code_mean(
    probs: torch.Tensor, codebook: torch.Tensor, num_samples: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``num_samples`` codes per row from ``probs`` (with replacement) and average them.

    The result is an unbiased Monte-Carlo estimate of the posterior mean ``Σ_k q_k w_k``; its
    variance shrinks as 1/m. The gradient reaches each drawn code with weight (count / m).

    Args:
        probs: (N, K) posterior.
        codebook: (K, D) codes.
        num_samples: m ≥ 1.
        generator: optional random generator.

    Returns:
        ``(mean (N, D), samples (N, m))``.

    Example:
        >>> mean, samples = sample_code_mean(torch.tensor([[0.0, 1.0]]), torch.eye(2), num_samples=3)
        >>> mean, samples
        (tensor([[0., 1.]]), tensor([[1, 1, 1]]))
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
    samples = torch.multinomial(probs, num_samples, replacement=True, generator=generator)
    return torch.nn.functional.embedding(samples, codebook).mean(1), samples


class SampledExpectationQuantizer(Quantizer):
    """Quantizer whose output is the mean of m codes sampled from the distance posterior.

    Roy, Vaswani, Neelakantan & Parmar, "Theory and Experiments on Vector Quantized
    Autoencoders", arXiv:1805.11063, 2018: the posterior is ``q(k | z) ∝ exp(−‖z − w_k‖²/τ)``;
    training draws m codes from it and the decoder consumes their mean ``ẑ`` with the
    straight-through estimator (identity gradient from ``ẑ`` to z). Roy et al. fit the codebook
    by soft EM; here the equivalent gradient update is used: loss
    ``‖sg(z) − ẑ‖² + β‖z − sg(ẑ)‖²`` (element means) whose first term moves the drawn codes towards
    the latent, each in proportion to how often it was drawn — in expectation the EM M-step
    direction ``Σ_k q_k (w_k − z)``.

    Evaluation is deterministic: ``eval_mode="hard"`` decodes the most probable (nearest) code,
    which is what a stage-2 prior over the indices models; ``"expectation"`` decodes the exact
    posterior mean ``Σ_k q_k w_k``.

    Args:
        num_embeddings: number of codes K.
        embedding_dim: code dimension D.
        num_samples: m, codes drawn per latent.
        temperature: τ of the posterior.
        commitment_cost: β.
        eval_mode: "hard" or "expectation".
        init_std: std of the N(0, σ) codebook initialisation; None: uniform(−1/K, 1/K) as VQ-VAE.
        dead_code_steps: see :class:`Quantizer` (0: off).
        collapse_threshold: see :class:`Quantizer` (0: off).
        data_init: seed the codebook from the first training batch (see :class:`Quantizer`).

    Example:
        >>> se = SampledExpectationQuantizer(num_embeddings=512, embedding_dim=64, num_samples=10)
        >>> se(torch.randn(2, 64, 16, 16)).quantized.shape
        torch.Size([2, 64, 16, 16])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        num_samples: int = 10,
        temperature: float = 1.0,
        commitment_cost: float = 0.25,
        eval_mode: str = "hard",
        init_std: float | None = None,
        dead_code_steps: int = 0,
        collapse_threshold: float = 0.0,
        data_init: bool = False,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, dead_code_steps, collapse_threshold, data_init)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        if eval_mode not in SE_EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {SE_EVAL_MODES}, got {eval_mode!r}.")
        self.num_samples = int(num_samples)
        self.temperature = float(temperature)
        self.commitment_cost = commitment_cost
        self.eval_mode = eval_mode
        self.init_codebook(init_std)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat, shape_last = self.flatten(z)
        self.prepare_codebook(flat)
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = flat.float()
            scores = self.code_scores(flat.detach(), scale=1.0 / self.temperature)
            probs = distance_posterior(scores)
            indices = scores.argmax(1)
            codebook = self.codebook.float()
            if self.training:
                target, _ = sample_code_mean(probs, codebook, self.num_samples)
            elif self.eval_mode == "expectation":
                target = probs @ codebook
            else:
                target = codebook[indices]
            loss = (target - flat.detach()).square().mean() + self.commitment_cost * (
                flat - target.detach()
            ).square().mean()
            quantized = flat + (target - flat).detach()
        return QuantizerOutput(
            latent=self.unflatten(quantized, shape_last).to(z.dtype),
            loss=loss,
            indices=indices.reshape(shape_last[:-1]),
            probs=probs.reshape(*shape_last[:-1], self.num_embeddings),
            perplexity=codebook_perplexity(self.num_embeddings, indices=indices),
            **self.usage_report(flat, indices),
        )
