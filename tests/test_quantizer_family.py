"""Known-answer tests of the quantizer family: neural gas, fuzzy c-means, sampled expectation,
and the shared codebook monitoring (use, collapse, dead-code reset)."""

import math
import warnings

import pytest
import torch

from monai_genvq.losses import posterior_weighted_vq_loss
from monai_genvq.networks import (
    CodebookCollapseWarning,
    EMAQuantizer,
    FuzzyCMeansQuantizer,
    GumbelQuantizer,
    MonaiQuantizerAdapter,
    NeuralGasQuantizer,
    ResNetAutoencoder,
    SampledExpectationQuantizer,
    VectorQuantizer,
    codebook_statistics,
    codebook_use,
    distance_ranks,
    fuzzy_loss_weights,
    fuzzy_memberships,
    neural_gas_lambda,
    neural_gas_posterior,
    sample_code_mean,
)

CODEBOOK = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])


def _with_codebook(quantizer, codebook=CODEBOOK):
    with torch.no_grad():
        quantizer.codebook.copy_(codebook)
    return quantizer


def _new_quantizers(k=16, d=8):
    return [
        NeuralGasQuantizer(k, d, lambda_init=2.0),
        FuzzyCMeansQuantizer(k, d, fuzzifier=1.5, loss="original"),
        FuzzyCMeansQuantizer(k, d, fuzzifier=2.0, loss="posterior", output="soft"),
        FuzzyCMeansQuantizer(k, d, fuzzifier=1.5, loss="normalised"),
        SampledExpectationQuantizer(k, d, num_samples=4),
    ]


# ---------------------------------------------------------------- neural gas


