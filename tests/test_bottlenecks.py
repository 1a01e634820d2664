"""Known-answer and invariant tests of the bottlenecks (AE, VAE, VQ, VQ-EMA, VQ-Diff)."""

import math

import numpy as np
import pytest
import torch

from monai_genvq.losses import gaussian_kl
from monai_genvq.networks import (
    EMAQuantizer,
    GaussianBottleneck,
    GumbelQuantizer,
    IdentityBottleneck,
    MonaiQuantizerAdapter,
    ResNetAutoencoder,
    VectorQuantizer,
    codebook_perplexity,
)

CODEBOOK = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])


def _with_codebook(quantizer, codebook=CODEBOOK):
    with torch.no_grad():
        quantizer.codebook.copy_(codebook)
    return quantizer


def _all_bottlenecks(spatial_dims, channels=8):
    return [
        IdentityBottleneck(),
        GaussianBottleneck(spatial_dims, channels),
        VectorQuantizer(16, channels),
        EMAQuantizer(16, channels),
        GumbelQuantizer(16, channels),
    ]


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_every_bottleneck_keeps_shape_in_1d_2d_3d(spatial_dims):
    z = torch.randn(2, 8, *([4] * spatial_dims))
    for bottleneck in _all_bottlenecks(spatial_dims):
        out = bottleneck(z)
        assert out.latent.shape == z.shape, type(bottleneck).__name__
        assert out.loss.dim() == 0 and torch.isfinite(out.loss)
        if hasattr(bottleneck, "num_embeddings"):
            assert out.indices.shape == (2, *([4] * spatial_dims))
            assert 1.0 <= float(out.perplexity) <= 16.0


def test_vector_quantizer_known_assignment_loss_and_straight_through():
    vq = _with_codebook(VectorQuantizer(3, 2, commitment_cost=0.25))
    # latents (B=1, D=2, W=3): (0.1, 0.1) -> code 0, (0.9, -0.2) -> code 1, (0.2, 1.5) -> code 2
    z = torch.tensor([[[0.1, 0.9, 0.2], [0.1, -0.2, 1.5]]], requires_grad=True)
    out = vq(z)
    assert out.indices.tolist() == [[0, 1, 2]]
    assert torch.allclose(out.quantized, CODEBOOK[[0, 1, 2]].t().unsqueeze(0))
    sq_err = ((0.1**2 + 0.1**2) + (0.1**2 + 0.2**2) + (0.2**2 + 0.5**2)) / 6
    assert math.isclose(out.loss.item(), 1.25 * sq_err, rel_tol=1e-5)
    # straight-through: d(sum quantized)/dz is the identity, plus the commitment gradient
    vq.zero_grad()
    out.quantized.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))
    assert vq.codebook.grad is None or torch.all(vq.codebook.grad == 0)


def test_ema_quantizer_moves_code_to_ema_of_assigned_latents():
    ema = _with_codebook(EMAQuantizer(3, 2, decay=0.5, epsilon=1e-5))
    ema.embedding_sum.copy_(CODEBOOK)
    ema.cluster_size.fill_(1.0)
    z = torch.tensor([[[0.8, 1.2], [0.0, 0.0]]])  # both latents nearest to code 1 = (1, 0)
    ema.train()
    ema(z)
    # cluster_size[1] = 0.5·1 + 0.5·2 = 1.5; embedding_sum[1] = 0.5·(1,0) + 0.5·(2,0) = (1.5, 0)
    assert math.isclose(float(ema.cluster_size[1]), 1.5, rel_tol=1e-6)
    total = float(ema.cluster_size.sum())
    smoothed = (1.5 + 1e-5) / (total + 3e-5) * total
    assert torch.allclose(ema.codebook[1], torch.tensor([1.5 / smoothed, 0.0]), atol=1e-6)
    before = ema.codebook.clone()
    ema.eval()
    ema(z)
    assert torch.equal(ema.codebook, before), "evaluation must not update the codebook"


def test_gumbel_soft_eval_equals_naive_softmax_mix_and_hard_is_nearest():
    torch.manual_seed(0)
    quantizer = GumbelQuantizer(32, 4, temperature=10.0).eval()
    z = torch.randn(3, 4, 5)
    flat = z.movedim(1, -1).reshape(-1, 4)
    naive_d = ((flat[:, None, :] - quantizer.codebook[None]) ** 2).sum(-1)  # (N, K, D) reference
    expected = torch.softmax(-naive_d / 10.0, dim=1) @ quantizer.codebook
    out = quantizer(z)
    assert torch.allclose(out.latent.movedim(1, -1).reshape(-1, 4), expected, atol=1e-5)
    assert torch.allclose(out.latent, quantizer(z).latent), "soft evaluation must be deterministic"
    quantizer.eval_mode = "hard"
    hard = quantizer(z)
    assert torch.equal(hard.indices.reshape(-1), naive_d.argmin(1))
    assert torch.allclose(hard.latent.movedim(1, -1).reshape(-1, 4), quantizer.codebook[naive_d.argmin(1)])


