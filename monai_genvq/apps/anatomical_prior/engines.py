"""Trainers of the anatomical-prior VAE: stage 1 (label prior) and stage 2 (image model, frozen decoder).

References: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014; Dalca et al.,
"Anatomical Priors in Convolutional Networks for Unsupervised Biomedical Segmentation", CVPR 2018;
seed "Auto-Encoding Variational Bayes & Application to Biomedical Segmentation".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys
from torch.optim import Optimizer

from monai_genvq.apps.anatomical_prior.losses import (
    ImageModelLoss,
    LabelPriorLoss,
    gaussian_nll_latent,
    jensen_intensity_log_likelihood,
)
from monai_genvq.apps.anatomical_prior.networks import LOGVAR_RANGE, ImageSegmentationVAE, LabelPriorVAE
from monai_genvq.engines.distributed import broadcast_module, unwrap_module
from monai_genvq.engines.steps import LossTerms, autocast, check_finite_loss, optimizer_step
from monai_genvq.utils.precision import float32_region, to_float32

_HINT = "lower the learning rate, or check the inputs for NaN / intensities far outside [0, 1]."
__all__ = [
    "AnatomicalPriorInferer",
    "ImageModelTrainer",
    "LabelPriorTrainer",
    "PrepareImageBatch",
    "PrepareLabelBatch",
    "anatomical_prior_loss_terms",
    "atlas_intensity_init",
    "refine_latent",
    "render_from_prior",
]


#: ``output_transform`` of the terms both anatomical-prior trainers log.
anatomical_prior_loss_terms = LossTerms("loss", "nll", "kl", "pretrain_loss")


class PrepareLabelBatch:
    """``prepare_batch`` of stage 1: integer label maps (B, 1, *spatial) -> one-hot (B, L, *spatial).

    Args:
        num_labels: L, the declared label set is ``0..L-1``.
        label_key: batch key.

    Raises:
        ValueError: a label value outside ``0..L-1`` (names the values and the subjects if known).

    Example:
        >>> PrepareLabelBatch(3)({"label": torch.tensor([[[[0, 2]]]])})[0].shape
        torch.Size([1, 3, 1, 2])
    """

    def __init__(self, num_labels: int, label_key: str = "label") -> None:
        self.num_labels, self.label_key = int(num_labels), label_key

    def __call__(self, batchdata: dict[str, Any], device: Any = None, non_blocking: bool = False, **kwargs: Any):
        if self.label_key not in batchdata:
            raise KeyError(f"batch has no {self.label_key!r} entry (keys: {sorted(batchdata)})")
        lab = torch.as_tensor(batchdata[self.label_key])
        if lab.ndim < 3 or lab.shape[1] != 1:
            raise ValueError(f"label maps must be (B, 1, *spatial) integer maps; got shape {tuple(lab.shape)}")
        if lab.is_floating_point() and not torch.equal(lab, lab.round()):
            raise ValueError("label maps hold non-integer values; resample labels with nearest-neighbour interpolation")
        lab = lab.long()
        bad = torch.unique(lab[(lab < 0) | (lab >= self.num_labels)])
        if bad.numel():
            raise ValueError(
                f"label maps of {batchdata.get('subject', 'this batch')} hold values {bad.tolist()} outside the "
                f"declared label set 0..{self.num_labels - 1}"
            )
        lab = lab.to(device=device, non_blocking=non_blocking)  # the integer map travels, not its one-hot
        return F.one_hot(lab[:, 0], self.num_labels).movedim(-1, 1).float(), None


class PrepareImageBatch:
    """``prepare_batch`` of stage 2: the image only (labels, if the batch carries any, are never used).

    Example:
        >>> PrepareImageBatch()({"image": torch.zeros(2, 1, 4, 4)})[0].shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(self, image_key: str = "image") -> None:
        self.image_key = image_key

    def __call__(self, batchdata: dict[str, Any], device: Any = None, non_blocking: bool = False, **kwargs: Any):
        if self.image_key not in batchdata:
            raise KeyError(f"batch has no {self.image_key!r} entry (keys: {sorted(batchdata)})")
        x = torch.as_tensor(batchdata[self.image_key]).float()
        if not torch.isfinite(x).all():
            raise ValueError(f"images of {batchdata.get('subject', 'this batch')} hold NaN or inf")
        return x.to(device=device, non_blocking=non_blocking), None


