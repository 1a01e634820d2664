"""Anatomical-prior VAE: closed-form KL, Jensen bound, location prior, frozen decoder, bad inputs, baselines."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events

from monai_genvq.apps.anatomical_prior import (
    ImageModelTrainer,
    ImageSegmentationVAE,
    LabelMapError,
    LabelPriorTrainer,
    LabelPriorVAE,
    PrepareImageBatch,
    PrepareLabelBatch,
    ValidateLabelMapd,
    anatomical_prior_loss_terms,
    atlas_intensity_init,
    categorical_nll,
    check_label_map,
    jensen_intensity_log_likelihood,
    label_intensity_log_likelihood,
    location_prior,
    render_from_prior,
)
from monai_genvq.losses import gaussian_kl
from monai_genvq.metrics import hungarian_match, kmeans_segmentation, per_label_dice


def _onehot(lab, n):
    return F.one_hot(lab, n).movedim(-1, 1).float()


def _disc_maps(n, size=16, seed=0):
    """Label maps of a disc (1) in a ring (2) at jittered positions: a tiny shape family."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    maps = []
    for _ in range(n):
        cx, cy, r = size / 2 + g.normal(0, 1), size / 2 + g.normal(0, 1), g.uniform(2.5, 4.0)
        d = np.hypot(xx - cx, yy - cy)
        lab = np.zeros((size, size), np.int64)
        lab[d < r + 2] = 2
        lab[d < r] = 1
        maps.append(lab)
    return torch.as_tensor(np.stack(maps))


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5) * 0.5
    closed = gaussian_kl(mu, logvar, "per_sample")
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean(0)
    torch.testing.assert_close(closed, mc, atol=0.03, rtol=0.01)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4), "per_sample"), torch.zeros(2))


def test_categorical_and_intensity_likelihoods_known_answers():
    logits = torch.zeros(2, 4, 3, 3)
    s = _onehot(torch.randint(0, 4, (2, 3, 3)), 4)
    torch.testing.assert_close(categorical_nll(logits, s), torch.full((2,), 9 * math.log(4)))
    x = torch.tensor([[[[0.5]]]])
    means, logvars = torch.tensor([[0.0], [0.5]]), torch.tensor([[0.0], [math.log(0.25)]])
    ll = label_intensity_log_likelihood(x, means, logvars)[0, :, 0, 0]
    expected = torch.tensor([-0.5 * math.log(2 * math.pi) - 0.125, -0.5 * math.log(2 * math.pi * 0.25)])
    torch.testing.assert_close(ll, expected)


def test_jensen_bound_is_below_exact_log_likelihood_and_tight_for_hard_labels():
    torch.manual_seed(1)
    x = torch.rand(2, 1, 5, 5)
    means, logvars = torch.rand(3, 1), torch.randn(3, 1) * 0.3 - 2
    logits = torch.randn(2, 3, 5, 5)
    ll = label_intensity_log_likelihood(x, means, logvars)
    exact = torch.logsumexp(logits.log_softmax(1) + ll, dim=1).flatten(1).sum(1)
    bound = jensen_intensity_log_likelihood(logits, x, means, logvars)
    assert (bound <= exact + 1e-5).all() and (bound < exact - 1e-3).all()
    hard = 1e4 * _onehot(torch.randint(0, 3, (2, 5, 5)), 3)
    exact_h = torch.logsumexp(hard.log_softmax(1) + ll, dim=1).flatten(1).sum(1)
    torch.testing.assert_close(jensen_intensity_log_likelihood(hard, x, means, logvars), exact_h, atol=1e-3, rtol=1e-4)


def test_location_prior_known_answer_and_errors():
    maps = [np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 2]])]
    pi = location_prior(maps, 3, alpha=0.0)
    torch.testing.assert_close(pi[:, 1, 0], torch.tensor([0.0, 0.5, 0.5]))
    torch.testing.assert_close(pi.sum(0), torch.ones(2, 2))
    assert (location_prior(maps, 3, alpha=1.0) > 0).all()
    with pytest.raises(ValueError, match="outside the declared label set"):
        location_prior([np.array([[0, 3]])], 3)
    with pytest.raises(ValueError, match="shape"):
        location_prior([np.zeros((2, 2), int), np.zeros((3, 3), int)], 3)