def test_neural_gas_ranks_and_weights_known_answer():
    d = torch.tensor([[4.0, 1.0, 9.0], [0.5, 0.5, 0.1]])
    assert distance_ranks(d).tolist() == [[1, 0, 2], [1, 2, 0]]  # tie broken by the lower index
    q = neural_gas_posterior(d, lam=1.0)
    norm = 1 + math.exp(-1) + math.exp(-2)
    expected = torch.tensor([[math.exp(-1), 1.0, math.exp(-2)], [math.exp(-1), math.exp(-2), 1.0]]) / norm
    assert torch.allclose(q, expected, atol=1e-6)
    assert torch.equal(neural_gas_posterior(d, lam=0.0), torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    # truncation: only ranks with weight >= tolerance·winner are kept, the rest renormalised
    torch.manual_seed(0)
    dist = torch.rand(20, 64)
    full, cut = neural_gas_posterior(dist, 0.5, tolerance=0.0), neural_gas_posterior(dist, 0.5, tolerance=1e-3)
    assert int((cut[0] > 0).sum()) == math.ceil(0.5 * math.log(1e3)) + 1 == 5
    assert torch.allclose(cut, full, atol=2e-3) and torch.allclose(cut.sum(1), torch.ones(20))
    assert torch.equal(cut.argmax(1), dist.argmin(1))
    # λ → ∞: uniform
    assert torch.allclose(neural_gas_posterior(d, lam=1e6), torch.full((2, 3), 1 / 3), atol=1e-5)


def test_fixed_lambda_neural_gas_weights_match_the_formula_at_every_step():
    """Thesis (seed 004) setting: λ fixed (3 or 10), q_k ∝ exp(−rank_k/λ) (eq. 4.3) at every training step."""
    torch.manual_seed(0)
    k = 64
    for lam in (3.0, 10.0):
        ng = NeuralGasQuantizer(k, 3, lambda_init=lam, lambda_final=lam, decay_steps=0).train()
        for _ in range(5):
            z = torch.randn(2, 3, 7)
            out = ng(z)
            assert ng.current_lambda == lam
            flat = z.movedim(1, -1).reshape(-1, 3)
            ranks = torch.cdist(flat, ng.codebook.detach()).argsort(1).argsort(1).double()
            expected = torch.exp(-ranks / lam)
            expected = expected / expected.sum(1, keepdim=True)
            assert torch.allclose(out.probs.reshape(-1, k).double(), expected, atol=1e-6)
        assert int(ng.step) == 5


def test_neural_gas_lambda_schedule():
    assert neural_gas_lambda(0, 10.0, 0.1, 100) == 10.0
    assert math.isclose(neural_gas_lambda(50, 10.0, 0.1, 100), 1.0, rel_tol=1e-9)
    assert math.isclose(neural_gas_lambda(100, 10.0, 0.1, 100), 0.1, rel_tol=1e-9)
    assert math.isclose(neural_gas_lambda(500, 10.0, 0.1, 100), 0.1, rel_tol=1e-9)
    assert neural_gas_lambda(500, 3.0, 0.1, 0) == 3.0
    ng = NeuralGasQuantizer(4, 2, lambda_init=10.0, lambda_final=0.1, decay_steps=2).train()
    for _ in range(2):
        ng(torch.randn(1, 2, 3))
    assert int(ng.step) == 2 and math.isclose(ng.current_lambda, 0.1, rel_tol=1e-9)
    ng.eval()(torch.randn(1, 2, 3))
    assert int(ng.step) == 2, "evaluation must not advance the schedule"


def test_neural_gas_loss_known_answer_and_vq_limit():
    z = torch.tensor([[[0.1, 0.9, 0.2], [0.1, -0.2, 1.5]]])
    flat = z[0].t()
    sq = ((flat[:, None] - CODEBOOK[None]) ** 2).sum(-1)
    ng = _with_codebook(NeuralGasQuantizer(3, 2, lambda_init=1.0, commitment_cost=0.25, codebook_cost=1.0))
    q = neural_gas_posterior(sq, 1.0)
    expected = 1.25 * (q * sq).sum() / (3 * 2)
    assert math.isclose(float(ng(z).loss), float(expected), rel_tol=1e-5)
    # λ = 0 is exactly the VQ-VAE loss and output
    ng0 = _with_codebook(NeuralGasQuantizer(3, 2, lambda_init=0.0))
    vq = _with_codebook(VectorQuantizer(3, 2, commitment_cost=0.25))
    out_ng, out_vq = ng0(z), vq(z)
    assert math.isclose(float(out_ng.loss), float(out_vq.loss), rel_tol=1e-5)
    assert torch.equal(out_ng.indices, out_vq.indices) and torch.allclose(out_ng.quantized, out_vq.quantized)


def test_neural_gas_gradient_reaches_all_ranked_codes_vq_only_winners():
    torch.manual_seed(0)
    z = torch.randn(1, 4, 3, requires_grad=True)
    ng = NeuralGasQuantizer(8, 4, lambda_init=3.0, init_std=1.0)
    out = ng(z)
    out.loss.backward()
    assert int((ng.codebook.grad.abs().sum(1) > 0).sum()) == 8, "every code gets a rank-weighted pull"
    vq = VectorQuantizer(8, 4, init_std=1.0)
    vq.load_state_dict(ng.state_dict(), strict=False)
    vq(z).loss.backward()
    assert int((vq.codebook.grad.abs().sum(1) > 0).sum()) <= 3, "VQ moves only the 3 winning codes"
    # straight-through: the reconstruction path gives identity gradient to z, nothing to the codebook
    z2 = z.detach().clone().requires_grad_(True)
    ng.zero_grad()
    ng(z2).quantized.sum().backward()
    assert torch.allclose(z2.grad, torch.ones_like(z2))
    assert ng.codebook.grad is None or float(ng.codebook.grad.abs().sum()) == 0.0


# ---------------------------------------------------------------- fuzzy c-means


def _bezdek_naive(d_sq, m):
    d = d_sq.sqrt()
    ratio = (d[:, :, None] / d[:, None, :]) ** (2 / (m - 1))  # (N, K_z, K_c)
    return 1.0 / ratio.sum(2)


def test_fuzzy_memberships_known_answers_sum_to_one_and_match_bezdek():
    assert torch.allclose(fuzzy_memberships(torch.tensor([[1.0, 4.0]]), 2.0), torch.tensor([[0.8, 0.2]]))
    assert torch.allclose(fuzzy_memberships(torch.tensor([[1.0, 4.0]]), 3.0), torch.tensor([[2 / 3, 1 / 3]]))
    torch.manual_seed(0)
    d_sq = torch.rand(50, 7).double() * 5 + 0.01
    for m in (1.2, 1.5, 2.0, 4.0):
        u = fuzzy_memberships(d_sq, m)
        assert torch.allclose(u.sum(1), torch.ones(50, dtype=torch.double))
        assert torch.allclose(u, _bezdek_naive(d_sq, m), atol=1e-10)


def test_fuzzy_memberships_become_hard_as_m_goes_to_one():
    torch.manual_seed(0)
    d_sq = torch.rand(100, 16) + 0.05
    nearest = torch.nn.functional.one_hot(d_sq.argmin(1), 16).float()
    previous = None
    for m in (2.0, 1.5, 1.1, 1.01, 1.001):
        u = fuzzy_memberships(d_sq, m)
        assert torch.isfinite(u).all()
        gap = float((u - nearest).abs().max())
        assert previous is None or gap <= previous + 1e-7
        previous = gap
    assert previous < 1e-3
    assert torch.equal(fuzzy_memberships(d_sq, 1.0), nearest)


def test_fuzzy_three_losses_known_answer():
    # z = (0, 1): squared distances to CODEBOOK = (1, 2, 1); m = 2 -> u ∝ 1/D = (0.4, 0.2, 0.4)
    z = torch.tensor([[[0.0], [1.0]]])
    u = torch.tensor([[0.4, 0.2, 0.4]])
    for loss, weighted_sum in (("original", 0.16 + 0.08 + 0.16), ("posterior", 1.2), ("normalised", 0.4 / 0.36)):
        fcm = _with_codebook(FuzzyCMeansQuantizer(3, 2, fuzzifier=2.0, loss=loss, data_init=False))
        out = fcm(z)
        assert torch.allclose(out.probs.reshape(1, 3), u, atol=1e-6)
        assert math.isclose(float(out.loss), 1.25 * weighted_sum / 2, rel_tol=1e-5), loss
    assert torch.allclose(fuzzy_loss_weights(u, 2.0, "normalised").sum(1), torch.ones(1))
    with pytest.raises(ValueError, match="loss must be one of"):
        FuzzyCMeansQuantizer(3, 2, loss="bezdek")


@pytest.mark.parametrize("output", ["hard", "soft"])
@pytest.mark.parametrize("fuzzifier", [1.0001, 1.5, 3.0])
def test_fuzzy_no_nan_when_latent_is_a_prototype(output, fuzzifier):
    fcm = _with_codebook(FuzzyCMeansQuantizer(3, 2, fuzzifier=fuzzifier, output=output, data_init=False))
    z = CODEBOOK.t().unsqueeze(0).clone().requires_grad_(True)  # each latent sits on a prototype
    out = fcm(z)
    assert torch.isfinite(out.loss) and torch.isfinite(out.quantized).all()
    assert torch.allclose(out.probs.reshape(3, 3), torch.eye(3), atol=1e-6)
    assert torch.allclose(out.quantized, z, atol=1e-5)
    (out.loss + out.quantized.square().sum()).backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(fcm.codebook.grad).all()


def test_fuzzy_gradients_hard_vs_soft_output():
    torch.manual_seed(0)
    z = torch.randn(1, 4, 5)
    hard = FuzzyCMeansQuantizer(8, 4, fuzzifier=2.0, output="hard", init_std=1.0)
    soft = FuzzyCMeansQuantizer(8, 4, fuzzifier=2.0, output="soft", init_std=1.0)
    soft.load_state_dict(hard.state_dict())
    hard(z.clone().requires_grad_(True)).quantized.square().sum().backward()
    assert hard.codebook.grad is None, "hard output: codebook learns from the loss only"
    z_soft = z.clone().requires_grad_(True)
    out = soft(z_soft)
    out.quantized.square().sum().backward()
    assert int((soft.codebook.grad.abs().sum(1) > 0).sum()) == 8, "soft output: every code gets reconstruction gradient"
    assert not torch.allclose(z_soft.grad, 2 * out.quantized.detach()), "soft output is not straight-through"
    hard.zero_grad()
    hard(z).loss.backward()
    assert int((hard.codebook.grad.abs().sum(1) > 0).sum()) == 8, "fuzzy loss pulls every code"


# ---------------------------------------------------------------- sampled expectation


def test_sampled_expectation_is_unbiased_and_concentrates():
    torch.manual_seed(0)
    probs = torch.tensor([[0.5, 0.3, 0.2]]).expand(40000, 3)
    expected = probs[:1] @ CODEBOOK
    for m in (1, 5):
        mean, samples = sample_code_mean(probs, CODEBOOK, m)
        assert samples.shape == (40000, m)
        std_err = mean.std(0) / math.sqrt(40000)
        assert torch.all((mean.mean(0) - expected[0]).abs() < 4 * std_err + 1e-6), m
    var1 = sample_code_mean(probs, CODEBOOK, 1)[0].var(0)
    var8 = sample_code_mean(probs, CODEBOOK, 8)[0].var(0)
    assert torch.allclose(var8, var1 / 8, rtol=0.1)


def test_sampled_expectation_quantizer_train_eval_and_gradients():
    torch.manual_seed(0)
    se = _with_codebook(SampledExpectationQuantizer(3, 2, num_samples=16, temperature=1.0))
    z = torch.tensor([[[0.1, 0.9, 0.2], [0.1, -0.2, 1.5]]], requires_grad=True)
    flat = z.detach()[0].t()
    q = torch.softmax(-((flat[:, None] - CODEBOOK[None]) ** 2).sum(-1), 1)
    se.eval()
    out = se(z)
    assert out.indices.tolist() == [[0, 1, 2]] and torch.allclose(out.probs[0], q, atol=1e-6)
    assert torch.allclose(out.quantized[0].t(), CODEBOOK)
    se.eval_mode = "expectation"
    assert torch.allclose(se(z).quantized[0].t(), q @ CODEBOOK, atol=1e-6)
    se.train()
    out = se(z)
    codes_set = set(map(tuple, CODEBOOK.tolist()))
    assert not all(tuple(v) in codes_set for v in out.quantized[0].t().tolist()), "training output is a mean of draws"
    (out.quantized.sum() + out.loss).backward()
    assert torch.isfinite(z.grad).all() and se.codebook.grad is not None
    z2 = z.detach().clone().requires_grad_(True)
    se(z2).quantized.sum().backward()
    assert torch.allclose(z2.grad, torch.ones_like(z2)), "straight-through estimator"


# ---------------------------------------------------------------- shared interface and monitoring


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_new_quantizers_keep_shape_in_1d_2d_3d(spatial_dims):
    z = torch.randn(2, 8, *([4] * spatial_dims))
    for quantizer in _new_quantizers():
        for mode in (True, False):
            out = quantizer.train(mode)(z)
            assert out.latent.shape == z.shape, type(quantizer).__name__
            assert out.indices.shape == (2, *([4] * spatial_dims))
            assert out.probs.shape == (2, *([4] * spatial_dims), 16)
            assert torch.isfinite(out.loss) and 1.0 <= float(out.perplexity) <= 16.0
            assert math.isclose(float(out.code_use), len(out.indices.unique()) / 16, rel_tol=1e-6)


def test_new_quantizers_plug_into_autoencoder_and_monai_vqvae():
    from monai.networks.nets import VQVAE

    x = torch.randn(2, 1, 16, 16)
    for quantizer in _new_quantizers(d=4):
        net = ResNetAutoencoder(
            spatial_dims=2, in_channels=1, channels=(8, 16), latent_channels=4, num_res_blocks=1, bottleneck=quantizer
        )
        out = net(x)
        (out.reconstruction.square().mean() + out.bottleneck.loss).backward()
        assert net.encoder[0].conv.weight.grad is not None
    vqvae = VQVAE(
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
    vqvae.quantizer = MonaiQuantizerAdapter(NeuralGasQuantizer(16, 4, lambda_init=2.0))
    reconstruction, loss = vqvae(x)
    (reconstruction.square().mean() + loss).backward()
    assert vqvae.index_quantize(x).shape == (2, 4, 4)


def test_codebook_use_and_statistics_known_answers():
    assert math.isclose(float(codebook_use(4, torch.tensor([0, 0, 3]))), 0.5)
    stats = codebook_statistics(8, torch.tensor([0, 1, 2, 3] * 5), collapse_threshold=2.0)
    assert stats == {
        "perplexity": pytest.approx(4.0),
        "code_use": 0.5,
        "codes_used": 4,
        "num_embeddings": 8,
        "collapsed": False,
    }
    assert codebook_statistics(8, torch.zeros(20, dtype=torch.long), collapse_threshold=2.0)["collapsed"] is True


def test_collapse_is_detected_and_reported():
    vq = _with_codebook(VectorQuantizer(3, 2, collapse_threshold=1.5)).train()
    collapsed_z = torch.full((1, 2, 10), 0.05)  # every latent on code 0 -> perplexity 1
    with pytest.warns(CodebookCollapseWarning, match="perplexity 1.00 < collapse_threshold 1.5"):
        out = vq(collapsed_z)
    assert out.collapsed is True and vq.collapsed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not every step
        vq(collapsed_z)
    healthy = vq(CODEBOOK.t().unsqueeze(0))
    assert healthy.collapsed is False and not vq.collapsed
    assert VectorQuantizer(3, 2)(collapsed_z).collapsed is None, "check is off by default"


@pytest.mark.parametrize("cls", [VectorQuantizer, EMAQuantizer, NeuralGasQuantizer, GumbelQuantizer])
def test_dead_codes_are_reseeded_from_batch_latents(cls):
    torch.manual_seed(0)
    # Gumbel training noise is part of that method: spread the geometry so it cannot flip assignments
    scale = 10.0 if cls is GumbelQuantizer else 1.0
    codebook = torch.tensor([[0.0, 0.0], [1.0, 0.0], [50.0, 50.0]]) * scale
    quantizer = _with_codebook(cls(3, 2, dead_code_steps=2), codebook)
    quantizer.train()
    z = torch.tensor([[[0.1, 0.9, 0.0, 1.1], [0.0, 0.1, 0.2, -0.1]]]) * scale
    before = quantizer.codebook[2].clone()
    quantizer(z)
    assert int(quantizer.steps_unused[2]) == 1 and int(quantizer.steps_unused[:2].sum()) == 0
    quantizer(z)
    assert int(quantizer.steps_unused[2]) == 2
    if not isinstance(quantizer, EMAQuantizer):  # (EMA moves every code by its statistics each step)
        assert torch.equal(quantizer.codebook[2], before), "re-seeding waits for the next step's start"
    out = quantizer(z)  # code 2 is re-seeded before this step's assignment
    assert 2 in out.indices, "the re-seeded code is back in use in the same step"
    latents = z[0].t()
    assert any(torch.allclose(quantizer.codebook[2], v, atol=0.05 * scale) for v in latents), (
        "code 2 re-seeded from the batch"
    )
    assert float(quantizer.codebook[2].abs().max()) < 2 * scale


@pytest.mark.parametrize(
    "make",
    [
        lambda: NeuralGasQuantizer(8, 4, lambda_init=2.0, dead_code_steps=1),
        lambda: FuzzyCMeansQuantizer(8, 4, dead_code_steps=1, output="soft"),
        lambda: SampledExpectationQuantizer(8, 4, dead_code_steps=1, data_init=True),
    ],
    ids=["neural_gas", "fcm_soft", "sampled_expectation"],
)
def test_codebook_reseeding_never_breaks_backward(make):
    torch.manual_seed(0)
    quantizer = make().train()
    opt = torch.optim.SGD(quantizer.parameters(), lr=0.1)
    for _ in range(4):
        z = torch.randn(2, 4, 3, requires_grad=True)
        out = quantizer(z)
        (out.loss + out.quantized.square().mean()).backward()
        opt.step()
        opt.zero_grad()
    assert torch.isfinite(quantizer.codebook).all()
    if isinstance(quantizer, EMAQuantizer):
        assert float(quantizer.cluster_size[2]) == 1.0 and torch.allclose(
            quantizer.embedding_sum[2], quantizer.codebook[2]
        )


@pytest.mark.parametrize(
    "cls",
    [
        VectorQuantizer,
        EMAQuantizer,
        NeuralGasQuantizer,
        FuzzyCMeansQuantizer,
        SampledExpectationQuantizer,
        GumbelQuantizer,
    ],
)
def test_data_init_seeds_codebook_once_from_training_latents(cls):
    torch.manual_seed(0)
    quantizer = cls(4, 3, data_init=True)
    z = torch.randn(2, 3, 10) * 5 + 3
    latents = z.movedim(1, -1).reshape(-1, 3)
    quantizer.eval()(z)
    assert not bool(quantizer.data_initialized), "evaluation does not initialise"
    quantizer.train()(z)
    nearest = torch.cdist(quantizer.codebook.detach(), latents).min(1).values
    assert bool(quantizer.data_initialized) and float(nearest.max()) < 0.5, "every code sits near a latent"
    seeded = quantizer.codebook.detach().clone()
    quantizer(z * 0 - 100)
    if not isinstance(quantizer, (EMAQuantizer,)):  # EMA moves codes by statistics, but never re-seeds them
        assert torch.allclose(quantizer.codebook.detach(), seeded, atol=0.1), "seeded only once"


def test_fuzzy_memberships_are_degenerate_on_a_clumped_codebook_without_data_init():
    """Why data_init is FCM's default: tiny uniform(−1/K, 1/K) codes are all ~equidistant from a latent."""
    torch.manual_seed(0)
    z = torch.randn(1, 8, 50)
    clumped = FuzzyCMeansQuantizer(64, 8, fuzzifier=1.5, data_init=False).train()
    assert float(clumped(z).probs.max()) < 2.0 / 64
    seeded = FuzzyCMeansQuantizer(64, 8, fuzzifier=1.5).train()
    assert float(seeded(z).probs.amax(-1).mean()) > 0.3


def test_ema_statistics_start_as_one_observation_per_code():
    """Codes unused in a step keep their position; used ones move to the decayed mean of code + latents.

    With counts starting at 0 (and sums at the codes) an unused code was divided by ≈ epsilon and
    jumped to ~10⁵ times its norm, never to be used again.
    """
    torch.manual_seed(0)
    ema = EMAQuantizer(8, 2, decay=0.9).train()
    start = ema.codebook.clone()
    z = start[0].reshape(1, 2, 1) + 0.01 * torch.randn(1, 2, 5)  # every latent nearest to code 0
    out = ema(z)
    assert torch.equal(out.indices, torch.zeros_like(out.indices))
    assert torch.allclose(ema.codebook[1:], start[1:], rtol=1e-4), "unused codes stay where they were"
    latents = z[0].t()
    expected = (0.9 * start[0] + 0.1 * latents.sum(0)) / (0.9 + 0.1 * 5)
    assert torch.allclose(ema.codebook[0], expected, atol=1e-4)


def test_data_init_reads_the_command_lines_text_and_rejects_other_values():
    assert VectorQuantizer(4, 2, data_init="false").data_init is False  # bool("false") would be True
    assert EMAQuantizer(4, 2, data_init="True").data_init is True
    with pytest.raises(ValueError, match="data_init must be true or false, got 'yes'"):
        VectorQuantizer(4, 2, data_init="yes")


def test_ema_rejects_bad_decay_and_epsilon():
    with pytest.raises(ValueError, match="decay must be in"):
        EMAQuantizer(4, 2, decay=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        EMAQuantizer(4, 2, epsilon=0.0)


def test_default_quantizers_keep_their_checkpoint_keys():
    assert "steps_unused" not in VectorQuantizer(4, 2).state_dict()
    assert "steps_unused" in VectorQuantizer(4, 2, dead_code_steps=5).state_dict()
    assert "data_initialized" not in VectorQuantizer(4, 2).state_dict()


def test_posterior_weighted_loss_matches_naive_and_splits_gradients():
    torch.manual_seed(0)
    flat = torch.randn(6, 3, requires_grad=True)
    codebook = torch.randn(5, 3, requires_grad=True)
    w = torch.rand(6, 5)
    loss = posterior_weighted_vq_loss(flat, codebook, w, commitment_cost=0.3, codebook_cost=0.7)
    naive_sq = ((flat[:, None] - codebook[None]) ** 2).sum(-1)
    assert math.isclose(float(loss), float((w * naive_sq).sum() / 18), rel_tol=1e-5)
    loss.backward()
    g_flat, g_code = flat.grad.clone(), codebook.grad.clone()
    flat.grad = codebook.grad = None
    (0.3 * (w * naive_sq).sum() / 18).backward()
    assert torch.allclose(g_flat, flat.grad, atol=1e-6)
    assert torch.allclose(g_code, codebook.grad * 0.7 / 0.3, atol=1e-6)
