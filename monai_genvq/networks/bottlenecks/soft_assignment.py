"""Fused soft assignment to a codebook: ``softmax((−‖z − e‖² + g) / τ) @ E`` in row chunks.

The Gumbel-softmax quantizer of VQ-Diff needs, for N latent vectors and K codes, an (N, K)
assignment matrix in the forward pass and its softmax gradient in the backward pass. Computed the
plain autograd way that is about ten full passes over N×K floats (scores, noise, two logs, softmax,
argmax, and the saved tensors of each). Here forward and backward walk over blocks of rows that fit
in cache: each block's scores, noise, softmax and arg-max are done while the block is hot, and
only the probabilities (which are returned anyway) are kept for the backward pass.

Gumbel noise is drawn by inverse-CDF lookup: 16-bit uniform integers index a table of the 65,536
mid-point quantiles of the standard Gumbel distribution (its CDF is matched to within 2⁻¹⁷). Four
draws come from one 64-bit random integer, so no logarithm is evaluated per element.
"""

from __future__ import annotations

import math

import torch

__all__ = ["gumbel_quantiles", "sample_gumbel", "soft_codebook_assignment"]

_ROWS_PER_BLOCK = 1024
# Probabilities below e^-30 of the row maximum are set to 0 (a bias of at most 9.4e-14 per entry):
# left in, a peaked softmax fills the matrices with subnormal floats, and x86 arithmetic on
# subnormals is up to 100x slower, which made training steps 10-20x slower as codes specialised.
_LOG_PROB_FLOOR = -30.0
_PROB_FLOOR = math.exp(_LOG_PROB_FLOOR)
_QUANTILES: dict[torch.device, torch.Tensor] = {}


def gumbel_quantiles(device: torch.device | str = "cpu") -> torch.Tensor:
    """The 65,536 mid-point quantiles ``−log(−log((k + ½) / 65536))`` of the standard Gumbel law."""
    device = torch.device(device)
    if device not in _QUANTILES:
        u = (torch.arange(65536, dtype=torch.float64) + 0.5) / 65536
        _QUANTILES[device] = (-(-u.log()).log()).float().to(device)
    return _QUANTILES[device]


