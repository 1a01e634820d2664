"""Stage-2 prior on a streamline VQ model: sampling statistics, .trk samples in mm, bundle CLI."""

import json

import numpy as np
import pytest
import torch
from conftest import REPO, run_bundle

from monai_genvq.apps.streamlines import (
    ReferenceStatistics,
    StreamlineNormalizer,
    StreamlinePriorReport,
    choose_sample_statistics,
    load_streamlines,
)
from monai_genvq.engines import CodePriorTrainer
from monai_genvq.networks import GatedPixelCNNPrior, ResNetAutoencoder, VectorQuantizer, VQStage1

CONFIGS = REPO / "bundles" / "streamlines_vqdiff" / "configs"
K = 8


def _reference():
    codes = torch.tensor([[[0, 0], [0, 0]], [[1, 1], [1, 1]], [[2, 2], [1, 1]]])
    mean = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    return ReferenceStatistics(codes, mean, torch.tensor([1.0, 2.0, 4.0]), ["A", "B", "C"])


def test_nearest_statistics_pick_the_most_similar_code_map():
    sampled = torch.tensor([[[2, 2], [0, 0]], [[1, 1], [1, 0]], [[3, 3], [3, 3]]])
    stats, index = choose_sample_statistics(sampled, _reference(), "nearest")
    # sample 0 agrees 2/4 with A and 2/4 with C -> first (A); sample 1 agrees 3/4 with B; sample 2 with none -> A
    assert index.tolist() == [0, 1, 0]
    assert stats.mean.shape == (3, 3, 1, 1) and stats.scale.shape == (3, 1, 1, 1)
    assert stats.mean[1].flatten().tolist() == [1.0, 2.0, 3.0] and stats.scale.flatten().tolist() == [1.0, 2.0, 1.0]


def test_mean_and_random_statistics():
    ref = _reference()
    sampled = torch.zeros(4, 2, 2, dtype=torch.long)
    stats, index = choose_sample_statistics(sampled, ref, "mean")
    assert index.tolist() == [-1] * 4
    assert torch.allclose(stats.mean[0].flatten(), torch.tensor([0.0, 2.5 / 3, 1.0]))
    assert torch.allclose(stats.scale.flatten(), torch.full((4,), 7.0 / 3))
    a = choose_sample_statistics(sampled, ref, "random", torch.Generator().manual_seed(3))[1]
    b = choose_sample_statistics(sampled, ref, "random", torch.Generator().manual_seed(3))[1]
    assert a.tolist() == b.tolist() and all(0 <= i < 3 for i in a.tolist())
    with pytest.raises(ValueError, match="must be one of"):
        choose_sample_statistics(sampled, ref, "median")
    with pytest.raises(ValueError, match="differ"):
        choose_sample_statistics(torch.zeros(1, 3, 3, dtype=torch.long), ref)


def _groups(n, seed):
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(-1, 1, 16)
    base = torch.stack([t, 0.3 * t**2, torch.zeros_like(t)])[:, None, :]  # (3, 1, P) a curved streamline
    groups = []
    for _ in range(n):
        shift = 0.2 * torch.randn(3, 1, 1, generator=g)
        groups.append(0.5 * (base + 0.05 * torch.randn(3, 16, 16, generator=g)) + shift)
    return torch.stack(groups)