class LabelPriorTrainer(SupervisedTrainer):
    """Stage 1: trains a :class:`LabelPriorVAE` on one-hot label maps (negative ELBO, categorical likelihood).

    Args:
        device, max_epochs, train_data_loader, network, optimizer: as :class:`monai.engines.SupervisedTrainer`.
        num_labels: the declared label set ``0..num_labels-1`` (checked on every batch).
        beta: KL weight.
        prepare_batch: default :class:`PrepareLabelBatch`.
        kwargs: other :class:`~monai.engines.SupervisedTrainer` arguments; with ``amp`` the VAE runs under
            ``torch.autocast`` and the ELBO is computed in float32.

    Example:
        >>> net = LabelPriorVAE(2, 3, 16, (4,), 2)
        >>> data = [{"label": torch.randint(0, 3, (2, 1, 16, 16))}]
        >>> LabelPriorTrainer("cpu", 1, data, net, torch.optim.Adam(net.parameters()), num_labels=3).run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: LabelPriorVAE,
        optimizer: Optimizer,
        num_labels: int | None = None,
        beta: float = 1.0,
        prepare_batch: Callable | None = None,
        decollate: bool = True,
        train_handlers: Sequence | None = None,
        **kwargs: Any,
    ) -> None:
        net_labels = unwrap_module(network).num_labels
        num_labels = net_labels if num_labels is None else int(num_labels)
        if num_labels != net_labels:
            raise ValueError(f"num_labels={num_labels} but the network has {net_labels} label channels")
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=LabelPriorLoss(beta),
            prepare_batch=prepare_batch or PrepareLabelBatch(num_labels),
            decollate=decollate,
            train_handlers=train_handlers,
            **kwargs,
        )

    def _iteration(self, engine: LabelPriorTrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        s, _ = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        engine.state.output = {Keys.IMAGE: s, Keys.LABEL: s}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine, s):
            out = engine.network(s)
        out = to_float32(out)  # the ELBO in float32
        engine.state.output[Keys.PRED] = out.logits
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        terms = engine.loss_function(out, s)
        check_finite_loss(
            engine, hint=_HINT, stage="label prior (stage 1)", loss=terms.loss, nll=terms.nll, kl=terms.kl
        )
        engine.state.output.update({Keys.LOSS: terms.loss, "nll": terms.nll.detach(), "kl": terms.kl.detach()})
        optimizer_step(engine, terms.loss)
        return engine.state.output


@torch.no_grad()
def atlas_intensity_init(
    network: ImageSegmentationVAE, loader: Iterable, prepare_batch: Callable, device: Any = None, max_batches: int = 50
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label-free initial intensity model: atlas-weighted means and variances over unlabelled images.

    The atlas is the frozen decoder's label distribution at the prior mean ``z = 0`` (which
    includes the location prior). ``m_l = Σ a_l(v) x(v) / Σ a_l(v)`` over voxels and images, and
    likewise the variance, as in atlas-initialised EM segmentation. Sets the network's intensity
    model and returns ``(means, logvars)``.
    """
    atlas = network.decode(torch.zeros(1, network.latent_dim, device=network.means.device)).softmax(1)  # (1, L, *S)
    L, C = network.means.shape
    s0, s1, s2 = torch.zeros(L, 1), torch.zeros(L, C), torch.zeros(L, C)
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        x, _ = prepare_batch(batch, device)
        x = x.to(atlas.device)
        w = atlas.expand(x.shape[0], *atlas.shape[1:]).flatten(2)  # (B, L, V)
        xv = x.flatten(2)  # (B, C, V)
        s0 += w.sum((0, 2)).cpu()[:, None]
        s1 += torch.einsum("blv,bcv->lc", w, xv).cpu()
        s2 += torch.einsum("blv,bcv->lc", w, xv.square()).cpu()
    if float(s0.min()) <= 0:
        raise ValueError("atlas intensity initialisation saw no images (empty loader)")
    means = s1 / s0
    var = (s2 / s0 - means.square()).clamp_min(1e-4)
    network.set_intensity_model(means, var.log())
    return means, var.log()


