"""Stage-2 priors: causality, known-answer NLL, learning, sampling, MONAI inferer interop, report."""

import json
import math

import nibabel as nib
import pytest
import torch
from monai.inferers import VQVAETransformerInferer

from monai_genvq.engines import CodePriorTrainer, prior_loss_terms
from monai_genvq.handlers import CodePriorReport
from monai_genvq.networks import (
    GatedPixelCNNPrior,
    ResNetAutoencoder,
    TransformerCodePrior,
    VectorQuantizer,
    VQStage1,
)

K = 6


def _priors(shape=(5, 5)):
    torch.manual_seed(0)
    return [
        GatedPixelCNNPrior(K, channels=8, num_layers=3, kernel_size=3),
        TransformerCodePrior(K, shape, attn_layers_dim=16, attn_layers_depth=2, attn_layers_heads=2),
    ]


@pytest.mark.parametrize("prior", _priors(), ids=["pixelcnn", "transformer"])
def test_prior_is_causal_in_raster_order(prior):
    prior.eval()
    codes = torch.randint(0, K, (1, 5, 5))
    base = prior.log_likelihood(codes)
    for position in (0, 7, 12, 24):
        i, j = divmod(position, 5)
        changed = codes.clone().reshape(-1)
        changed[position + 1 :] = (changed[position + 1 :] + 1) % K  # alter every later code
        ll = prior.log_likelihood(changed.reshape(1, 5, 5))
        assert torch.allclose(ll.reshape(-1)[: position + 1], base.reshape(-1)[: position + 1], atol=1e-5), position


def test_pixelcnn_has_no_blind_spot():
    torch.manual_seed(0)
    prior = GatedPixelCNNPrior(K, channels=8, num_layers=3, kernel_size=3).eval()
    codes = torch.randint(0, K, (1, 5, 5))
    base = prior.logits(codes)[0, :, 2, 2]
    for i, j in [(2, 1), (1, 3), (1, 2), (0, 4)]:  # left, above-right (the classic blind spot), above, two rows up
        changed = codes.clone()
        changed[0, i, j] = (changed[0, i, j] + 1) % K
        assert not torch.allclose(prior.logits(changed)[0, :, 2, 2], base), (i, j)


@pytest.mark.parametrize("prior", _priors(), ids=["pixelcnn", "transformer"])
def test_uniform_prior_has_log2_k_bits(prior):
    head = prior.head[-1] if isinstance(prior, GatedPixelCNNPrior) else prior.transformer.to_logits
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    bits = prior.nll_bits(torch.randint(0, K, (3, 5, 5)))
    assert torch.allclose(bits, torch.full((3,), math.log2(K)), atol=1e-5)
    with pytest.raises(ValueError, match=r"must lie in \[0, 6\)"):
        prior.nll_bits(torch.full((1, 5, 5), K))


@pytest.mark.parametrize("prior", _priors(), ids=["pixelcnn", "transformer"])
def test_prior_learns_structure_and_samples_it(prior):
    """Maps whose rows repeat a random first row: after training, NLL falls far below the marginal entropy."""
    torch.manual_seed(0)
    first_rows = torch.randint(0, K, (64, 1, 5))
    data = first_rows.expand(64, 5, 5).contiguous()
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    prior.train()
    for _ in range(80):
        opt.zero_grad()
        prior.loss(data).backward()
        opt.step()
    prior.eval()
    bits = float(prior.nll_bits(data).mean())
    # an ideal model pays log2 K bits for each of the 5 first-row codes and ~0 for the 20 copies
    assert bits < 0.5 * math.log2(K), bits
    samples = prior.sample(8, (5, 5), temperature=0.5)
    assert samples.shape == (8, 5, 5) and samples.min() >= 0 and samples.max() < K
    repeated = (samples[:, 1:] == samples[:, :1]).float().mean()
    assert repeated > 0.8, f"samples should repeat their first row, {float(repeated):.2f}"


def _tiny_stage1():
    torch.manual_seed(0)
    net = ResNetAutoencoder(
        2, 1, channels=(8, 16), latent_channels=4, num_res_blocks=1, bottleneck=VectorQuantizer(K, 4, init_std=1.0)
    )
    return VQStage1(net)


def test_stage1_adapter_works_with_monai_transformer_inferer():
    stage1 = _tiny_stage1()
    prior = TransformerCodePrior(K, (4, 4), attn_layers_dim=16, attn_layers_depth=1, attn_layers_heads=2)
    images = torch.rand(2, 1, 16, 16)
    logits = VQVAETransformerInferer()(images, stage1, prior.transformer, prior.ordering)
    assert logits.shape == (2, 16, K + 1)
    assert not stage1.training and not any(p.requires_grad for p in stage1.parameters())
    decoded = stage1.decode_samples(prior.sample(2))
    assert decoded.shape == (2, 1, 16, 16)


def test_prior_trainer_and_report_write_nll_and_samples(tmp_path):
    stage1 = _tiny_stage1()
    prior = GatedPixelCNNPrior(K, channels=8, num_layers=2, kernel_size=3)
    data = [{"image": torch.rand(4, 1, 16, 16)} for _ in range(2)]
    report = CodePriorReport(str(tmp_path), prior, stage1, data, spatial_shape=(4, 4), num_samples=3, method="vq")
    losses = []
    trainer = CodePriorTrainer(
        device=torch.device("cpu"),
        max_epochs=15,
        train_data_loader=data,
        network=prior,
        optimizer=torch.optim.Adam(prior.parameters(), 1e-2),
        stage1=stage1,
        train_handlers=[report],
    )
    from ignite.engine import Events

    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.append(prior_loss_terms(e.state.output)["loss"])
    )
    trainer.run()
    assert losses[-1] < losses[0]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["uniform_bits_per_code"] == pytest.approx(math.log2(K))
    assert 0 <= metrics["nll_bits_per_code"]["mean"] < math.log2(K)
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = sorted((tmp_path / "samples").glob("sample_*.nii.gz"))
    assert len(samples) == 3 and nib.load(samples[0]).shape == (16, 16)
    with pytest.raises(ValueError, match="prior models 5 codes"):
        CodePriorTrainer(
            device="cpu",
            max_epochs=1,
            train_data_loader=data,
            network=GatedPixelCNNPrior(5),
            optimizer=torch.optim.Adam(prior.parameters()),
            stage1=stage1,
        )
