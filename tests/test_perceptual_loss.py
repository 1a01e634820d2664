"""The perceptual reconstruction term (Attri-SIVAE Table 2: MSE + δ·perceptual) and the paper configurations."""

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO
from monai.bundle import ConfigParser

from monai_genvq.apps.cardiac import cardiac_seed_table, training_summary
from monai_genvq.engines import SoftIntroTrainer
from monai_genvq.losses import (
    PerceptualReconstructionLoss,
    VGGPerceptualLoss,
    reconstruction_error,
    reconstruction_objective,
)
from monai_genvq.losses.perceptual import _vgg_features
from monai_genvq.networks import SoftIntroResNetVAE

CONFIGS = REPO / "bundles" / "cardiac_attri_sivae" / "configs"


@pytest.fixture
def vgg_file(tmp_path):
    """A user's local VGG16 file in torchvision's full-model key layout (random weights, classifier included)."""
    torch.manual_seed(0)
    features = _vgg_features("vgg16")
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg16_local.pth"
    torch.save(state, path)
    return path, features


def test_weights_come_from_the_users_file(vgg_file):
    path, features = vgg_file
    loss = VGGPerceptualLoss(path, layers=(3, 8))
    assert torch.equal(loss.features[0].weight, features[0].weight)
    assert torch.equal(loss.features[7].bias, features[7].bias)
    assert len(loss.features) == 9  # truncated after the last tap


def test_missing_or_unfit_weights_name_the_file_and_option(tmp_path, vgg_file):
    with pytest.raises(FileNotFoundError, match="weights_path: weights file '.*nowhere.pth' does not exist"):
        VGGPerceptualLoss(tmp_path / "nowhere.pth")
    with pytest.raises(ValueError, match="weights_path is empty"):
        VGGPerceptualLoss("")
    with pytest.raises(FileNotFoundError, match="perceptual_weights: weights file .*perceptual_delta = 100"):
        reconstruction_objective("mse", 100.0, str(tmp_path / "nowhere.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3), "features.0.bias": torch.zeros(8)}, bad)
    with pytest.raises(ValueError, match=r"features\.0\.weight|0\.weight.*shape \(8, 3, 3, 3\)"):
        VGGPerceptualLoss(bad, layers=(1,))
    with pytest.raises(ValueError, match="lacks"):
        VGGPerceptualLoss(bad, layers=(3,))
    assert reconstruction_objective("bce", 0.0, "/no/file/needed") == "bce"  # δ = 0: the file is not read


def test_known_answers_of_both_distances(vgg_file):
    path, features = vgg_file
    x, y = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    fx = F.relu(features[0]((x.expand(-1, 3, -1, -1) - mean) / std))
    fy = F.relu(features[0]((y.expand(-1, 3, -1, -1) - mean) / std))
    mse = VGGPerceptualLoss(path, layers=(1,), distance="mse")(x, y)
    torch.testing.assert_close(mse, (fx - fy).square().flatten(1).mean(1))
    nx, ny = fx / (fx.norm(dim=1, keepdim=True) + 1e-10), fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
    lp = VGGPerceptualLoss(path, layers=(1,), distance="lpips")(x, y)
    torch.testing.assert_close(lp, (nx - ny).square().sum(1).flatten(1).mean(1))


def test_gradients_reach_the_image_not_the_frozen_network(vgg_file):
    loss = VGGPerceptualLoss(vgg_file[0], layers=(3, 8))
    loss.train()
    assert not loss.training and not any(p.requires_grad for p in loss.parameters())
    x = torch.rand(2, 1, 16, 16, requires_grad=True)
    loss(x, torch.rand(2, 1, 16, 16)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_reconstruction_is_pixel_term_plus_delta_times_perceptual():
    perceptual = lambda a, b: (a - b).abs().flatten(1).mean(1)  # noqa: E731
    x, t = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    loss = PerceptualReconstructionLoss(perceptual, delta=50.0, kind="mse", mse_weight=0.5)
    expected = 0.5 * (x - t).square().flatten(1).sum(1) + 50.0 * perceptual(x, t)
    torch.testing.assert_close(loss(x, t), expected)
    torch.testing.assert_close(reconstruction_error(x, t, loss), expected.mean())
    with pytest.raises(ValueError, match="one error per sample"):
        reconstruction_error(x, t, lambda a, b: (a - b).sum())


def test_soft_intro_trainer_applies_the_term_to_every_reconstruction_error():
    """Encoder step: x, D(E(x̂_r)), D(E(x̂_f)); decoder step: the same three (the authors' code does all six)."""
    calls = []

    def spy(a, b):
        calls.append(tuple(a.shape))
        return (a - b).abs().flatten(1).mean(1)

    torch.manual_seed(0)
    net = SoftIntroResNetVAE(image_size=16, channels=(4, 8), latent_dim=4)
    data = [{"image": torch.rand(2, 1, 16, 16)}]
    trainer = SoftIntroTrainer(
        "cpu",
        1,
        data,
        net,
        torch.optim.Adam(net.encoder.parameters()),
        torch.optim.Adam(net.decoder.parameters()),
        reconstruction=PerceptualReconstructionLoss(spy, delta=100.0),
    )
    trainer.run()
    assert calls == [(2, 1, 16, 16)] * 6  # a non-finite loss would have stopped the run (check_finite_loss)


def _parsed(*files, keys):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in files])
    return {k: parser.get_parsed_content(k) for k in keys}


KEYS = ("beta_kl", "beta_rec", "beta_neg", "gamma", "reconstruction", "perceptual_delta", "image_size", "latent_dim")


@pytest.mark.parametrize(
    "files, expected",
    [  # Attri-SIVAE Table 2 (appendix A): β_KL 1, β_rec 0.8, β_neg 1024 ACDC / 512 M&Ms, γ_reg 0.1, δ 100 / 50 / 100
        (["train.json", "paper.json"], (1.0, 0.8, 1024.0, 0.1, "mse", 100.0, 128, 256)),
        (["train.json", "soft_intro_vae.json", "paper.json"], (1.0, 0.8, 1024.0, 0.1, "mse", 50.0, 128, 256)),
        (["train.json", "paper.json", "paper_mnms.json"], (1.0, 0.8, 512.0, 0.1, "mse", 100.0, 128, 256)),
        (
            ["train.json", "soft_intro_vae.json", "paper.json", "paper_mnms.json"],
            (1.0, 0.8, 512.0, 0.1, "mse", 100.0, 128, 256),
        ),
        # appendix A, β-VAE section: Attri-VAE γ = 10, bottleneck 32, no perceptual term
        (["train.json", "attri_vae.json", "paper.json"], (1.0, 0.8, 1024.0, 10.0, "bce", 0.0, 128, 32)),
    ],
)
def test_paper_configs_hold_table_2(files, expected):
    assert tuple(_parsed(*files, keys=KEYS).values()) == expected


def test_paper_config_without_weights_says_which_option(tmp_path):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "paper.json")])
    parser["perceptual_weights"] = str(tmp_path / "vgg16.pth")
    with pytest.raises(RuntimeError) as info:
        parser.get_parsed_content("reconstruction_loss")
    assert "perceptual_weights: weights file" in str(info.value.__cause__) and "vgg16.pth" in str(info.value.__cause__)
    assert _parsed("train.json", keys=("perceptual_delta",)) == {"perceptual_delta": 0.0}  # CPU default: off