def sample_gumbel(shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard Gumbel samples of ``shape`` (float32) from the global torch RNG, by table lookup.

    Example:
        >>> _ = torch.manual_seed(0); g = sample_gumbel((100000,))
        >>> round(float(g.mean()), 2)  # Euler–Mascheroni constant 0.577
        0.58
    """
    numel = 1
    for s in shape:
        numel *= s
    words = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)
    index = words.view(torch.int16)[:numel].to(torch.int32).add_(32768)
    return torch.index_select(gumbel_quantiles(device), 0, index).view(shape)


def _block_probs(
    flat: torch.Tensor, codebook: torch.Tensor, bias: torch.Tensor, scale: float, noise: bool, out: torch.Tensor
) -> torch.Tensor:
    """Writes ``softmax(scale·(2 z·e − ‖e‖²) + g·scale)`` of a block of rows into ``out`` (in place)
    and returns the block's arg-max codes."""
    torch.addmm(bias, flat, codebook.t(), beta=1.0, alpha=2.0 * scale, out=out)
    if noise:
        out.add_(sample_gumbel(tuple(out.shape), out.device), alpha=scale)
    row_max, indices = out.max(dim=1, keepdim=True)
    out.sub_(row_max).clamp_min_(_LOG_PROB_FLOOR).exp_().sub_(_PROB_FLOOR).clamp_min_(0.0)
    out.div_(out.sum(dim=1, keepdim=True))
    return indices.squeeze(1)


def _traceable_assignment(
    flat: torch.Tensor, codebook: torch.Tensor, scale: float, noise: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_block_probs` and the code mix without ``out=`` or in-place ops, for ``torch.jit.trace``.

    A trace records the ops it sees: ``addmm(..., out=...)`` and in-place updates of a buffer would be
    replayed as such, and ``out=`` ops refuse inputs that require grad, so the exported module could
    only run under ``torch.no_grad()``. These out-of-place ops compute the same values and also run
    with autograd on.
    """
    bias = (codebook * codebook).sum(1).mul(-scale).unsqueeze(0)
    scores = torch.addmm(bias, flat, codebook.t(), beta=1.0, alpha=2.0 * scale)
    if noise:
        scores = scores + sample_gumbel(tuple(scores.shape), scores.device) * scale
    row_max, indices = scores.max(dim=1, keepdim=True)
    probs = (scores - row_max).clamp_min(_LOG_PROB_FLOOR).exp().sub(_PROB_FLOOR).clamp_min(0.0)
    probs = probs / probs.sum(dim=1, keepdim=True)
    return probs @ codebook, probs, indices.squeeze(1)


class _SoftCodebookAssignment(torch.autograd.Function):
    @staticmethod
    def forward(ctx, flat: torch.Tensor, codebook: torch.Tensor, temperature: float, noise: bool):  # type: ignore[override]
        scale = 1.0 / temperature
        bias = (codebook * codebook).sum(1).mul_(-scale).unsqueeze(0)
        probs = flat.new_empty(flat.shape[0], codebook.shape[0])
        quantized = flat.new_empty(flat.shape)
        indices = torch.empty(flat.shape[0], dtype=torch.long, device=flat.device)
        for start in range(0, flat.shape[0], _ROWS_PER_BLOCK):
            rows = slice(start, start + _ROWS_PER_BLOCK)
            indices[rows] = _block_probs(flat[rows], codebook, bias, scale, noise, probs[rows])
            torch.mm(probs[rows], codebook, out=quantized[rows])
        ctx.save_for_backward(flat, codebook, probs)
        ctx.scale = scale
        ctx.mark_non_differentiable(probs, indices)
        return quantized, probs, indices

    @staticmethod
    def backward(ctx, grad_quantized: torch.Tensor, _grad_probs, _grad_indices):  # type: ignore[override]
        flat, codebook, probs = ctx.saved_tensors
        two_scale = 2.0 * ctx.scale
        grad_quantized = grad_quantized.contiguous()
        grad_flat = torch.empty_like(flat) if ctx.needs_input_grad[0] else None
        # dL/dE = Pᵀ·dQ (the mix) + 2s·(dSᵀ·Z − colsum(dS) ⊙ E) (the scores), accumulated over blocks
        grad_codebook = probs.t() @ grad_quantized if ctx.needs_input_grad[1] else None
        score_grad_sum = flat.new_zeros(codebook.shape[0]) if ctx.needs_input_grad[1] else None
        for start in range(0, flat.shape[0], _ROWS_PER_BLOCK):
            rows = slice(start, start + _ROWS_PER_BLOCK)
            p = probs[rows]
            grad_scores = grad_quantized[rows] @ codebook.t()  # dL/dP
            grad_scores.sub_((grad_scores * p).sum(1, keepdim=True)).mul_(p)  # softmax backward
            if grad_flat is not None:
                torch.mm(grad_scores, codebook, out=grad_flat[rows]).mul_(two_scale)
            if grad_codebook is not None:
                grad_codebook.addmm_(grad_scores.t(), flat[rows], alpha=two_scale)
                score_grad_sum.add_(grad_scores.sum(0))
        if grad_codebook is not None:
            grad_codebook.addcmul_(score_grad_sum.unsqueeze(1), codebook, value=-two_scale)
        return grad_flat, grad_codebook, None, None


def soft_codebook_assignment(
    flat: torch.Tensor, codebook: torch.Tensor, temperature: float, gumbel_noise: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft (Gumbel-)softmax assignment of latents to codes and the probability-weighted code mix.

    ``probs = softmax((−‖z − e_k‖² + g) / τ)`` over the K codes (``g`` standard Gumbel noise when
    ``gumbel_noise``, else 0) and ``quantized = probs @ codebook``; gradients flow to ``flat`` and
    ``codebook`` exactly as through the unfused expression (probs are returned without gradient).

    Args:
        flat: (N, D) float32 latents.
        codebook: (K, D) float32 codes.
        temperature: softmax temperature τ > 0.
        gumbel_noise: add Gumbel noise (training) or not (deterministic evaluation).

    Returns:
        ``(quantized (N, D), probs (N, K), indices (N,))``, indices the most probable code of each row.

    Example:
        >>> z, codes = torch.randn(6, 4), torch.randn(8, 4)
        >>> q, p, i = soft_codebook_assignment(z, codes, temperature=1.0, gumbel_noise=False)
        >>> torch.allclose(p, torch.softmax(-torch.cdist(z, codes) ** 2, 1), atol=1e-5)
        True
    """
    if torch.jit.is_tracing():  # TorchScript export (ckpt_export --use_trace): the same maths as plain traceable ops
        return _traceable_assignment(flat, codebook, 1.0 / float(temperature), bool(gumbel_noise))
    return _SoftCodebookAssignment.apply(
        flat.contiguous(), codebook.contiguous(), float(temperature), bool(gumbel_noise)
    )