def test_location_prior_shifts_predictions_where_it_should():
    torch.manual_seed(0)
    net = LabelPriorVAE(2, 3, 16, (4, 8), 4).eval()
    z = torch.randn(4, 4)
    with torch.no_grad():
        base = net.decode(z)
        pi = torch.full((3, 16, 16), 1 / 3)
        pi[:, :8] = torch.tensor([0.001, 0.001, 0.998])[:, None, None]  # top half: label 2 almost surely
        net.set_location_prior(pi)
        assert net.has_location_prior
        shifted = net.decode(z)
    # log-space addition: the log-probability ratio equals log π up to the per-voxel normaliser
    diff = shifted.log_softmax(1) - base.log_softmax(1) - pi.log()
    torch.testing.assert_close(diff - diff.mean(1, keepdim=True), torch.zeros_like(diff), atol=1e-5, rtol=0)
    assert (shifted[:, :, :8].argmax(1) == 2).float().mean() > 0.99
    assert torch.equal(shifted[:, :, 8:].argmax(1), base[:, :, 8:].argmax(1))  # uniform prior: unchanged
    with pytest.raises(ValueError, match="location prior has shape"):
        net.set_location_prior(torch.ones(3, 8, 8) / 3)


def test_stage1_loss_drops_and_reconstructs():
    torch.manual_seed(0)
    maps = _disc_maps(32)
    data = [{"label": maps[i : i + 8, None]} for i in range(0, 32, 8)]
    net = LabelPriorVAE(2, 3, 16, (8, 16), 4)
    trainer = LabelPriorTrainer("cpu", 15, data, net, torch.optim.Adam(net.parameters(), 3e-3), beta=0.1)
    losses = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.append(anatomical_prior_loss_terms(e.state.output)["loss"])
    )
    trainer.run()
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    with torch.no_grad():
        rec = net(_onehot(maps, 3), sample=False).logits.argmax(1)
    assert float(per_label_dice(rec, maps, 3).nanmean()) > 0.7


def test_frozen_decoder_stays_frozen_in_stage2():
    torch.manual_seed(0)
    prior = LabelPriorVAE(2, 3, 16, (4, 8), 4)
    prior.set_location_prior(location_prior(list(_disc_maps(8)), 3))
    net = ImageSegmentationVAE(prior, in_channels=1)
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    enc_before = [p.clone() for p in net.image_encoder.parameters()]
    data = [{"image": torch.rand(4, 1, 16, 16)}]
    opt = torch.optim.Adam(net.trainable_parameters(), 1e-2)
    ImageModelTrainer("cpu", 3, data, net, opt, pretrain_iterations=1).run()
    assert all(not p.requires_grad for p in prior.parameters())
    assert not prior.training
    for k, v in prior.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(a, b) for a, b in zip(enc_before, net.image_encoder.parameters()))
    with pytest.raises(ValueError, match="frozen prior"):
        ImageModelTrainer("cpu", 1, data, net, torch.optim.Adam(net.parameters()))
    x, z = render_from_prior(net, 3)
    assert x.shape == (3, 1, 16, 16) and z.shape == (3, 4)


def _stage2_net(seed=0):
    torch.manual_seed(seed)
    prior = LabelPriorVAE(2, 3, 16, (4, 8), 4)
    prior.set_location_prior(location_prior(list(_disc_maps(8)), 3))
    return ImageSegmentationVAE(prior, in_channels=1)


def _stage2_run(pretrain_iterations, iterations, seed=0):
    """A tiny stage-2 run (one batch per epoch) from :func:`_stage2_net`; returns the network, the prior's initial
    state, what each iteration logged ({iteration: names of the loss terms in its output}) and the data."""
    net = _stage2_net(seed)
    prior_before = {k: v.clone() for k, v in net.prior.state_dict().items()}
    data = [{"image": torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))}]
    trainer = ImageModelTrainer(
        "cpu",
        iterations,
        data,
        net,
        torch.optim.Adam(net.trainable_parameters(), 1e-2),
        pretrain_iterations=pretrain_iterations,
    )
    logged = {}

    def log(engine):
        out = engine.state.output[0] if isinstance(engine.state.output, list) else engine.state.output
        logged[engine.state.iteration] = {k for k in ("pretrain_loss", "nll", "kl") if out.get(k) is not None}

    trainer.add_event_handler(Events.ITERATION_COMPLETED, log)
    torch.manual_seed(seed + 1)
    trainer.run()
    return net, prior_before, logged, data