@torch.no_grad()
def render_from_prior(network: ImageSegmentationVAE, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic (image, latent) pairs from the frozen prior: z ~ N(0, I), s ~ p(s|z), x ~ N(m_s, σ_s²).

    Used to pre-train the image encoder (its target is the z that generated the image).
    """
    device = network.means.device
    z = torch.randn(n, network.latent_dim, device=device)
    probs = network.decode(z).softmax(1)  # (n, L, *S)
    s = torch.distributions.Categorical(probs=probs.movedim(1, -1)).sample()  # (n, *S)
    means, std = network.means, torch.exp(0.5 * network.logvars.clamp(*LOGVAR_RANGE))  # (L, C)
    x = means[s].movedim(-1, 1) + std[s].movedim(-1, 1) * torch.randn(
        n, network.in_channels, *s.shape[1:], device=device
    )
    return x, z


class ImageModelTrainer(SupervisedTrainer):
    """Stage 2: trains the image encoder and intensity model of an :class:`ImageSegmentationVAE`; the decoder stays frozen.

    Loss: the negative Jensen ELBO (:class:`~monai_genvq.apps.anatomical_prior.ImageModelLoss`). Before the first
    iteration the intensity model is initialised label-free from the atlas (:func:`atlas_intensity_init`,
    ``init_intensity=True``). The first ``pretrain_iterations`` iterations pre-train the image
    encoder on images rendered from the frozen prior (:func:`render_from_prior`): the encoder learns
    to map a rendered image to the latent that generated it (−log q(z|x)), which puts it in the
    region of latent space the decoder knows before the Jensen bound takes over (the seed's
    pre-training; no labels of the stage-2 subjects are used). The optimizer must hold only
    :meth:`ImageSegmentationVAE.trainable_parameters`; a check refuses prior parameters.

    Args:
        device, max_epochs, train_data_loader, network, optimizer: as :class:`monai.engines.SupervisedTrainer`.
        beta: KL weight.
        pretrain_iterations: iterations of encoder pre-training on prior renders.
        init_intensity: initialise the intensity model from the atlas at start.
        prepare_batch: default :class:`PrepareImageBatch`.
        kwargs: other :class:`~monai.engines.SupervisedTrainer` arguments; with ``amp`` the image encoder and
            the frozen decoder run under ``torch.autocast``; the atlas initialisation, the prior renders and
            every loss term are float32.

    Example:
        >>> net = ImageSegmentationVAE(LabelPriorVAE(2, 3, 16, (4,), 2))
        >>> data = [{"image": torch.rand(2, 1, 16, 16)}]
        >>> ImageModelTrainer("cpu", 2, data, net, torch.optim.Adam(net.trainable_parameters()), pretrain_iterations=1).run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: ImageSegmentationVAE,
        optimizer: Optimizer,
        beta: float = 1.0,
        pretrain_iterations: int = 0,
        init_intensity: bool = True,
        prepare_batch: Callable | None = None,
        decollate: bool = True,
        train_handlers: Sequence | None = None,
        **kwargs: Any,
    ) -> None:
        frozen = {id(p) for p in unwrap_module(network).prior.parameters()}
        if any(id(p) in frozen for g in optimizer.param_groups for p in g["params"]):
            raise ValueError(
                "the stage-2 optimizer holds parameters of the frozen prior; pass network.trainable_parameters()"
            )
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=ImageModelLoss(beta),
            prepare_batch=prepare_batch or PrepareImageBatch(),
            decollate=decollate,
            train_handlers=train_handlers,
            **kwargs,
        )
        self.pretrain_iterations = int(pretrain_iterations)
        if init_intensity:
            self.add_event_handler(Events.STARTED, self._init_intensity)

    def _init_intensity(self, engine: ImageModelTrainer) -> None:
        if engine.state.iteration == 0:  # not when resuming from a checkpoint
            atlas_intensity_init(
                unwrap_module(engine.network), engine.data_loader, engine.prepare_batch, engine.state.device
            )
            broadcast_module(engine.network)  # multi-process: every rank starts from rank 0's atlas

    def _iteration(self, engine: ImageModelTrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        x, _ = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        engine.state.output = {Keys.IMAGE: x, Keys.LABEL: None}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        if engine.state.iteration <= engine.pretrain_iterations:
            x_syn, z_syn = render_from_prior(unwrap_module(engine.network), x.shape[0])
            with autocast(engine, x):
                mu, logvar = unwrap_module(engine.network).encode(x_syn)
            loss = gaussian_nll_latent(z_syn, *to_float32((mu, logvar))).mean()
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            check_finite_loss(engine, hint=_HINT, stage="image-encoder pre-training (stage 2)", pretrain_loss=loss)
            engine.state.output.update({Keys.LOSS: loss, "pretrain_loss": loss.detach()})
        else:
            with autocast(engine, x):
                out = engine.network(x)
            out = to_float32(out)  # the Jensen bound (log-sum-exp over labels) in float32
            engine.state.output[Keys.PRED] = out.logits
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            terms = engine.loss_function(out, x)
            loss = terms.loss
            check_finite_loss(
                engine, hint=_HINT, stage="image model (stage 2)", loss=terms.loss, nll=terms.nll, kl=terms.kl
            )
            engine.state.output.update({Keys.LOSS: loss, "nll": terms.nll.detach(), "kl": terms.kl.detach()})
        optimizer_step(engine, loss)
        return engine.state.output


@float32_region
def refine_latent(
    network: ImageSegmentationVAE,
    x: torch.Tensor,
    z0: torch.Tensor,
    steps: int = 50,
    restarts: int = 0,
    lr: float = 0.05,
    seed: int = 0,
) -> torch.Tensor:
    """MAP refinement of the latent of each image: ``argmax_z J(x, z) − ||z||²/2`` by Adam from ``z0`` (and random starts).

    ``J`` is the Jensen bound of the image likelihood (:func:`~monai_genvq.apps.anatomical_prior.jensen_intensity_log_likelihood`)
    under the frozen decoder and the learnt intensity model; ``−||z||²/2`` is log N(z; 0, I) up to a
    constant. Starting from the amortised ``z0 = μ(x)`` this closes part of the amortisation gap
    (semi-amortised inference); ``restarts`` extra starts drawn from N(0, I) let it leave a wrong
    mode (e.g. a wrong pose); the start with the highest final objective wins. No labels are used.
    It runs in float32 even under AMP (autocast off): it follows the objective's gradient for many
    small steps, which half-precision decodes would blur.

    Returns:
        (B, latent_dim) refined latents.
    """
    if steps <= 0:
        return z0
    b, r = z0.shape[0], 1 + int(restarts)
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    extra = torch.randn(b, r - 1, z0.shape[1], generator=g).to(z0) if r > 1 else z0.new_zeros(b, 0, z0.shape[1])
    z = torch.cat([z0.detach()[:, None], extra], 1).flatten(0, 1)
    xr = x.detach().repeat_interleave(r, 0)
    means, logvars = network.means.detach(), network.logvars.detach().clamp(*LOGVAR_RANGE)

    def objective(zz: torch.Tensor) -> torch.Tensor:
        return jensen_intensity_log_likelihood(network.decode(zz), xr, means, logvars) - 0.5 * zz.square().sum(1)

    with torch.enable_grad():
        z = z.requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(int(steps)):
            opt.zero_grad()
            (-objective(z).sum()).backward()
            opt.step()
    with torch.no_grad():
        best = objective(z).view(b, r).argmax(1)
    return z.detach().view(b, r, -1)[torch.arange(b, device=z.device), best]


class AnatomicalPriorInferer(Inferer):
    """Returns the segmentation logits of an :class:`ImageSegmentationVAE` as a tensor (evaluators, MONAI Label).

    ``mode="posterior_mean"``: ``log p(s | z = μ(x))`` (the model's segmentation of ``x``; with
    ``refine_steps > 0`` the latent is first refined by :func:`refine_latent`);
    ``mode="prior_mean"``: the decoder at ``z = 0`` for every image (the mean shape, which ignores
    the image: a reference showing what the prior alone gives).

    Args:
        mode: ``"posterior_mean"`` or ``"prior_mean"``.
        refine_steps, refine_restarts, refine_lr: :func:`refine_latent` settings (0 steps: the seed's μ(x)).

    Example:
        >>> net = ImageSegmentationVAE(LabelPriorVAE(2, 3, 16, (4,), 2))
        >>> AnatomicalPriorInferer()(torch.rand(2, 1, 16, 16), net).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self, mode: str = "posterior_mean", refine_steps: int = 0, refine_restarts: int = 0, refine_lr: float = 0.05
    ) -> None:
        if mode not in ("posterior_mean", "prior_mean"):
            raise ValueError(f"mode must be 'posterior_mean' or 'prior_mean'; got {mode!r}")
        self.mode, self.refine_steps, self.refine_restarts, self.refine_lr = (
            mode,
            int(refine_steps),
            int(refine_restarts),
            float(refine_lr),
        )

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        mu, _ = network.encode(inputs)
        if self.mode == "prior_mean":
            mu = torch.zeros_like(mu)
        elif self.refine_steps > 0:
            mu = refine_latent(
                network,
                inputs.as_tensor() if hasattr(inputs, "as_tensor") else inputs,
                mu,
                self.refine_steps,
                self.refine_restarts,
                self.refine_lr,
            )
        return to_float32(network.decode(mu))
