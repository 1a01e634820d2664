"""Trainer of the hyperbolic VAE on (parent, child, negative) patch triplets (Hsu et al. 2021)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys
from torch.optim import Optimizer

from monai_genvq.apps.hyperbolic.losses import hierarchical_triplet_loss, reconstruction_nll
from monai_genvq.apps.hyperbolic.triplets import TRIPLET_KEYS
from monai_genvq.engines.distributed import unwrap_module
from monai_genvq.engines.steps import LossTerms, autocast, check_finite_loss, optimizer_step
from monai_genvq.utils.compile import CompiledForward
from monai_genvq.utils.precision import to_float32

__all__ = ["HyperbolicVAETrainer", "hyperbolic_loss_terms"]


#: ``output_transform`` of the terms a :class:`HyperbolicVAETrainer` logs.
hyperbolic_loss_terms = LossTerms("loss", "rec_loss", "kl", "triplet")


class HyperbolicVAETrainer(SupervisedTrainer):
    """ELBO + β·hierarchical triplet loss on batches of patch triplets.

    Each batch is a dict with ``parent``, ``child`` and ``negative`` tensors (B, C, N, N, N) (from
    :class:`~monai_genvq.apps.hyperbolic.TripletPatchSamplerd`). All 3B patches go through the VAE; the
    loss is ``mean(NLL + kl_weight·KL) + triplet_weight·triplet(μ_parent, μ_child, μ_negative)``.
    The iteration output holds ``loss``, ``rec_loss``, ``kl``, ``triplet``, ``pred`` and ``image``
    and MONAI's iteration events are fired. A non-finite loss stops training with an error.

    The defaults are the hierarchical-toy bundle's (``bundles/hyperbolic_toy_seg/configs/train.json``;
    ``tests/test_hyperbolic_math.py`` checks they agree).

    Args:
        device, max_epochs, train_data_loader, network, optimizer: as :class:`monai.engines.SupervisedTrainer`.
        kl_weight: weight of the KL term; 0.1, the bundles' value (with the Gaussian likelihood of σ
            ``likelihood_scale`` = 0.1). The Gaussian NLL is 1/σ² times a unit-variance one, so the KL's
            weight relative to the NLL in the units of Hsu et al.'s released code (unit-variance likelihood,
            KL weight 1) is ``kl_weight * likelihood_scale**2``: 0.001 with the defaults, 1/1000 of the
            released code's balance. The bundles state this balance explicitly (their ``kl_balance``
            option, from which they derive ``kl_weight``). The released code's objective as a whole
            (``likelihood_scale`` 1, ``kl_weight`` 1) lets the triplet term dominate (measured in the toy
            bundle's docs).
        triplet_weight: β of the triplet term (0 disables it: the "no triplet" ablation), per patch: the
            loss is a mean over the batch's patches. The NLL is summed over the patch's voxels (10³ by
            default), so the default β = 10³ puts the triplet term on the ELBO's scale; with β = 1 it is
            ~10⁻⁴ of the loss and does nothing. Hsu et al.'s command line also says 10³, but their code
            averages the triplet term over the batch of 128 and sums the ELBO over it, so per patch their
            weight is 10³ / 128 ≈ 7.8.
        margin: triplet margin.
        squared_triplet: compare squared distances in the triplet loss (Hsu et al.'s released code).
        likelihood: "gaussian" or "bernoulli".
        likelihood_scale: σ of the Gaussian likelihood.
        compile: run the network's forward pass through ``torch.compile`` (MONAI's ``SupervisedTrainer`` option,
            here through :class:`~monai_genvq.utils.CompiledForward`: ``engine.network`` stays the eager module,
            so checkpoints keep their keys, and a compilation failure warns and trains eagerly). Off by
            default: on the 2-core CPU a step (32 triplets) ran 0.5-1.5x as fast but compiling took about
            two minutes, more than a default run saves (``benchmarks/bench_brats_case.py``).
        compile_kwargs: ``torch.compile`` arguments (``mode``, ``backend`` …) when ``compile`` is on.
        kwargs: further :class:`SupervisedTrainer` arguments (handlers, epoch_length, amp …). With ``amp`` the
            VAE's convolutions run under ``torch.autocast``; the Poincaré-ball maps, densities and gyroplane
            distances stay float32 (:func:`~monai_genvq.utils.float32_region`), and so do the loss terms.

    Example:
        >>> from monai_genvq.apps.hyperbolic import HyperbolicVAE
        >>> net = HyperbolicVAE(patch_size=10, latent_dim=2)
        >>> batch = {k: torch.rand(4, 1, 10, 10, 10) for k in ("parent", "child", "negative")}
        >>> trainer = HyperbolicVAETrainer(torch.device("cpu"), 1, [batch], net, torch.optim.Adam(net.parameters()))
        >>> trainer.run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: torch.nn.Module,
        optimizer: Optimizer,
        kl_weight: float = 0.1,
        triplet_weight: float = 1000.0,
        margin: float = 0.1,
        squared_triplet: bool = False,
        likelihood: str = "gaussian",
        likelihood_scale: float = 0.1,
        train_handlers: Sequence | None = None,
        compile: bool = False,
        compile_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("loss_function", torch.nn.Identity())
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            train_handlers=train_handlers,
            **kwargs,
        )
        self.kl_weight, self.triplet_weight, self.margin = kl_weight, triplet_weight, margin
        self.squared_triplet = squared_triplet
        self.likelihood, self.likelihood_scale = likelihood, likelihood_scale
        self.forward_network = CompiledForward(self.network, compile, "hyperbolic VAE", **(compile_kwargs or {}))

    def _iteration(self, engine: HyperbolicVAETrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        missing = [k for k in TRIPLET_KEYS if k not in batchdata]
        if missing:
            raise KeyError(f"triplet batch lacks {missing} (keys: {sorted(batchdata)}); use TripletPatchSamplerd")
        parts = [
            torch.as_tensor(batchdata[k]).to(engine.state.device, non_blocking=engine.non_blocking).float()
            for k in TRIPLET_KEYS
        ]
        b = parts[0].shape[0]
        x = torch.cat(parts)
        engine.state.output = {Keys.IMAGE: x, Keys.LABEL: x}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine, x):  # convolutions in half precision; the ball's maps are float32 regions
            out = engine.forward_network(x)
        out = to_float32(out)
        recon, target = out.reconstruction, x
        if recon.ndim == x.ndim + 1:  # K posterior samples (K, 3B, ...): the NLL is averaged over them
            engine.state.output[Keys.PRED] = recon[0]
            recon, target = recon.flatten(0, 1), x.expand(recon.shape[0], *x.shape).flatten(0, 1)
        else:
            engine.state.output[Keys.PRED] = recon
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        rec = reconstruction_nll(recon, target, engine.likelihood, engine.likelihood_scale).mean()
        kl = out.kl.mean()
        curvature = getattr(unwrap_module(engine.network), "curvature", 1.0)
        mu_p, mu_c, mu_n = out.mu[:b], out.mu[b : 2 * b], out.mu[2 * b :]
        triplet = hierarchical_triplet_loss(mu_p, mu_c, mu_n, curvature, engine.margin, engine.squared_triplet)
        loss = rec + engine.kl_weight * kl + engine.triplet_weight * triplet
        check_finite_loss(engine, "hyperbolic VAE", loss=loss, rec=rec, kl=kl, triplet=triplet)
        engine.state.output.update({"rec_loss": rec.detach(), "kl": kl.detach(), "triplet": triplet.detach()})
        optimizer_step(engine, loss)
        return engine.state.output
