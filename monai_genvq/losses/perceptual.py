"""Perceptual reconstruction term from a VGG network whose weights the user supplies as a local file.

Attri-SIVAE (Di Folco et al., appendix A and Table 2) reconstructs with "a combination of the MSE loss
and the perceptual loss weighted by the parameters δ" (δ = 50 / 100). Pretrained weights cannot be
downloaded at run time here, and :class:`monai.losses.PerceptualLoss` has no local-file argument for its
LPIPS networks (``"vgg"``, ``"alex"``, ``"squeeze"`` come from the ``lpips`` package, whose backbones
torchvision downloads; ``pretrained_path`` applies to ``"resnet50"`` only, and neither package is a
dependency of ours). :class:`VGGPerceptualLoss` therefore builds torchvision's VGG layer layout in plain
PyTorch and loads a state_dict from a file the user names; a missing or incompatible file is an error
naming the file, never a silent fallback to random weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from monai_genvq.losses.elbo import reconstruction_error

__all__ = [
    "VGG_LAYERS",
    "PerceptualReconstructionLoss",
    "VGGPerceptualLoss",
    "load_vgg_features_state_dict",
    "reconstruction_objective",
]

#: torchvision's ``vgg16`` / ``vgg19`` ``features`` configuration (numbers: 3x3 conv widths, "M": max pool).
_VGG_CFG: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
#: index in ``features`` of the ReLU after the last conv of each block (LPIPS' taps for VGG16: relu1_2 .. relu5_3).
VGG_LAYERS: dict[str, tuple[int, ...]] = {"vgg16": (3, 8, 15, 22, 29), "vgg19": (3, 8, 17, 26, 35)}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_DISTANCES = ("mse", "lpips")


def _vgg_features(network: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG_CFG[network]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(v)
    return nn.Sequential(*layers)


def _load_file(path: str | os.PathLike, option: str) -> Mapping[str, torch.Tensor]:
    if not str(path):
        raise ValueError(
            f"{option} is empty: the perceptual term needs a local weights file (pretrained weights are never "
            "downloaded); pass the path of a torchvision VGG state_dict, or set the perceptual weight to 0"
        )
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{option}: weights file '{path}' does not exist (pretrained weights are never downloaded; "
            "save a torchvision VGG state_dict there, or set the perceptual weight to 0)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported with its name
        raise ValueError(f"{option}: could not read '{path}' as a PyTorch state_dict ({err})") from err
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{option}: '{path}' holds a {type(state).__name__}, not a state_dict")
    return state


def load_vgg_features_state_dict(
    features: nn.Sequential, path: str | os.PathLike, option: str = "weights_path"
) -> None:
    """Load the conv weights of a torchvision VGG state_dict file into ``features`` (strictly).

    Accepts the keys of ``torchvision.models.vgg16().state_dict()`` (``features.<i>.weight``; the
    classifier is ignored), of ``vgg16().features.state_dict()`` (``<i>.weight``), or either under a
    ``"state_dict"`` entry. Only the layers ``features`` holds are loaded (it may be truncated).

    Args:
        features: the VGG ``features`` stack (possibly truncated).
        path: local ``.pt`` / ``.pth`` file.
        option: name of the option that gave ``path`` (named in errors).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: empty path, unreadable file, or missing / mis-shaped conv weights (the message names them).

    Example:
        >>> import tempfile
        >>> f = _vgg_features("vgg16")[:4]
        >>> p = os.path.join(tempfile.mkdtemp(), "vgg.pt")
        >>> torch.save({f"features.{k}": v for k, v in f.state_dict().items()}, p)
        >>> load_vgg_features_state_dict(f, p)
    """
    state = _load_file(path, option)
    stripped = {k[len("features.") :] if k.startswith("features.") else k: v for k, v in state.items()}
    wanted = features.state_dict()
    missing = [k for k in wanted if k not in stripped]
    if missing:
        raise ValueError(
            f"{option}: '{path}' lacks {len(missing)} VGG conv weights of this network (first: {missing[:3]}); "
            "expected torchvision VGG keys 'features.<i>.weight' / 'features.<i>.bias'"
        )
    bad = [k for k in wanted if tuple(stripped[k].shape) != tuple(wanted[k].shape)]
    if bad:
        k = bad[0]
        raise ValueError(
            f"{option}: '{path}' has {k} of shape {tuple(stripped[k].shape)}, expected {tuple(wanted[k].shape)} "
            "(a different VGG depth? see the network option)"
        )
    features.load_state_dict({k: stripped[k] for k in wanted})


class VGGPerceptualLoss(nn.Module):
    """Per-image perceptual distance between VGG features of two images, weights from a local file.

    The images (B, 1 or 3, H, W) in [0, 1] are repeated to 3 channels if grey, normalised with the
    ImageNet mean / std (the normalisation of torchvision's weights; LPIPS' scaling layer is the same
    map) and passed through the frozen VGG ``features`` up to the last tap in ``layers``. Distances:

    * ``"mse"``: Σ_layers mean over (C, H, W) of the squared feature difference (the perceptual loss of
      the Attri-SIVAE authors' code, ``iml-dl``'s ``PerceptualLoss``: ``F.mse_loss`` per layer, summed);
    * ``"lpips"``: Σ_layers mean over (H, W) of Σ_c w_c (f̂_a − f̂_b)², f̂ the features unit-normalised
      over channels (Zhang et al. 2018); w = 1 (LPIPS' "baseline") unless ``lpips_weights_path`` names the
      ``lpips`` package's linear-layer file (keys ``lin<k>.model.1.weight``).

    The network's parameters never receive gradients and it stays in eval mode; gradients flow to the
    inputs.

    Args:
        weights_path: local torchvision VGG state_dict (see :func:`load_vgg_features_state_dict`).
        network: ``"vgg16"`` or ``"vgg19"``.
        layers: indices in ``features`` of the tapped activations (default :data:`VGG_LAYERS`).
        distance: ``"mse"`` or ``"lpips"``.
        lpips_weights_path: optional LPIPS linear weights for ``distance="lpips"``.
        reduction: ``"none"`` (B,) or ``"mean"`` (scalar).

    Raises:
        FileNotFoundError / ValueError: a weights file is missing or does not fit (the message names it).

    Example:
        >>> import tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "vgg16.pt")
        >>> torch.save(_vgg_features("vgg16").state_dict(), p)   # a user's own (here random) weights
        >>> loss = VGGPerceptualLoss(p, layers=(3, 8))
        >>> x = torch.rand(2, 1, 32, 32)
        >>> loss(x, x).tolist()
        [0.0, 0.0]
    """

    def __init__(
        self,
        weights_path: str | os.PathLike,
        network: str = "vgg16",
        layers: Sequence[int] | None = None,
        distance: str = "mse",
        lpips_weights_path: str | os.PathLike | None = None,
        reduction: str = "none",
    ) -> None:
        super().__init__()
        if network not in _VGG_CFG:
            raise ValueError(f"network must be one of {sorted(_VGG_CFG)}; got {network!r}")
        if distance not in _DISTANCES:
            raise ValueError(f"distance must be one of {_DISTANCES}; got {distance!r}")
        if reduction not in ("none", "mean"):
            raise ValueError(f"reduction must be 'none' or 'mean'; got {reduction!r}")
        full = _vgg_features(network)
        self.layers = tuple(sorted(int(i) for i in (VGG_LAYERS[network] if layers is None else layers)))
        if not self.layers or self.layers[0] < 0 or self.layers[-1] >= len(full):
            raise ValueError(f"layers must index the {len(full)} modules of {network}.features; got {self.layers}")
        self.features = full[: self.layers[-1] + 1]
        load_vgg_features_state_dict(self.features, weights_path, "weights_path")
        self.network, self.distance, self.reduction = network, distance, reduction
        self.weights_path = str(weights_path)
        widths = [self.features[i - 1].out_channels for i in self.layers]  # the conv before each tapped ReLU
        self.lin = nn.ParameterList([nn.Parameter(torch.ones(1, c, 1, 1), requires_grad=False) for c in widths])
        if lpips_weights_path is not None and str(lpips_weights_path):
            if distance != "lpips":
                raise ValueError("lpips_weights_path is only used with distance='lpips'")
            state = _load_file(lpips_weights_path, "lpips_weights_path")
            for k, w in enumerate(self.lin):
                key = f"lin{k}.model.1.weight"
                if key not in state or tuple(state[key].shape) != tuple(w.shape):
                    got = tuple(state[key].shape) if key in state else "missing"
                    raise ValueError(
                        f"lpips_weights_path: '{lpips_weights_path}' {key} is {got}, expected {tuple(w.shape)}"
                    )
                w.data.copy_(state[key].float())
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGPerceptualLoss:  # always a frozen feature extractor
        return super().train(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"images must be (B, 1 or 3, H, W); got {tuple(x.shape)}")
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        taps, want = [], set(self.layers)
        for i, module in enumerate(self.features):
            x = module(x)
            if i in want:
                taps.append(x)
        return taps

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distance per image, (B,) (or its mean with ``reduction="mean"``)."""
        if input.shape != target.shape:
            raise ValueError(f"input and target shapes differ: {tuple(input.shape)} vs {tuple(target.shape)}")
        total = input.new_zeros(input.shape[0], dtype=torch.float32)
        for k, (fa, fb) in enumerate(zip(self._taps(input), self._taps(target))):
            if self.distance == "mse":
                total = total + (fa - fb).square().flatten(1).mean(1)
            else:
                fa = fa / (fa.square().sum(1, keepdim=True).sqrt() + 1e-10)
                fb = fb / (fb.square().sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + (self.lin[k] * (fa - fb).square()).sum(1).flatten(1).mean(1)
        return total.mean() if self.reduction == "mean" else total


class PerceptualReconstructionLoss(nn.Module):
    """Per-image reconstruction error ``mse_weight · rec(x, target) + δ · perceptual(x, target)``, shape (B,).

    ``rec`` is :func:`~monai_genvq.losses.reconstruction_error` (summed over pixels). Pass an instance
    as the ``reconstruction`` of :class:`~monai_genvq.engines.VAETrainer` or
    :class:`~monai_genvq.engines.SoftIntroTrainer`: every reconstruction error of the objective (for
    Soft-Intro also those of the re-encoded reconstructions and samples) then includes the perceptual term,
    as in the Attri-SIVAE authors' code. Attri-SIVAE Table 2: MSE with δ = 100 (Attri-SIVAE) / 50 (Soft-Intro
    VAE) on ACDC, δ = 100 on M&Ms; the authors' code also scales the MSE by 0.5 (``mse_weight``).

    Args:
        perceptual: module ``(x, target) -> (B,)``, e.g. :class:`VGGPerceptualLoss`.
        delta: weight δ of the perceptual term.
        kind: pixel term, ``"mse"`` or ``"bce"``.
        mse_weight: weight of the pixel term.

    Example:
        >>> l1 = lambda a, b: (a - b).abs().flatten(1).mean(1)
        >>> loss = PerceptualReconstructionLoss(l1, delta=100.0)
        >>> loss(torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)).tolist()
        [116.0, 116.0]
    """

    def __init__(self, perceptual: nn.Module, delta: float, kind: str = "mse", mse_weight: float = 1.0) -> None:
        super().__init__()
        if delta < 0 or mse_weight < 0:
            raise ValueError(f"delta and mse_weight must be >= 0; got {delta}, {mse_weight}")
        if kind not in ("mse", "bce"):
            raise ValueError(f"kind must be 'mse' or 'bce'; got {kind!r}")
        self.perceptual, self.delta, self.kind, self.mse_weight = perceptual, float(delta), kind, float(mse_weight)

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pixel = reconstruction_error(x, target, self.kind, "none")
        return self.mse_weight * pixel + self.delta * self.perceptual(x, target).reshape(-1)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, mse_weight={self.mse_weight}, delta={self.delta}"


def reconstruction_objective(
    kind: str = "bce",
    perceptual_delta: float = 0.0,
    perceptual_weights: str | os.PathLike = "",
    network: str = "vgg16",
    distance: str = "mse",
    mse_weight: float = 1.0,
    device: str | torch.device | None = None,
) -> str | PerceptualReconstructionLoss:
    """The ``reconstruction`` argument of the VAE trainers from bundle options (``perceptual_*``).

    ``perceptual_delta == 0``: the pixel term alone, returned as its name (``kind``; the weights file
    is then not read). Otherwise a :class:`PerceptualReconstructionLoss` around a
    :class:`VGGPerceptualLoss` loaded from ``perceptual_weights`` and moved to ``device``.

    Args:
        kind: ``"mse"`` or ``"bce"``.
        perceptual_delta: weight δ of the perceptual term (0: off).
        perceptual_weights: local torchvision VGG state_dict (required when δ > 0).
        network, distance: of :class:`VGGPerceptualLoss`.
        mse_weight: weight of the pixel term when the perceptual term is on (the authors' code: 0.5).
        device: where the VGG runs.

    Raises:
        ValueError / FileNotFoundError: δ > 0 without a usable weights file (the message names
            ``perceptual_weights`` and the file).

    Example:
        >>> reconstruction_objective("bce", 0.0)
        'bce'
    """
    if float(perceptual_delta) == 0.0:
        if kind not in ("mse", "bce"):
            raise ValueError(f"reconstruction must be 'mse' or 'bce'; got {kind!r}")
        return kind
    try:
        perceptual = VGGPerceptualLoss(perceptual_weights, network=network, distance=distance)
    except (FileNotFoundError, ValueError) as err:
        msg = str(err).replace("weights_path", "perceptual_weights", 1)
        raise type(err)(f"{msg} (perceptual_delta = {perceptual_delta})") from err
    loss = PerceptualReconstructionLoss(perceptual, float(perceptual_delta), kind, mse_weight)
    return loss.to(device) if device is not None else loss
