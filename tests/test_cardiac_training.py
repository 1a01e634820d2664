"""Short real training runs of the VAE and Soft-Intro engines (CPU, tiny images)."""

import math

import numpy as np
import pytest
import torch
from ignite.engine import Events
from scipy.stats import spearmanr

from monai_genvq.engines import SoftIntroTrainer, VAEEvaluator, VAETrainer, vae_loss_terms
from monai_genvq.losses import AttributeRegularizationLoss
from monai_genvq.networks import ConvVAE, SoftIntroResNetVAE


def _disks(n, size=32, seed=0):
    """A disk of radius r and brightness b inside a fixed grey ring: attributes (r, b) vary independently."""
    g = torch.Generator().manual_seed(seed)
    r = 3 + 6 * torch.rand(n, generator=g)
    b = 0.5 + 0.5 * torch.rand(n, generator=g)
    yy, xx = torch.meshgrid(torch.arange(size) - size / 2 + 0.5, torch.arange(size) - size / 2 + 0.5, indexing="ij")
    d = torch.sqrt(yy**2 + xx**2)[None]
    img = 0.3 * (d < (r + 2)[:, None, None]).float()
    img = torch.where(d < r[:, None, None], b[:, None, None].expand_as(img), img)
    return img[:, None], torch.stack([r, b], 1)


def _batches(x, a, bs):
    return [{"image": x[i : i + bs], "attributes": a[i : i + bs]} for i in range(0, len(x), bs)]


def _codes(net, x, a):
    ev = VAEEvaluator("cpu", _batches(x, a, 64), net)
    mus = []
    ev.add_event_handler(Events.ITERATION_COMPLETED, lambda e: mus.append(e.state.output["latent"]))
    ev.run()
    return torch.cat(mus).numpy()


def test_attribute_regularisation_orders_the_latent_dim():
    torch.manual_seed(0)
    x, a = _disks(192)
    results = {}
    for name, attr_loss in (("beta", None), ("attri", AttributeRegularizationLoss([0, 1], gamma=10.0, delta=10.0))):
        torch.manual_seed(0)
        net = ConvVAE(image_size=32, channels=(16, 16), hidden=64, latent_dim=8)
        trainer = VAETrainer(
            "cpu",
            5,
            _batches(x, a, 32),
            net,
            torch.optim.Adam(net.parameters(), 2e-3),
            beta=2.0,
            attribute_loss=attr_loss,
        )
        losses = []
        trainer.add_event_handler(
            Events.ITERATION_COMPLETED,
            lambda e, losses=losses: losses.append(vae_loss_terms(e.state.output)["rec_loss"]),
        )
        trainer.run()
        assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6]), name  # it learns
        z = _codes(net, x, a)
        results[name] = [abs(spearmanr(z[:, k], a[:, k].numpy())[0]) for k in range(2)]
    assert min(results["attri"]) > 0.8, results
    assert np.mean(results["attri"]) > np.mean(results["beta"]) + 0.2, results  # dims 0, 1 of the β-VAE are not tied


def test_soft_intro_updates_encoder_and_decoder_and_reports_terms():
    torch.manual_seed(0)
    x, a = _disks(16)
    net = SoftIntroResNetVAE(image_size=32, channels=(8, 16), latent_dim=8)
    opt_e = torch.optim.Adam(net.encoder.parameters(), 1e-3)
    opt_d = torch.optim.Adam(net.decoder.parameters(), 1e-3)
    enc0 = [p.detach().clone() for p in net.encoder.parameters()]
    dec0 = [p.detach().clone() for p in net.decoder.parameters()]
    trainer = SoftIntroTrainer(
        "cpu",
        1,
        _batches(x, a, 8),
        net,
        opt_e,
        opt_d,
        beta_neg=64.0,
        attribute_loss=AttributeRegularizationLoss([0, 1]),
    )
    trainer.run()
    out = vae_loss_terms(trainer.state.output)
    assert all(not torch.equal(p0, p) for p0, p in zip(enc0, net.encoder.parameters()) if p.ndim > 1)
    assert all(not torch.equal(p0, p) for p0, p in zip(dec0, net.decoder.parameters()) if p.ndim > 1)
    assert 0 < float(out["expelbo_rec"]) <= 1 and 0 < float(out["expelbo_fake"]) <= 1
    assert float(out["attr_loss"]) > 0 and all(p.requires_grad for p in net.parameters())


def test_soft_intro_loss_drops():
    torch.manual_seed(0)
    x, a = _disks(48)
    net = SoftIntroResNetVAE(image_size=32, channels=(8, 16), latent_dim=16)
    trainer = SoftIntroTrainer(
        "cpu",
        5,
        _batches(x, a, 16),
        net,
        torch.optim.Adam(net.encoder.parameters(), 3e-3),
        torch.optim.Adam(net.decoder.parameters(), 3e-3),
        beta_neg=256.0,
    )
    losses = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.append(vae_loss_terms(e.state.output)["rec_loss"])
    )
    trainer.run()
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses


def test_nan_input_stops_with_clear_message():
    x, a = _disks(4)
    x[0, 0, 0, 0] = float("nan")
    net = SoftIntroResNetVAE(image_size=32, channels=(8, 16), latent_dim=8)
    trainer = SoftIntroTrainer(
        "cpu",
        1,
        _batches(x, a, 4),
        net,
        torch.optim.Adam(net.encoder.parameters()),
        torch.optim.Adam(net.decoder.parameters()),
    )
    with pytest.raises(FloatingPointError, match="non-finite loss at iteration 1"):
        trainer.run()
    net2 = ConvVAE(image_size=32, channels=(8, 8))
    with pytest.raises(FloatingPointError, match="non-finite"):
        VAETrainer("cpu", 1, _batches(x, a, 4), net2, torch.optim.Adam(net2.parameters())).run()
    with pytest.raises(ValueError, match="no attributes"):
        VAETrainer(
            "cpu",
            1,
            [{"image": torch.rand(2, 1, 32, 32)}],
            net2,
            torch.optim.Adam(net2.parameters()),
            attribute_loss=AttributeRegularizationLoss(),
        ).run()


def test_elbo_pieces_hand_computed():
    from monai_genvq.losses import gaussian_kl, reconstruction_error

    mu, logvar = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]])
    # 0.5 (mu² + σ² − 1 − log σ²): sample 0 -> 0.5; sample 1 -> 0.5 (2 − 1 − log 2)
    np.testing.assert_allclose(
        gaussian_kl(mu, logvar, "per_sample").numpy(), [0.5, 0.5 * (1 - math.log(2.0))], rtol=1e-6
    )
    x, t = torch.full((2, 1, 2, 2), 0.5), torch.zeros(2, 1, 2, 2)
    assert reconstruction_error(x, t, "mse").item() == pytest.approx(4 * 0.25)  # summed over voxels, batch mean
    assert reconstruction_error(x, t, "bce").item() == pytest.approx(4 * math.log(2.0), rel=1e-5)
    p = torch.full((1, 1, 1, 1), 1e-9, requires_grad=True)  # saturated sigmoid output, target 1
    reconstruction_error(p, torch.ones_like(p), "bce").backward()
    assert p.grad.abs().item() > 1e3  # BCE keeps a gradient where squared error would give ~0
