"""ResNet autoencoder and its Ignite trainer."""

import pytest
import torch

from monai_genvq.engines import AutoencoderTrainer, PrepareAutoencoderBatch, ReconstructionInferer, loss_terms
from monai_genvq.networks import GumbelQuantizer, IdentityBottleneck, ResNetAutoencoder, VectorQuantizer


def test_paper_configuration_shapes():
    net = ResNetAutoencoder(bottleneck=GumbelQuantizer(512, 64))
    out = net(torch.randn(2, 3, 64, 64))
    assert out.reconstruction.shape == (2, 3, 64, 64)
    assert out.bottleneck.latent.shape == (2, 64, 16, 16)  # the VQ-Diff paper's 64×16×16 latent
    assert out.bottleneck.probs.shape == (2, 16, 16, 512)


@pytest.mark.parametrize("spatial_dims", [1, 3])
def test_other_spatial_dims(spatial_dims):
    net = ResNetAutoencoder(
        spatial_dims=spatial_dims,
        in_channels=1,
        channels=(4, 8),
        latent_channels=4,
        num_res_blocks=1,
        bottleneck=VectorQuantizer(8, 4),
    )
    x = torch.randn(1, 1, *([8] * spatial_dims))
    assert net(x).reconstruction.shape == x.shape


def test_clear_error_on_wrong_input():
    net = ResNetAutoencoder()
    with pytest.raises(ValueError, match="expects"):
        net(torch.randn(2, 64, 64))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 3, 50, 64))


def _trainer(bottleneck, data, epochs):
    torch.manual_seed(0)
    net = ResNetAutoencoder(channels=(16, 32), latent_channels=8, num_res_blocks=1, bottleneck=bottleneck)
    return AutoencoderTrainer(
        device=torch.device("cpu"),
        max_epochs=epochs,
        train_data_loader=data,
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-3),
        loss_function=torch.nn.MSELoss(),
        prepare_batch=PrepareAutoencoderBatch("bundle"),
    )


def test_trainer_loss_drops_and_logs_terms():
    torch.manual_seed(0)
    t = torch.linspace(-1, 1, 16)
    # smooth curves (like resampled streamlines) with random offsets
    base = torch.stack([t, t.square() - 0.5, 0.5 * torch.sin(3 * t)])[:, None, :]
    data = [{"bundle": base + 0.1 * torch.randn(4, 3, 16, 1)} for _ in range(4)]
    losses = []
    trainer = _trainer(IdentityBottleneck(), data, epochs=15)
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(loss_terms(e.state.output)["loss"]))
    trainer.run()
    assert losses[-1] < 0.2 * losses[0]
    terms = loss_terms(trainer.state.output)
    assert set(terms) >= {"loss", "rec_loss", "bottleneck_loss"}


def test_trainer_reports_perplexity_and_fails_clearly_on_nan():
    data = [{"bundle": torch.randn(2, 3, 16, 16)}]
    trainer = _trainer(VectorQuantizer(8, 8), data, epochs=1)
    trainer.run()
    assert 1.0 <= loss_terms(trainer.state.output)["perplexity"] <= 8.0
    bad = [{"bundle": torch.full((2, 3, 16, 16), float("nan"))}]
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        _trainer(IdentityBottleneck(), bad, epochs=1).run()


def test_prepare_batch_names_missing_key():
    with pytest.raises(KeyError, match="'bundle'"):
        PrepareAutoencoderBatch("bundle")({"image": torch.zeros(1)})


def test_reconstruction_inferer_returns_tensor():
    out = ReconstructionInferer()(torch.zeros(1, 3, 16, 16), ResNetAutoencoder(channels=(4, 8), latent_channels=4))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 16, 16)


def test_standardized_input_makes_reconstruction_equivariant_to_position_and_size():
    torch.manual_seed(0)
    net = ResNetAutoencoder(channels=(8, 16), latent_channels=8, standardize_input=True).eval()
    x = torch.randn(2, 3, 16, 16)
    shift, factor = torch.tensor([5.0, -3.0, 2.0]).view(1, 3, 1, 1), 4.0
    with torch.no_grad():
        out = net(x)
        moved = net(x * factor + shift)
    torch.testing.assert_close(moved.reconstruction, out.reconstruction * factor + shift, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(moved.encoding, out.encoding, atol=1e-5, rtol=1e-5)
    # decode restores position and size only when handed the statistics
    stats = net.input_statistics(x)
    torch.testing.assert_close(net.decode(out.bottleneck.latent, stats), out.reconstruction)
    with pytest.raises(ValueError, match="input_statistics"):
        net.decode(out.bottleneck.latent)
    assert ResNetAutoencoder(channels=(8,), latent_channels=4).input_statistics(x) is None