def test_stage2_pretraining_runs_exactly_the_configured_iterations_and_trains_only_the_encoder():
    """Pre-training on prior renders happens on iterations 1..N only, moves the image encoder (and nothing else),
    and leaves it elsewhere than the Jensen bound would in the same N iterations (from the same start)."""
    n = 3
    net, prior_before, logged, data = _stage2_run(pretrain_iterations=n, iterations=n + 2)
    assert [i for i, terms in logged.items() if terms == {"pretrain_loss"}] == [1, 2, 3]
    assert [i for i, terms in logged.items() if terms == {"nll", "kl"}] == [4, 5]

    pre, prior_before, _, data = _stage2_run(pretrain_iterations=n, iterations=n)
    jensen, _, logged_j, _ = _stage2_run(pretrain_iterations=0, iterations=n)
    assert all(terms == {"nll", "kl"} for terms in logged_j.values())
    start = _stage2_net()  # the common starting point
    enc = lambda m: torch.cat([p.detach().flatten() for p in m.image_encoder.parameters()])  # noqa: E731
    assert not torch.equal(enc(pre), enc(start))  # pre-training moved the encoder ...
    assert not torch.allclose(enc(pre), enc(jensen), atol=1e-6)  # ... and not the way the Jensen bound does
    for net_ in (pre, jensen):  # the decoder stays frozen either way
        for k, v in net_.prior.state_dict().items():
            assert torch.equal(v, prior_before[k]), k
    # pre-training trains the encoder only: the intensity model is still the atlas initialisation
    means, logvars = atlas_intensity_init(start, data, PrepareImageBatch())
    torch.testing.assert_close(pre.means.detach(), means, rtol=0, atol=0)
    torch.testing.assert_close(pre.logvars.detach(), logvars, rtol=0, atol=0)
    assert not torch.equal(jensen.means.detach(), means)


def test_bundle_pretrain_iterations_reach_the_stage2_trainer(tmp_path):
    """configs/train_image.json declares pretrain_iterations > 0 and the instantiated trainer uses that value."""
    import json
    from pathlib import Path

    from monai.bundle import ConfigParser

    configs = Path(__file__).resolve().parents[1] / "bundles" / "anatomical_prior_seg" / "configs"
    declared = json.loads((configs / "train_image.json").read_text())["pretrain_iterations"]
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(configs / "train_image.json")])
    parser.update(
        {
            "bundle_root": str(tmp_path),
            "device": "$torch.device('cpu')",
            "prior": "$@prior_def",  # a fresh prior instead of the stage-1 checkpoint
            "train#dataloader": "$[{'image': torch.rand(2, 1, 64, 64)}]",
        }
    )
    trainer = parser.get_parsed_content("train#trainer")
    assert isinstance(trainer, ImageModelTrainer)
    assert isinstance(declared, int) and declared > 0
    assert trainer.pretrain_iterations == declared


def test_atlas_intensity_init_recovers_label_means():
    torch.manual_seed(0)
    prior = LabelPriorVAE(2, 3, 16, (4, 8), 4)
    maps = _disc_maps(16)
    pi = location_prior(list(maps), 3, alpha=0.0)
    hard = F.one_hot(pi.argmax(0), 3).movedim(-1, 0).float()
    prior.set_location_prior(hard * 0.999999 + 1e-6)
    with torch.no_grad():
        prior.decoder.out.conv.weight.zero_()
        prior.decoder.out.conv.bias.zero_()
    net = ImageSegmentationVAE(prior)
    true_means = torch.tensor([0.1, 0.9, 0.4])
    img = true_means[hard.argmax(0)][None, None].repeat(4, 1, 1, 1)
    trainer = ImageModelTrainer("cpu", 1, [{"image": img}], net, torch.optim.Adam(net.trainable_parameters(), 0.0))
    trainer.run()
    torch.testing.assert_close(net.means[:, 0].detach(), true_means, atol=1e-3, rtol=0)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(LabelMapError, match=r"values \[7\] outside the declared label set 0..3"):
        check_label_map(np.array([[0, 1], [7, 2]]), 4)
    with pytest.raises(LabelMapError, match="empty"):
        check_label_map(np.zeros((1, 4, 4)), 4)
    with pytest.raises(LabelMapError, match="differs from the image"):
        ValidateLabelMapd("label", 4)(
            {"label": np.ones((1, 4, 4)), "image": np.zeros((1, 5, 4)), "subject": "patient007"}
        )
    with pytest.raises(LabelMapError, match="patient007"):
        ValidateLabelMapd("label", 4)(
            {"label": np.zeros((1, 4, 4)), "image": np.zeros((1, 4, 4)), "subject": "patient007"}
        )
    with pytest.raises(LabelMapError, match="non-integer"):
        check_label_map(np.array([[0.5, 1.0]]), 4)
    with pytest.raises(ValueError, match=r"values \[5\] outside"):
        PrepareLabelBatch(4)({"label": torch.tensor([[[[0, 5]]]])})
    with pytest.raises(ValueError, match="NaN"):
        PrepareImageBatch()({"image": torch.tensor([[[[float("nan")]]]])})
    net = LabelPriorVAE(2, 3, 16, (4,), 2)
    with pytest.raises(ValueError, match="one-hot"):
        net(torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match="divisible"):
        LabelPriorVAE(2, 3, 18, (4, 8), 2)
    im = ImageSegmentationVAE(net)
    with pytest.raises(ValueError, match="images must be"):
        im.segment(torch.zeros(1, 1, 8, 8))
    with torch.no_grad():
        im.means.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite loss at iteration 1"):
        ImageModelTrainer(
            "cpu",
            1,
            [{"image": torch.rand(2, 1, 16, 16)}],
            im,
            torch.optim.Adam(im.trainable_parameters()),
            init_intensity=False,
        ).run()


