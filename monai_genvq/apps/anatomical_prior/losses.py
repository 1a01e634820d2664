"""Loss terms of the anatomical-prior VAE (stage 1 label prior, stage 2 image model).

All terms are per-sample sums over voxels / latent dimensions, averaged over the batch
(the ELBO convention of Kingma & Welling 2014). References: Kingma & Welling, "Auto-Encoding
Variational Bayes", ICLR 2014; Dalca et al., "Anatomical Priors in Convolutional Networks for
Unsupervised Biomedical Segmentation", CVPR 2018; seed "Auto-Encoding Variational Bayes &
Application to Biomedical Segmentation".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from monai_genvq.losses.elbo import gaussian_kl

__all__ = [
    "AnatomicalPriorTerms",
    "ImageModelLoss",
    "LabelPriorLoss",
    "categorical_nll",
    "gaussian_nll_latent",
    "jensen_intensity_log_likelihood",
    "label_intensity_log_likelihood",
]

_LOG_2PI = math.log(2 * math.pi)


def categorical_nll(logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """−log p(s|z) of one-hot label maps under voxel-wise categorical logits, summed over voxels: (B,).

    Example:
        >>> categorical_nll(torch.zeros(1, 2, 1, 1), torch.tensor([[[[1.0]], [[0.0]]]]))
        tensor([0.6931])
    """
    if logits.shape != onehot.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and one-hot labels {tuple(onehot.shape)} differ in shape")
    return -(onehot * logits.log_softmax(1)).flatten(1).sum(1)


def label_intensity_log_likelihood(x: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log N(x_v; m_l, σ_l²) for every voxel and label, summed over image channels.

    Args:
        x: (B, C, *spatial) image.
        means, logvars: (L, C) per-label Gaussian parameters.

    Returns:
        (B, L, *spatial).
    """
    b, c = x.shape[:2]
    if means.shape[1] != c:
        raise ValueError(f"intensity model has {means.shape[1]} channel(s) but the image has {c}")
    view = (1, means.shape[0], c) + (1,) * (x.ndim - 2)
    m, lv = means.view(view), logvars.view(view)
    diff = x.unsqueeze(1) - m
    return (-0.5 * (_LOG_2PI + lv + diff.square() * torch.exp(-lv))).sum(2)


def jensen_intensity_log_likelihood(
    logits: torch.Tensor, x: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor
) -> torch.Tensor:
    """Jensen lower bound ``Σ_v Σ_l p(s_v=l|z) log N(x_v; m_l, σ_l²) ≤ log p(x|z)``, per sample: (B,)."""
    probs = logits.softmax(1)
    return (probs * label_intensity_log_likelihood(x, means, logvars)).flatten(1).sum(1)


def gaussian_nll_latent(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """−log q(z|x) of target latents under a diagonal Gaussian, summed over dims: (B,) (encoder pre-training)."""
    return 0.5 * (_LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar)).flatten(1).sum(1)


@dataclass
class AnatomicalPriorTerms:
    """Scalar loss terms (batch means): ``loss`` (to minimise), ``nll`` (reconstruction term), ``kl``."""

    loss: torch.Tensor
    nll: torch.Tensor
    kl: torch.Tensor


class LabelPriorLoss(nn.Module):
    """Stage-1 negative ELBO: ``−log p(s|z) + β·KL(q(z|s) ‖ N(0, I))``.

    Args:
        beta: KL weight (1 is the ELBO).

    Example:
        >>> from monai_genvq.apps.anatomical_prior import LabelPriorVAE
        >>> net = LabelPriorVAE(2, 3, 16, (4,), 2)
        >>> s = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 16, 16)), 3).permute(0, 3, 1, 2).float()
        >>> LabelPriorLoss()(net(s), s).loss.ndim
        0
    """

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = float(beta)

    def forward(self, output, onehot: torch.Tensor) -> AnatomicalPriorTerms:  # type: ignore[no-untyped-def]
        nll = categorical_nll(output.logits, onehot).mean()
        kl = gaussian_kl(output.mu, output.logvar, "per_sample").mean()
        return AnatomicalPriorTerms(loss=nll + self.beta * kl, nll=nll, kl=kl)


class ImageModelLoss(nn.Module):
    """Stage-2 negative Jensen ELBO: ``−Σ_v Σ_l p(s_v=l|z) log N(x_v; m_l, σ_l²) + β·KL(q(z|x) ‖ N(0, I))``.

    Args:
        beta: KL weight (1 is the bound of the seed).

    Example:
        >>> from monai_genvq.apps.anatomical_prior import LabelPriorVAE, ImageSegmentationVAE
        >>> net = ImageSegmentationVAE(LabelPriorVAE(2, 3, 16, (4,), 2))
        >>> x = torch.rand(2, 1, 16, 16)
        >>> ImageModelLoss()(net(x), x).kl.ndim
        0
    """

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = float(beta)

    def forward(self, output, x: torch.Tensor) -> AnatomicalPriorTerms:  # type: ignore[no-untyped-def]
        nll = -jensen_intensity_log_likelihood(output.logits, x, output.means, output.logvars).mean()
        kl = gaussian_kl(output.mu, output.logvar, "per_sample").mean()
        return AnatomicalPriorTerms(loss=nll + self.beta * kl, nll=nll, kl=kl)
