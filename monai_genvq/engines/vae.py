"""Engines for flat-latent VAEs: β-VAE / Attri-VAE trainer, Soft-Intro (Attri-SIVAE) trainer, evaluator."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer, Trainer
from monai.engines.utils import IterationEvents, default_metric_cmp_fn
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys
from torch import nn
from torch.optim import Optimizer

from monai_genvq.engines.distributed import unwrap_module
from monai_genvq.engines.steps import LossTerms, autocast, backward_step, check_finite_loss, optimizer_step
from monai_genvq.losses.elbo import gaussian_kl, reconstruction_error
from monai_genvq.utils.precision import to_float32

_HINT = "lower the learning rate or beta_neg, or check the inputs for NaN."

__all__ = [
    "PrepareVAEBatch",
    "SoftIntroTrainer",
    "VAEEvaluator",
    "VAEReconstructionInferer",
    "VAETrainer",
    "vae_loss_terms",
]


class PrepareVAEBatch:
    """``prepare_batch`` for VAEs: returns ``(image, attributes)``; attributes are None when absent.

    Args:
        image_key: batch key of the image.
        attribute_key: batch key of the (B, K) attributes.

    Example:
        >>> PrepareVAEBatch()({"image": torch.zeros(2, 1, 8, 8), "attributes": torch.ones(2, 3)})[1].shape
        torch.Size([2, 3])
    """

    def __init__(self, image_key: str = "image", attribute_key: str | None = "attributes") -> None:
        self.image_key, self.attribute_key = image_key, attribute_key

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.image_key not in batchdata:
            raise KeyError(f"batch has no {self.image_key!r} entry (keys: {sorted(batchdata)})")
        x = torch.as_tensor(batchdata[self.image_key]).to(device=device, non_blocking=non_blocking, **kwargs).float()
        attrs = batchdata.get(self.attribute_key) if self.attribute_key else None
        if attrs is not None:
            attrs = torch.as_tensor(attrs).to(device=device, non_blocking=non_blocking).float()
        return x, attrs


class VAEReconstructionInferer(Inferer):
    """Returns the deterministic reconstruction (decode(μ)) of a flat-latent VAE as a tensor (for MONAI Label)."""

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        return to_float32(network(inputs, sample=False).reconstruction)


#: ``output_transform`` of the terms the VAE and Soft-Intro trainers log.
vae_loss_terms = LossTerms(
    "loss", "rec_loss", "kl", "attr_loss", "loss_e", "loss_d", "expelbo_rec", "expelbo_fake", "kl_fake"
)


def _attr_loss(attribute_loss: Callable | None, z: torch.Tensor, attrs: torch.Tensor | None) -> torch.Tensor | None:
    if attribute_loss is None:
        return None
    if attrs is None:
        raise ValueError("an attribute loss is configured but the batch holds no attributes")
    return attribute_loss(z, attrs)


class VAETrainer(SupervisedTrainer):
    """β-VAE / Attri-VAE trainer: ``loss = rec + β·KL + attribute_loss(z, attributes)``.

    ``rec`` is the per-sample sum over voxels of the squared error (or BCE), averaged over the
    batch; KL is to N(0, I). With ``attribute_loss=None`` this is the β-VAE (Higgins et al. 2017),
    with an :class:`~monai_genvq.losses.AttributeRegularizationLoss` (γ = 10, δ = 10) it is
    Attri-VAE (Cetin et al. 2023). A non-finite loss stops training with a message naming the terms.

    Args:
        device, max_epochs, train_data_loader, network, optimizer: as :class:`monai.engines.SupervisedTrainer`.
        beta: KL weight β.
        attribute_loss: callable ``(z, attributes) -> scalar`` or None.
        reconstruction: ``"mse"`` or ``"bce"``.
        prepare_batch: returns ``(image, attributes)``; default :class:`PrepareVAEBatch`.
        kwargs: other :class:`~monai.engines.SupervisedTrainer` arguments; with ``amp`` the network runs under
            ``torch.autocast`` and the ELBO terms are computed in float32.

    Example:
        >>> from monai_genvq.networks import ConvVAE
        >>> net = ConvVAE(image_size=32, channels=(8, 8))
        >>> data = [{"image": torch.rand(4, 1, 32, 32), "attributes": torch.randn(4, 3)}]
        >>> VAETrainer("cpu", 1, data, net, torch.optim.Adam(net.parameters())).run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: nn.Module,
        optimizer: Optimizer,
        beta: float = 2.0,
        attribute_loss: Callable | None = None,
        reconstruction: str = "mse",
        prepare_batch: Callable = PrepareVAEBatch(),
        decollate: bool = True,
        train_handlers: Sequence | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=None,
            prepare_batch=prepare_batch,
            decollate=decollate,
            train_handlers=train_handlers,
            **kwargs,
        )
        self.beta, self.attribute_loss, self.reconstruction = float(beta), attribute_loss, reconstruction

    def _iteration(self, engine: VAETrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        x, attrs = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        engine.state.output = {Keys.IMAGE: x, Keys.LABEL: x, "attributes": attrs}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine, x):
            out = engine.network(x)
        out = to_float32(out)  # the ELBO terms in float32
        engine.state.output[Keys.PRED] = out.reconstruction
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        rec = reconstruction_error(out.reconstruction, x, engine.reconstruction)
        kl = gaussian_kl(out.mu, out.logvar)
        attr = _attr_loss(engine.attribute_loss, out.z, attrs)
        loss = rec + engine.beta * kl + (attr if attr is not None else 0.0)
        check_finite_loss(engine, hint=_HINT, loss=loss, rec_loss=rec, kl=kl, attr_loss=attr)
        engine.state.output.update(
            {
                Keys.LOSS: loss,
                "rec_loss": rec.detach(),
                "kl": kl.detach(),
                "attr_loss": None if attr is None else attr.detach(),
            }
        )
        optimizer_step(engine, loss)
        return engine.state.output