def test_dice_and_kmeans_baseline_known_answers():
    p = torch.tensor([[[0, 1], [1, 1]]])
    t = torch.tensor([[[0, 1], [1, 0]]])
    torch.testing.assert_close(per_label_dice(p, t, 2), torch.tensor([[0.8]]))
    assert hungarian_match(np.array([2, 2, 0, 1]), np.array([1, 1, 0, 2]), 3).tolist() == [1, 1, 0, 2]
    g = torch.Generator().manual_seed(0)
    lab = torch.randint(0, 3, (2, 12, 12), generator=g)
    img = torch.tensor([0.2, 0.5, 0.8])[lab][:, None] + 0.01 * torch.randn(2, 1, 12, 12, generator=g)
    seg = kmeans_segmentation(img, lab, 3)
    assert np.array_equal(seg, lab.numpy())


def test_3d_brain_phantom_runs_both_stages():
    from monai_genvq.apps.anatomical_prior.synthetic_brain import render_brain_phantom

    rng = np.random.default_rng(0)
    cases = [render_brain_phantom(rng, size=16) for _ in range(4)]
    for c in cases:
        check_label_map(c["label"], 4, c["image"])
        assert {0, 1, 2, 3} <= set(np.unique(c["label"]).tolist())
    labels = torch.as_tensor(np.stack([c["label"] for c in cases]))[:, None].long()
    images = torch.as_tensor(np.stack([c["image"] for c in cases]))[:, None]
    prior = LabelPriorVAE(3, 4, 16, (4, 8), 4, location_prior=location_prior(list(labels), 4))
    LabelPriorTrainer("cpu", 2, [{"label": labels}], prior, torch.optim.Adam(prior.parameters(), 1e-3)).run()
    net = ImageSegmentationVAE(prior)
    ImageModelTrainer(
        "cpu", 2, [{"image": images}], net, torch.optim.Adam(net.trainable_parameters()), pretrain_iterations=1
    ).run()
    assert net.segment(images).shape == (4, 16, 16, 16)


def test_checkpoint_hand_off_loads_and_rejects_clearly(tmp_path):
    from monai_genvq.apps.anatomical_prior import load_module_checkpoint

    prior = LabelPriorVAE(2, 3, 16, (4,), 2)
    prior.set_location_prior(location_prior(list(_disc_maps(4)), 3))
    torch.save({"model": prior.state_dict()}, tmp_path / "model.pt")
    loaded = load_module_checkpoint(LabelPriorVAE(2, 3, 16, (4,), 2), tmp_path / "model.pt")
    torch.testing.assert_close(loaded.log_location_prior, prior.log_location_prior)  # the location prior travels along
    with pytest.raises(FileNotFoundError, match="run the previous training stage first"):
        load_module_checkpoint(prior, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="does not fit LabelPriorVAE"):
        load_module_checkpoint(LabelPriorVAE(2, 3, 16, (8,), 2), tmp_path / "model.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    from monai_genvq.handlers import CorruptCheckpointError

    with pytest.raises(CorruptCheckpointError, match="bad.pt' cannot be read"):
        load_module_checkpoint(prior, tmp_path / "bad.pt")