def test_gumbel_codebook_receives_gradients_from_reconstruction():
    torch.manual_seed(0)
    net = ResNetAutoencoder(
        channels=(8, 16),
        latent_channels=4,
        num_res_blocks=1,
        bottleneck=GumbelQuantizer(16, 4, temperature=10.0, init_std=2.0),
    )
    x = torch.randn(2, 3, 16, 16)
    out = net(x)
    assert float(out.bottleneck.loss) == 0.0  # the gradient below comes from reconstruction alone
    (out.reconstruction - x).square().mean().backward()
    grad = net.bottleneck.codebook.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert int((grad.abs().sum(1) > 0).sum()) >= 8, "a soft mix should reach most codes, not only the argmin"
    # the straight-through VQ codebook gets nothing from the reconstruction path
    vq_net = ResNetAutoencoder(channels=(8, 16), latent_channels=4, num_res_blocks=1, bottleneck=VectorQuantizer(16, 4))
    vq_out = vq_net(x)
    (vq_out.reconstruction - x).square().mean().backward()
    assert vq_net.bottleneck.codebook.grad is None or float(vq_net.bottleneck.codebook.grad.abs().sum()) == 0.0


def test_gumbel_training_is_stochastic_and_concentrates_as_temperature_drops():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 6)
    warm = GumbelQuantizer(8, 4, temperature=10.0).train()
    assert not torch.allclose(warm(z).latent, warm(z).latent)
    cold = GumbelQuantizer(8, 4, temperature=1e-3).eval()
    cold.load_state_dict(warm.state_dict())
    assert torch.allclose(cold(z).probs.amax(-1), torch.ones(2, 6), atol=1e-4)


def test_perplexity_known_answers():
    assert math.isclose(float(codebook_perplexity(4, indices=torch.tensor([0, 1, 2, 3]))), 4.0, rel_tol=1e-6)
    assert math.isclose(float(codebook_perplexity(4, indices=torch.tensor([2, 2, 2]))), 1.0, rel_tol=1e-6)
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    assert math.isclose(float(codebook_perplexity(4, probs=probs)), 2.0, rel_tol=1e-6)


def test_gaussian_bottleneck_kl_and_eval_mean():
    assert torch.allclose(gaussian_kl(torch.zeros(3), torch.zeros(3), "elementwise"), torch.zeros(3))
    # KL(N(1, e^1) || N(0, 1)) = 0.5 (1 + e − 1 − 1)
    assert math.isclose(
        float(gaussian_kl(torch.tensor(1.0), torch.tensor(1.0), "elementwise")), 0.5 * (math.e - 1), rel_tol=1e-6
    )
    bottleneck = GaussianBottleneck(2, 4).eval()
    out = bottleneck(torch.randn(1, 4, 3, 3))
    assert torch.equal(out.latent, out.mean)


def test_quantizer_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"expects \(B, 8, \*spatial\)"):
        VectorQuantizer(16, 8)(torch.randn(2, 4, 3, 3))


def test_adapter_plugs_into_monai_vqvae():
    from monai.networks.nets import VQVAE

    net = VQVAE(
        spatial_dims=2,
        in_channels=1,
        out_channels=1,
        channels=(8, 16),
        num_res_channels=(8, 16),
        num_res_layers=1,
        embedding_dim=4,
        num_embeddings=16,
        downsample_parameters=((2, 4, 1, 1),) * 2,
        upsample_parameters=((2, 4, 1, 1, 0),) * 2,
    )
    net.quantizer = MonaiQuantizerAdapter(GumbelQuantizer(16, 4))
    x = torch.randn(2, 1, 16, 16)
    reconstruction, loss = net(x)
    assert reconstruction.shape == x.shape
    (reconstruction.square().mean() + loss).backward()
    assert net.quantizer.quantizer.codebook.grad is not None
    assert net.index_quantize(x).shape == (2, 4, 4)
    assert 1.0 <= float(net.quantizer.perplexity) <= 16.0


def test_fused_soft_assignment_matches_autograd_of_the_plain_expression(monkeypatch):
    from monai_genvq.networks.bottlenecks import soft_assignment

    monkeypatch.setattr(soft_assignment, "_ROWS_PER_BLOCK", 7)  # several blocks, a ragged last one
    torch.manual_seed(0)
    z = torch.randn(20, 5, dtype=torch.float64, requires_grad=True)
    codes = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: soft_assignment.soft_codebook_assignment(a, b, 3.0, gumbel_noise=False)[0], (z, codes)
    )
    # with noise: identical to the unfused softmax mix given the same Gumbel draw (one block)
    monkeypatch.setattr(soft_assignment, "_ROWS_PER_BLOCK", 1024)
    torch.manual_seed(1)
    q, p, idx = soft_assignment.soft_codebook_assignment(z, codes, 3.0, gumbel_noise=True)
    torch.manual_seed(1)
    g = soft_assignment.sample_gumbel((20, 9)).double()
    ref_p = torch.softmax((-(torch.cdist(z, codes) ** 2) + g) / 3.0, 1)
    torch.testing.assert_close(p, ref_p.detach())
    assert torch.equal(idx, ref_p.argmax(1))
    grads = torch.autograd.grad(q.square().sum(), (z, codes))
    ref_grads = torch.autograd.grad((ref_p @ codes).square().sum(), (z, codes))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_table_gumbel_samples_follow_the_gumbel_law():
    from scipy import stats

    from monai_genvq.networks.bottlenecks.soft_assignment import sample_gumbel

    torch.manual_seed(0)
    g = sample_gumbel((200_000,)).double().numpy()
    assert stats.kstest(g, "gumbel_r").pvalue > 0.01
    assert abs(g.mean() - np.euler_gamma) < 0.01
