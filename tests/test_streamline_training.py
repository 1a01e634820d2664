"""A short real training run on the synthetic default: loss drops and BUAN beats a trivial baseline."""

import numpy as np
import pytest
import torch

from monai_genvq.apps.streamlines import StreamlineGroups, bundle_adjacency_batched
from monai_genvq.engines import AutoencoderTrainer, PrepareAutoencoderBatch, loss_terms
from monai_genvq.networks import GumbelQuantizer, ResNetAutoencoder


@pytest.mark.slow
def test_vqdiff_learns_better_than_mean_streamline_baseline(cache_dir):
    torch.manual_seed(0)
    data = StreamlineGroups()  # generated under the session cache root (the fixture sets MONAI_GENVQ_CACHE)
    train = [{"bundle": torch.as_tensor(s["bundle"])} for s in data.train]
    val = torch.stack([torch.as_tensor(s["bundle"]) for s in data.validation])
    loader = torch.utils.data.DataLoader(train, batch_size=16, shuffle=True)
    net = ResNetAutoencoder(bottleneck=GumbelQuantizer(512, 64), standardize_input=True)  # as the bundle
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    losses = []
    trainer = AutoencoderTrainer(
        device=torch.device("cpu"),
        max_epochs=18,
        train_data_loader=loader,
        network=net,
        optimizer=optimizer,
        loss_function=torch.nn.MSELoss(),
        prepare_batch=PrepareAutoencoderBatch("bundle"),
    )
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(loss_terms(e.state.output)["loss"]))
    trainer.run()
    assert np.mean(losses[-10:]) < 0.1 * np.mean(losses[:10])

    net.eval()
    with torch.no_grad():
        reconstruction = net(val).reconstruction
    mean_streamline = val.mean(dim=2, keepdim=True).expand_as(val)  # every row replaced by the group mean
    model = bundle_adjacency_batched(reconstruction, val, threshold=0.05).mean()
    baseline = bundle_adjacency_batched(mean_streamline, val, threshold=0.05).mean()
    assert float((reconstruction - val).square().mean()) < float((mean_streamline - val).square().mean())
    assert float(model) > float(baseline) + 0.1, (float(model), float(baseline))