def test_training_summary_and_seed_table(tmp_path):
    run = tmp_path / "run_settings.json"
    opts = {"seed": 2, "max_epochs": 32, "reconstruction": "mse", "perceptual_delta": 50.0}
    run.write_text(json.dumps({"options": {**opts, "perceptual_network": "vgg16", "perceptual_distance": "mse"}}))
    summary = training_summary(run)
    assert summary["seed"] == 2 and summary["perceptual_term"].startswith("on (δ = 50, vgg16 mse")
    run.write_text(json.dumps({"options": {**opts, "perceptual_delta": 0.0}}))
    assert training_summary(run)["perceptual_term"] == "off"
    r = {"interpretability": 0.4, "scc": 0.6, "modularity": 0.2, "sap": 0.1, "mig": 0.0, "ssim": {"mean": 0.8}}
    r2 = {**r, "interpretability": 0.6, "ssim": {"mean": 0.9}}
    lines = cardiac_seed_table({0: {"attri_sivae": r}, 3: {"attri_sivae": r2}}, {"attri_sivae": {"sap": 0.27}})
    lines = lines.splitlines()
    assert lines[2] == "| Attri-SIVAE (seed paper) | 5 | – | – | – | 0.27 | – | – |"
    assert lines[3].startswith("| Attri-SIVAE | 0, 3 | 0.500 ± 0.100 | 0.600 ± 0.000 |")
    assert lines[3].endswith("| 0.850 ± 0.050 |")
