"""Anatomical-prior VAE for unsupervised segmentation (auto-encoding variational Bayes on label maps).

Two models, trained in two stages:

1. :class:`LabelPriorVAE` — a VAE on one-hot label maps ``s``: encoder ``q(z|s)`` (diagonal
   Gaussian), decoder ``p(s|z)`` (voxel-wise categorical logits), optionally plus a voxel-wise
   *location prior* (label frequencies of the prior's training set) added in log space to the
   logits, ``log p(s_v = l | z) = log softmax_l(f_l(z)_v + log π_l(v))``.
2. :class:`ImageSegmentationVAE` — an image encoder ``q(z|x)`` trained against the prior's
   **frozen** decoder, with ``p(x|s)`` a per-label Gaussian intensity model of learnt means and
   variances. The segmentation of an image is the decoder's label distribution at ``z = μ(x)``.

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
    Dalca, Guttag & Sabuncu, "Anatomical Priors in Convolutional Networks for Unsupervised
    Biomedical Segmentation", CVPR 2018.
    Seed: "Auto-Encoding Variational Bayes & Application to Biomedical Segmentation".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.networks.blocks import Convolution
from torch import nn

__all__ = [
    "ImageSegmentationOutput",
    "ImageSegmentationVAE",
    "LabelPriorVAE",
    "LabelPriorOutput",
    "PriorConvDecoder",
    "PriorConvEncoder",
    "LOGVAR_RANGE",
    "LOG_PROB_FLOOR",
]

LOGVAR_RANGE = (-12.0, 8.0)  # the one clamp of posterior and intensity log-variances
LOG_PROB_FLOOR = 1e-6  # location-prior frequencies are floored here before the log


def _check_size(image_size: Sequence[int], spatial_dims: int, levels: int) -> tuple[int, ...]:
    size = (int(image_size),) * spatial_dims if isinstance(image_size, int) else tuple(int(s) for s in image_size)
    if len(size) != spatial_dims:
        raise ValueError(f"image_size {image_size} must have {spatial_dims} entries (spatial_dims={spatial_dims})")
    if any(s % (2**levels) for s in size):
        raise ValueError(f"image_size {size} must be divisible by 2**len(channels) = {2**levels}")
    return size


class PriorConvEncoder(nn.Module):
    """Strided-convolution encoder to a diagonal Gaussian ``(mu, logvar)`` over a flat latent.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (number of labels for the prior, image channels for ``q(z|x)``).
        image_size: spatial size (int or per-dimension), divisible by ``2**len(channels)``.
        channels: channels of the stride-2 levels.
        latent_dim: latent dimension.

    Example:
        >>> mu, logvar = PriorConvEncoder(2, 4, 32, (8, 16), 6)(torch.zeros(2, 4, 32, 32))
        >>> mu.shape
        torch.Size([2, 6])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        image_size: int | Sequence[int],
        channels: Sequence[int],
        latent_dim: int,
    ) -> None:
        super().__init__()
        size = _check_size(image_size, spatial_dims, len(channels))
        layers, c_in = [], in_channels
        for c in channels:
            layers.append(
                Convolution(spatial_dims, c_in, c, strides=2, kernel_size=3, act="LEAKYRELU", norm="INSTANCE")
            )
            layers.append(Convolution(spatial_dims, c, c, strides=1, kernel_size=3, act="LEAKYRELU", norm="INSTANCE"))
            c_in = c
        self.features = nn.Sequential(*layers)
        n_flat = c_in * int(torch.tensor([s // 2 ** len(channels) for s in size]).prod())
        self.head = nn.Linear(n_flat, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.features(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


class PriorConvDecoder(nn.Module):
    """Flat latent -> voxel-wise logits over ``out_channels`` labels (transposed convolutions).

    Example:
        >>> PriorConvDecoder(2, 4, 32, (8, 16), 6)(torch.zeros(2, 6)).shape
        torch.Size([2, 4, 32, 32])
    """

    def __init__(
        self,
        spatial_dims: int,
        out_channels: int,
        image_size: int | Sequence[int],
        channels: Sequence[int],
        latent_dim: int,
    ) -> None:
        super().__init__()
        size = _check_size(image_size, spatial_dims, len(channels))
        rev = list(channels)[::-1]
        self.start_shape = (rev[0],) + tuple(s // 2 ** len(channels) for s in size)
        self.fc = nn.Linear(latent_dim, int(torch.tensor(self.start_shape).prod()))
        layers = []
        for i, c in enumerate(rev):
            c_out = rev[i + 1] if i + 1 < len(rev) else rev[-1]
            layers.append(
                Convolution(
                    spatial_dims,
                    c,
                    c_out,
                    strides=2,
                    kernel_size=3,
                    act="LEAKYRELU",
                    norm="INSTANCE",
                    is_transposed=True,
                    output_padding=1,
                )
            )
            layers.append(
                Convolution(spatial_dims, c_out, c_out, strides=1, kernel_size=3, act="LEAKYRELU", norm="INSTANCE")
            )
        self.features = nn.Sequential(*layers)
        self.out = Convolution(spatial_dims, rev[-1], out_channels, kernel_size=1, conv_only=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.leaky_relu(self.fc(z)).view(z.shape[0], *self.start_shape)
        return self.out(self.features(h))


def _reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


@dataclass
class LabelPriorOutput:
    """Output of :class:`LabelPriorVAE`.

    Attributes:
        logits: (B, L, *spatial) decoder logits including the log location prior (log p(s|z) up to
            the softmax normaliser).
        mu, logvar: (B, latent_dim) posterior q(z|s).
        z: latent decoded (a sample when sampling, else ``mu``).
    """

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class LabelPriorVAE(nn.Module):
    """Stage 1: VAE on one-hot label maps with a categorical likelihood and an optional location prior.

    ``q(z|s) = N(μ(s), diag σ²(s))``, ``p(z) = N(0, I)``, ``p(s|z) = Π_v Cat(s_v; softmax(f(z)_v + log π(v)))``
    (Kingma & Welling 2014; Dalca et al. 2018). The location prior ``π`` is a buffer of shape
    (L, *image_size) holding voxel-wise label frequencies; it is all-ones (no effect) until
    :meth:`set_location_prior` is called, so checkpoints load the same way with and without it.

    Args:
        spatial_dims: 2 or 3.
        num_labels: number of labels L including background (one-hot channels).
        image_size: spatial size, divisible by ``2**len(channels)``.
        channels: encoder channels per level (the decoder mirrors them).
        latent_dim: latent dimension.
        location_prior: optional (L, *image_size) frequencies (rows sum to 1 over L).

    Example:
        >>> net = LabelPriorVAE(spatial_dims=2, num_labels=4, image_size=32, channels=(8, 16), latent_dim=6)
        >>> s = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 32, 32)), 4).permute(0, 3, 1, 2).float()
        >>> net(s).logits.shape
        torch.Size([2, 4, 32, 32])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        num_labels: int = 4,
        image_size: int | Sequence[int] = 64,
        channels: Sequence[int] = (16, 32, 64),
        latent_dim: int = 16,
        location_prior: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"num_labels must be >= 2 (background + structures); got {num_labels}")
        self.spatial_dims, self.num_labels, self.latent_dim = int(spatial_dims), int(num_labels), int(latent_dim)
        self.image_size = _check_size(image_size, spatial_dims, len(channels))
        self.channels = tuple(int(c) for c in channels)
        self.encoder = PriorConvEncoder(spatial_dims, num_labels, self.image_size, channels, latent_dim)
        self.decoder = PriorConvDecoder(spatial_dims, num_labels, self.image_size, channels, latent_dim)
        self.register_buffer("log_location_prior", torch.zeros(num_labels, *self.image_size))
        if location_prior is not None:
            self.set_location_prior(location_prior)

    def set_location_prior(self, frequencies: torch.Tensor | None) -> None:
        """Set (or with None remove) the voxel-wise label frequencies π of shape (L, *image_size)."""
        if frequencies is None:
            self.log_location_prior.zero_()
            return
        freq = torch.as_tensor(frequencies, dtype=torch.float32)
        if tuple(freq.shape) != tuple(self.log_location_prior.shape):
            raise ValueError(
                f"location prior has shape {tuple(freq.shape)}; expected (num_labels, *image_size) = "
                f"{tuple(self.log_location_prior.shape)}"
            )
        if not torch.isfinite(freq).all() or (freq < 0).any():
            raise ValueError("location prior frequencies must be finite and non-negative")
        self.log_location_prior.copy_(freq.clamp_min(LOG_PROB_FLOOR).log())

    @property
    def has_location_prior(self) -> bool:
        return bool(self.log_location_prior.abs().sum() > 0)

    def encode(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if s.shape[1] != self.num_labels or tuple(s.shape[2:]) != self.image_size:
            raise ValueError(
                f"label maps must be one-hot (B, {self.num_labels}, *{self.image_size}); got {tuple(s.shape)}"
            )
        return self.encoder(s)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(s|z): decoder output plus the log location prior."""
        return self.decoder(z) + self.log_location_prior

    def sample(self, n: int) -> torch.Tensor:
        """Label probabilities p(s|z) for ``n`` draws z ~ N(0, I): (n, L, *image_size)."""
        device = self.log_location_prior.device
        return self.decode(torch.randn(n, self.latent_dim, device=device)).softmax(1)

    def forward(self, s: torch.Tensor, sample: bool | None = None) -> LabelPriorOutput:
        mu, logvar = self.encode(s)
        z = _reparameterize(mu, logvar) if (self.training if sample is None else sample) else mu
        return LabelPriorOutput(logits=self.decode(z), mu=mu, logvar=logvar, z=z)


@dataclass
class ImageSegmentationOutput:
    """Output of :class:`ImageSegmentationVAE`.

    Attributes:
        logits: (B, L, *spatial) label logits of the frozen decoder at ``z``.
        mu, logvar: (B, latent_dim) posterior q(z|x).
        z: latent decoded (a sample when sampling, else ``mu``).
        means, logvars: (L, C) per-label Gaussian intensity parameters of p(x|s).
    """

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    means: torch.Tensor
    logvars: torch.Tensor


class ImageSegmentationVAE(nn.Module):
    """Stage 2: image encoder q(z|x) with the prior's frozen decoder and a per-label Gaussian intensity model.

    ``p(x|z) = Π_v Σ_l p(s_v = l | z) N(x_v; m_l, σ_l²)``; training maximises the Jensen lower bound
    ``E_q[log p(x|z)] ≥ E_q[Σ_v Σ_l p(s_v=l|z) log N(x_v; m_l, σ_l²)]`` minus ``KL(q(z|x) || N(0, I))``
    (seed "Auto-Encoding Variational Bayes & Application to Biomedical Segmentation"; Dalca et al.
    2018). The prior's decoder and location prior are frozen (``requires_grad=False``, kept in
    eval mode); only the image encoder and ``(m_l, log σ_l²)`` learn. The segmentation of ``x`` is
    ``argmax_l p(s=l | μ(x))`` (:meth:`segment`).

    Args:
        prior: a trained :class:`LabelPriorVAE` (its decoder is frozen here, in place).
        in_channels: image channels C.
        channels: image-encoder channels per level (default: the prior's encoder layout).
        init_means: optional (L,) or (L, C) initial intensity means.
        init_logvars: optional (L,) or (L, C) initial intensity log-variances.

    Example:
        >>> prior = LabelPriorVAE(2, 4, 32, (8, 16), 6)
        >>> net = ImageSegmentationVAE(prior, in_channels=1, channels=(8, 16))
        >>> net.segment(torch.rand(2, 1, 32, 32)).shape
        torch.Size([2, 32, 32])
    """

    def __init__(
        self,
        prior: LabelPriorVAE,
        in_channels: int = 1,
        channels: Sequence[int] | None = None,
        init_means: torch.Tensor | Sequence[float] | None = None,
        init_logvars: torch.Tensor | Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.prior = prior
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.prior.eval()
        channels = tuple(channels) if channels is not None else prior.channels
        self.in_channels, self.num_labels, self.latent_dim = int(in_channels), prior.num_labels, prior.latent_dim
        self.image_encoder = PriorConvEncoder(
            prior.spatial_dims, in_channels, prior.image_size, channels, prior.latent_dim
        )
        L, C = self.num_labels, self.in_channels
        self.means = nn.Parameter(torch.linspace(0.0, 1.0, L)[:, None].repeat(1, C))
        self.logvars = nn.Parameter(torch.full((L, C), -3.0))
        if init_means is not None or init_logvars is not None:
            self.set_intensity_model(init_means, init_logvars)

    def train(self, mode: bool = True) -> ImageSegmentationVAE:
        super().train(mode)
        self.prior.eval()  # the frozen decoder never switches to training behaviour
        return self

    @torch.no_grad()
    def set_intensity_model(
        self, means: torch.Tensor | Sequence[float] | None, logvars: torch.Tensor | Sequence[float] | None = None
    ) -> None:
        """Overwrite the per-label intensity means and/or log-variances ((L,) or (L, C))."""
        for name, value in (("means", means), ("logvars", logvars)):
            if value is None:
                continue
            v = (
                torch.as_tensor(value, dtype=torch.float32)
                .reshape(self.num_labels, -1)
                .expand(self.num_labels, self.in_channels)
            )
            if not torch.isfinite(v).all():
                raise ValueError(f"intensity {name} must be finite; got {v.tolist()}")
            getattr(self, name).copy_(v)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters stage 2 optimises: the image encoder and the intensity model (never the prior)."""
        return [*self.image_encoder.parameters(), self.means, self.logvars]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.prior.image_size:
            raise ValueError(f"images must be (B, {self.in_channels}, *{self.prior.image_size}); got {tuple(x.shape)}")
        return self.image_encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.prior.decode(z)

    def forward(self, x: torch.Tensor, sample: bool | None = None) -> ImageSegmentationOutput:
        mu, logvar = self.encode(x)
        z = _reparameterize(mu, logvar) if (self.training if sample is None else sample) else mu
        return ImageSegmentationOutput(
            logits=self.decode(z),
            mu=mu,
            logvar=logvar,
            z=z,
            means=self.means,
            logvars=self.logvars.clamp(*LOGVAR_RANGE),
        )

    @torch.no_grad()
    def segment(self, x: torch.Tensor) -> torch.Tensor:
        """Label map (B, *spatial) = argmax of the decoder's output at ``z = μ(x)``."""
        return self.decode(self.encode(x)[0]).argmax(1)
