"""A VAE bottleneck with one global Gaussian code per sample (the VQ-Diff paper's VAE baseline)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from monai_genvq.losses.elbo import gaussian_kl
from monai_genvq.networks.bottlenecks.base import Bottleneck, BottleneckOutput

__all__ = ["GlobalGaussianBottleneck", "GLOBAL_KL_REDUCTIONS", "GLOBAL_EVAL_MODES"]

GLOBAL_KL_REDUCTIONS = ("batch_mean", "sum")
GLOBAL_EVAL_MODES = ("mean", "sample")
_OUTPUT_ACTIVATIONS = {"tanh": nn.Tanh, "none": nn.Identity}


class GlobalGaussianBottleneck(Bottleneck):
    """VAE bottleneck that squeezes the whole latent map into one ``latent_dim``-dimensional Gaussian code.

    Unlike :class:`~monai_genvq.networks.bottlenecks.GaussianBottleneck` (a Gaussian per latent
    position), this is the VAE of the VQ-Diff paper's released code (``VAELayer`` of
    ``run_experiments/models.py``, drewrl3v/diff-vq-vae): the (B, C, *spatial) encoder output passes
    through ``len(hidden_channels)`` stride-2 3×3 convolutions with ReLU, is flattened, and two linear
    layers give the mean and log-variance of a ``latent_dim`` code (20 in the released code). A linear
    layer and mirrored stride-2 transposed convolutions map the code back to (B, C, *spatial), ending in
    ``tanh`` as released. For the streamline network (C = 64, 16 × 16) the defaults are that layer:
    64 × 16 × 16 → 128 × 8 × 8 → 256 × 4 × 4 → 20.

    Loss: ``kl_weight`` × KL(q(z|x) ‖ N(0, I)) summed over the code's dimensions, then

    - ``kl_reduction="batch_mean"`` (default): averaged over the batch, so the balance against a
      batch-mean reconstruction loss does not depend on the batch size;
    - ``kl_reduction="sum"``: summed over the batch, literally as the released code does
      (``10e-8 * loss``, i.e. a weight of 1e-7 on the batch sum, with batch 256 and a batch-mean MSE). The
      released balance at another batch size B is therefore ``kl_weight = 1e-7 × 256`` with
      ``"batch_mean"`` (what ``bundles/streamlines_vqdiff/configs/vae_seed.json`` uses), or
      ``1e-7 × 256 / B`` with ``"sum"``.

    Evaluation: ``eval_mode="mean"`` (default) decodes the posterior mean, so reconstructions are
    deterministic; ``"sample"`` keeps drawing ``z = μ + σ·ε`` as the released code does (its
    ``reparameterize`` has no training switch), so its numbers vary with the noise seed.

    Args:
        spatial_dims: number of spatial dimensions of the latent map (1, 2 or 3).
        channels: channels C of the latent map (input and output).
        latent_size: spatial size of the latent map, e.g. ``(16, 16)``; every entry must be divisible by
            ``2 ** len(hidden_channels)``.
        latent_dim: dimension of the global Gaussian code (released code: 20).
        hidden_channels: channels after each stride-2 convolution (released code: ``(128, 256)``).
        kl_weight: weight of the KL term (see above).
        kl_reduction: ``"batch_mean"`` or ``"sum"`` (see above).
        eval_mode: ``"mean"`` or ``"sample"`` (see above).
        output_activation: ``"tanh"`` (released code) or ``"none"``.
        logvar_clamp: the log-variance is clamped to ±this for numerical safety.

    Raises:
        ValueError: an option outside its allowed values, or a latent size the downsampling cannot halve.

    Example:
        >>> bottleneck = GlobalGaussianBottleneck(spatial_dims=2, channels=64, latent_size=(16, 16)).eval()
        >>> out = bottleneck(torch.randn(2, 64, 16, 16))
        >>> out.latent.shape, out.mean.shape
        (torch.Size([2, 64, 16, 16]), torch.Size([2, 20]))
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        latent_size: Sequence[int],
        latent_dim: int = 20,
        hidden_channels: Sequence[int] = (128, 256),
        kl_weight: float = 2.56e-5,
        kl_reduction: str = "batch_mean",
        eval_mode: str = "mean",
        output_activation: str = "tanh",
        logvar_clamp: float = 10.0,
    ) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}.")
        latent_size = tuple(int(s) for s in latent_size)
        if len(latent_size) != spatial_dims:
            raise ValueError(f"latent_size needs {spatial_dims} entries (one per spatial dim), got {latent_size}.")
        if not hidden_channels:
            raise ValueError("hidden_channels needs at least one downsampling stage, e.g. (128, 256).")
        factor = 2 ** len(hidden_channels)
        if any(s % factor or s < factor for s in latent_size):
            raise ValueError(
                f"latent_size {latent_size} must be divisible by 2 ** len(hidden_channels) = {factor} "
                f"({len(hidden_channels)} stride-2 stages); use fewer hidden_channels."
            )
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}.")
        if kl_reduction not in GLOBAL_KL_REDUCTIONS:
            raise ValueError(f"kl_reduction must be one of {GLOBAL_KL_REDUCTIONS}, got {kl_reduction!r}.")
        if eval_mode not in GLOBAL_EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {GLOBAL_EVAL_MODES}, got {eval_mode!r}.")
        if output_activation not in _OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {tuple(_OUTPUT_ACTIVATIONS)}, got {output_activation!r}."
            )
        if kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}.")
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
        conv_t = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[spatial_dims]
        self.spatial_dims = spatial_dims
        self.channels = int(channels)
        self.latent_dim = int(latent_dim)
        self.kl_weight = float(kl_weight)
        self.kl_reduction = kl_reduction
        self.eval_mode = eval_mode
        self.logvar_clamp = float(logvar_clamp)
        self.latent_size = latent_size
        self.code_shape = (int(hidden_channels[-1]), *(s // factor for s in latent_size))
        flat = 1
        for s in self.code_shape:
            flat *= s

        down: list[nn.Module] = []
        prev = self.channels
        for ch in hidden_channels:
            down += [conv(prev, int(ch), kernel_size=3, stride=2, padding=1), nn.ReLU()]
            prev = int(ch)
        self.down = nn.Sequential(*down, nn.Flatten(1))
        self.to_mean = nn.Linear(flat, self.latent_dim)
        self.to_logvar = nn.Linear(flat, self.latent_dim)
        self.from_code = nn.Linear(self.latent_dim, flat)
        up: list[nn.Module] = []
        rev = [*list(hidden_channels)[::-1][1:], self.channels]
        for i, ch in enumerate(rev):
            up.append(conv_t(prev, int(ch), kernel_size=3, stride=2, padding=1, output_padding=1))
            up.append(nn.ReLU() if i < len(rev) - 1 else _OUTPUT_ACTIVATIONS[output_activation]())
            prev = int(ch)
        self.up = nn.Sequential(*up)

    def decode_code(self, code: torch.Tensor) -> torch.Tensor:
        """Map (B, latent_dim) codes to the (B, C, *latent_size) map the autoencoder's decoder consumes."""
        return self.up(self.from_code(code).reshape(code.shape[0], *self.code_shape))

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        if z.dim() != self.spatial_dims + 2 or z.shape[1] != self.channels or tuple(z.shape[2:]) != self.latent_size:
            raise ValueError(
                f"GlobalGaussianBottleneck expects (B, {self.channels}, *{self.latent_size}) latents, got "
                f"{tuple(z.shape)}; set channels/latent_size to the encoder's output."
            )
        hidden = self.down(z)
        mean = self.to_mean(hidden)
        logvar = self.to_logvar(hidden).clamp(-self.logvar_clamp, self.logvar_clamp)
        sample = self.training or self.eval_mode == "sample"
        code = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean
        kl = gaussian_kl(mean.float(), logvar.float(), "per_sample")  # float32 under AMP
        kl = kl.mean() if self.kl_reduction == "batch_mean" else kl.sum()
        return BottleneckOutput(latent=self.decode_code(code), loss=self.kl_weight * kl, mean=mean, logvar=logvar)