def test_report_writes_trk_samples_in_mm_with_training_statistics(tmp_path):
    torch.manual_seed(0)
    net = ResNetAutoencoder(
        2,
        3,
        channels=(8, 16),
        latent_channels=4,
        num_res_blocks=1,
        standardize_input=True,
        bottleneck=VectorQuantizer(K, 4, init_std=1.0),
    )
    stage1, prior = VQStage1(net), GatedPixelCNNPrior(K, channels=8, num_layers=2, kernel_size=3)
    train = [{"bundle": _groups(4, s), "name": ["AF_L", "CST_R", "AF_L", "CST_R"]} for s in range(2)]
    held_out = [{"bundle": _groups(3, 9)}]
    normalizer = StreamlineNormalizer(-60.0, 40.0)  # 50 mm per normalised unit, centre -10 mm
    report = StreamlinePriorReport(
        str(tmp_path),
        prior,
        stage1,
        held_out,
        spatial_shape=(4, 4),
        normalizer=normalizer,
        statistics_loader=train,
        num_samples=3,
        method="vqvae",
    )
    trainer = CodePriorTrainer(
        device=torch.device("cpu"),
        max_epochs=2,
        train_data_loader=train,
        network=prior,
        optimizer=torch.optim.Adam(prior.parameters(), 1e-2),
        stage1=stage1,
        prepare_batch=report.prepare_batch,
        train_handlers=[report],
    )
    trainer.run()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["sample_statistics"] == "nearest" and metrics["n_images"] == 3
    assert [s["file"] for s in metrics["samples"]] == [f"samples/sample_{i:03d}.trk" for i in range(3)]
    assert all(s["statistics_from"] in ("AF_L", "CST_R") and 0 <= s["code_agreement"] <= 1 for s in metrics["samples"])

    # the written file is the decoded group (with the chosen training statistics) mapped to mm
    sampled = report.sample_codes(torch.device("cpu"))
    ref = report.reference_statistics(torch.device("cpu"))
    stats, _ = choose_sample_statistics(sampled, ref, "nearest")
    expected = normalizer.denormalize(stage1.decode_samples(sampled, stats).double().numpy())
    first = load_streamlines(tmp_path / "samples" / "sample_000.trk", bbox_valid_check=True)
    assert len(first) == 16 and all(s.shape == (16, 3) for s in first)
    np.testing.assert_allclose(np.stack(first), expected[0].transpose(1, 2, 0), atol=1e-3)
    assert len(load_streamlines(tmp_path / "samples.trk")) == 3 * 16
    assert len(load_streamlines(tmp_path / "reference.trk")) == 3 * 16


def test_report_needs_training_statistics_for_standardising_networks(tmp_path):
    net = ResNetAutoencoder(
        2, 3, channels=(8, 16), latent_channels=4, standardize_input=True, bottleneck=VectorQuantizer(K, 4)
    )
    report = StreamlinePriorReport(
        str(tmp_path),
        GatedPixelCNNPrior(K, channels=8, num_layers=1),
        VQStage1(net),
        [{"bundle": _groups(2, 0)}],
        (4, 4),
        StreamlineNormalizer(-1.0, 1.0),
    )
    with pytest.raises(ValueError, match="needs statistics_loader"):
        report.run()
    with pytest.raises(ValueError, match="fitted normaliser"):
        StreamlinePriorReport(str(tmp_path), report.prior, report.stage1, [], (4, 4), StreamlineNormalizer())


@pytest.mark.slow
def test_cli_prior_on_trained_streamline_vqvae_writes_trk(cache_dir, tmp_path):
    configs = [CONFIGS / "train.json", CONFIGS / "vqvae.json"]
    small = (
        "--latent_channels",
        "8",
        "--num_embeddings",
        "16",
        "--network_def#channels",
        "[8,16]",
        "--network_def#num_res_blocks",
        "1",
        "--batch_size",
        "8",
    )
    run_bundle(
        "training",
        configs,
        tmp_path,
        *small,
        "--max_epochs",
        "1",
        "--train#trainer#epoch_length",
        "2",
        "--val_interval",
        "1",
    )
    run_bundle(
        "training_prior",
        configs + [CONFIGS / "prior.json"],
        tmp_path,
        *small,
        "--prior_max_epochs",
        "1",
        "--prior_train#trainer#epoch_length",
        "2",
        "--num_samples",
        "2",
        "--prior_def#channels",
        "8",
        "--prior_def#num_layers",
        "2",
    )
    prior_dir = tmp_path / "outputs" / "vqvae" / "prior_pixelcnn"
    metrics = json.loads((prior_dir / "metrics.json").read_text())
    assert metrics["code_map_shape"] == [16, 16] and metrics["uniform_bits_per_code"] == 4.0
    assert np.isfinite(metrics["nll_bits_per_code"]["mean"]) and metrics["sample_statistics"] == "nearest"
    samples = [load_streamlines(prior_dir / s["file"], bbox_valid_check=True) for s in metrics["samples"]]
    assert len(samples) == 2 and all(len(s) == 64 and all(len(x) == 64 for x in s) for s in samples)
    normalizer = StreamlineNormalizer.load(tmp_path / "outputs" / "vqvae" / "models" / "streamline_normalization.json")
    points = np.concatenate([np.concatenate(s) for s in samples])
    span = normalizer.denormalize(np.array([-1.0, 1.0]))
    assert np.all(points.mean(0) > span[0]) and np.all(points.mean(0) < span[1]), "samples lie in the data's mm box"
    assert (prior_dir / "prior.pt").is_file() and (prior_dir / "samples.trk").is_file()