class SoftIntroTrainer(Trainer):
    """Soft-Intro VAE trainer (Daniel & Tamar, CVPR 2021, Algorithm 1), with the Attri-SIVAE attribute loss.

    Each iteration makes one encoder step and one decoder step with their own optimizers
    (``s = 1 / (C·H·W)``, reconstruction errors summed over voxels per sample, KL summed over dims):

    * encoder: ``L_E = s(β_rec·rec(x) + β_kl·KL(x)) + ¼·[mean exp(−2s(β_rec·rec(x̂_r) + β_neg·KL(x̂_r)))
      + mean exp(−2s(β_rec·rec(x̂_f) + β_neg·KL(x̂_f)))] + attribute_loss(z, a)`` where
      ``x̂_r = D(z)`` and ``x̂_f = D(ξ), ξ ~ N(0, I)`` are **detached** before re-encoding (the
      exp-ELBO terms push the encoder to give generated images a low ELBO); Attri-SIVAE adds the
      attribute-regularisation loss γ to this encoder objective;
    * decoder (encoder frozen): ``L_D = s(β_rec·rec(x | D(z.detach())) + ½β_kl·(KL(x̂_r) + KL(x̂_f))
      + ½γ_r·β_rec·(rec(x̂_r.detach() | D(z_r.detach())) + rec(x̂_f.detach() | D(z_f.detach()))))``.

    A non-finite loss stops training with a message naming the terms (typical cause: β_neg too
    small for the image size, or a learning rate too high).

    Args:
        device: device to run on.
        max_epochs: epochs.
        train_data_loader: loader of dicts with the image (and attributes).
        network: a :class:`~monai_genvq.networks.FlatLatentVAE` (``encoder``/``decoder``/``encode``/``decode``).
        optimizer_e: optimizer of ``network.encoder`` parameters.
        optimizer_d: optimizer of ``network.decoder`` parameters.
        beta_kl, beta_rec, beta_neg: Soft-Intro weights (β_neg ≥ β_kl; the paper scales β_neg with image size).
        gamma_r: weight of the decoder's reconstruction-of-reconstruction term (1e-8 in the official code).
        attribute_loss: callable ``(z, attributes) -> scalar`` added to the encoder loss, or None.
        reconstruction: ``"mse"`` or ``"bce"``.
        prepare_batch: returns ``(image, attributes)``.
        epoch_length, non_blocking, iteration_update, postprocessing, key_train_metric,
        additional_metrics, metric_cmp_fn, train_handlers, decollate, optim_set_to_none, to_kwargs,
        amp_kwargs: as :class:`monai.engines.SupervisedTrainer`.
        amp: run the encoder and decoder passes under ``torch.autocast`` on the batch's device (float16 with
            a ``GradScaler`` on CUDA, bfloat16 on CPU); every loss term (reconstruction errors, KL, the
            exp-ELBO terms) is computed in float32.

    Example:
        >>> from monai_genvq.networks import SoftIntroResNetVAE
        >>> net = SoftIntroResNetVAE(image_size=32, channels=(8, 16), latent_dim=8)
        >>> data = [{"image": torch.rand(4, 1, 32, 32)}]
        >>> SoftIntroTrainer("cpu", 1, data, net, torch.optim.Adam(net.encoder.parameters(), 2e-4),
        ...                  torch.optim.Adam(net.decoder.parameters(), 2e-4)).run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: nn.Module,
        optimizer_e: Optimizer,
        optimizer_d: Optimizer,
        beta_kl: float = 1.0,
        beta_rec: float = 1.0,
        beta_neg: float = 256.0,
        gamma_r: float = 1e-8,
        attribute_loss: Callable | None = None,
        reconstruction: str = "mse",
        prepare_batch: Callable = PrepareVAEBatch(),
        epoch_length: int | None = None,
        non_blocking: bool = False,
        iteration_update: Callable | None = None,
        postprocessing: Callable | None = None,
        key_train_metric: dict | None = None,
        additional_metrics: dict | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        train_handlers: Sequence | None = None,
        decollate: bool = True,
        optim_set_to_none: bool = False,
        to_kwargs: dict | None = None,
        amp: bool = False,
        amp_kwargs: dict | None = None,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_batch,
            iteration_update=iteration_update,
            postprocessing=postprocessing,
            key_metric=key_train_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            handlers=train_handlers,
            decollate=decollate,
            amp=amp,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )
        for name in ("encoder", "decoder"):
            if not isinstance(getattr(unwrap_module(network), name, None), nn.Module):
                raise TypeError(f"SoftIntroTrainer needs a network with an '{name}' module (e.g. SoftIntroResNetVAE)")
        if beta_neg <= 0 or beta_kl < 0 or beta_rec <= 0:
            raise ValueError(f"need beta_rec > 0, beta_kl >= 0, beta_neg > 0; got {beta_rec}, {beta_kl}, {beta_neg}")
        self.network, self.optimizer_e, self.optimizer_d = network, optimizer_e, optimizer_d
        self.optimizer = optimizer_e  # for handlers that expect `engine.optimizer` (e.g. LR printing)
        self.beta_kl, self.beta_rec, self.beta_neg, self.gamma_r = (
            float(beta_kl),
            float(beta_rec),
            float(beta_neg),
            float(gamma_r),
        )
        self.attribute_loss, self.reconstruction = attribute_loss, reconstruction
        self.optim_set_to_none = optim_set_to_none

    @staticmethod
    def _freeze(module: nn.Module, frozen: bool) -> None:
        for p in module.parameters():
            p.requires_grad_(not frozen)

    def _iteration(self, engine: SoftIntroTrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        x, attrs = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        net, kind = unwrap_module(engine.network), engine.reconstruction
        scale = 1.0 / float(x[0].numel())
        b_kl, b_rec, b_neg = engine.beta_kl, engine.beta_rec, engine.beta_neg
        engine.state.output = {Keys.IMAGE: x, Keys.LABEL: x, "attributes": attrs}
        net.train()
        noise = torch.randn(x.shape[0], net.latent_dim, device=x.device)

        # ---- encoder step (networks under the engine's AMP region; every loss term in float32)
        engine._freeze(net.encoder, False)
        engine._freeze(net.decoder, True)
        with autocast(engine, x):
            mu, logvar = net.encode(x)
            z = net.reparameterize(mu, logvar)
            rec = net.decode(z)
            fake = net.decode(noise)
            mu_r, logvar_r = net.encode(rec.detach())
            mu_f, logvar_f = net.encode(fake.detach())
            rec_rec = net.decode(net.reparameterize(mu_r, logvar_r))
            rec_fake = net.decode(net.reparameterize(mu_f, logvar_f))
        mu, logvar, z, rec, fake, mu_r, logvar_r, mu_f, logvar_f, rec_rec, rec_fake = to_float32(
            (mu, logvar, z, rec, fake, mu_r, logvar_r, mu_f, logvar_f, rec_rec, rec_fake)
        )
        engine.state.output[Keys.PRED] = rec
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        rec_loss = reconstruction_error(rec, x, kind)
        kl_real = gaussian_kl(mu, logvar)
        elbo_r = b_rec * reconstruction_error(rec_rec, rec.detach(), kind, "none") + b_neg * gaussian_kl(
            mu_r, logvar_r, "per_sample"
        )
        elbo_f = b_rec * reconstruction_error(rec_fake, fake.detach(), kind, "none") + b_neg * gaussian_kl(
            mu_f, logvar_f, "per_sample"
        )
        expelbo_rec = torch.exp(-2.0 * scale * elbo_r).mean()
        expelbo_fake = torch.exp(-2.0 * scale * elbo_f).mean()
        attr = _attr_loss(engine.attribute_loss, z, attrs)
        loss_e = scale * (b_rec * rec_loss + b_kl * kl_real) + 0.25 * (expelbo_rec + expelbo_fake)
        if attr is not None:
            loss_e = loss_e + attr
        check_finite_loss(engine, hint=_HINT, loss_e=loss_e, rec_loss=rec_loss, kl=kl_real, attr_loss=attr)
        engine.optimizer_e.zero_grad(set_to_none=engine.optim_set_to_none)
        backward_step(engine, loss_e, engine.optimizer_e, fire_backward=False)

        # ---- decoder step (encoder frozen)
        engine._freeze(net.encoder, True)
        engine._freeze(net.decoder, False)
        with autocast(engine, x):
            fake = net.decode(noise)
            rec = net.decode(z.detach())
            mu_r, logvar_r = net.encode(rec)
            mu_f, logvar_f = net.encode(fake)
            rec_rec = net.decode(net.reparameterize(mu_r, logvar_r).detach())
            rec_fake = net.decode(net.reparameterize(mu_f, logvar_f).detach())
        fake, rec, mu_r, logvar_r, mu_f, logvar_f, rec_rec, rec_fake = to_float32(
            (fake, rec, mu_r, logvar_r, mu_f, logvar_f, rec_rec, rec_fake)
        )
        rec_loss_d = reconstruction_error(rec, x, kind)
        kl_rec, kl_fake = gaussian_kl(mu_r, logvar_r), gaussian_kl(mu_f, logvar_f)
        rr = reconstruction_error(rec_rec, rec.detach(), kind) + reconstruction_error(rec_fake, fake.detach(), kind)
        loss_d = scale * (b_rec * rec_loss_d + 0.5 * b_kl * (kl_rec + kl_fake) + 0.5 * engine.gamma_r * b_rec * rr)
        check_finite_loss(engine, hint=_HINT, loss_d=loss_d, kl_fake=kl_fake)
        engine.state.output.update(
            {
                Keys.LOSS: (loss_e + loss_d).detach(),
                "loss_e": loss_e.detach(),
                "loss_d": loss_d.detach(),
                "rec_loss": rec_loss.detach(),
                "kl": kl_real.detach(),
                "kl_fake": kl_fake.detach(),
                "expelbo_rec": expelbo_rec.detach(),
                "expelbo_fake": expelbo_fake.detach(),
                "attr_loss": None if attr is None else attr.detach(),
            }
        )
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine.optimizer_d.zero_grad(set_to_none=engine.optim_set_to_none)
        backward_step(engine, loss_d, engine.optimizer_d)
        engine._freeze(net.encoder, False)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


class VAEEvaluator(SupervisedEvaluator):
    """Evaluator for flat-latent VAEs: output holds ``pred`` = decode(μ), ``label`` = input,
    ``latent`` = μ (posterior mean) and ``attributes``, so SSIM and disentanglement handlers can
    run on the same pass.

    Same arguments as :class:`monai.engines.SupervisedEvaluator`; ``prepare_batch`` returns
    ``(image, attributes)`` (default :class:`PrepareVAEBatch`). With ``amp`` the network runs under
    ``torch.autocast`` on the batch's device; ``pred`` and ``latent`` are float32.

    Example:
        >>> evaluator = VAEEvaluator("cpu", loader, net, key_val_metric={"val_ssim": ...})  # doctest: +SKIP
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader: Iterable,
        network: nn.Module,
        prepare_batch: Callable = PrepareVAEBatch(),
        decollate: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            device=device,
            val_data_loader=val_data_loader,
            network=network,
            prepare_batch=prepare_batch,
            decollate=decollate,
            **kwargs,
        )

    def _iteration(self, engine: VAEEvaluator, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        x, attrs = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        engine.state.output = {Keys.IMAGE: x, Keys.LABEL: x, "attributes": attrs}
        engine.network.eval()
        with torch.no_grad(), autocast(engine, x):
            out = engine.network(x, sample=False)
        out = to_float32(out)
        engine.state.output.update({Keys.PRED: out.reconstruction, "latent": out.mu})
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
