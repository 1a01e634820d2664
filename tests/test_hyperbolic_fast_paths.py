"""The hyperbolic app's fast paths give what the plain computations give (issue 21 / issue 20).

Whole-volume embedding (channels-last slabs along the last axis on oneDNN, 1×1×1 heads as matrix
products), k-means on per-point scalars, the cluster-to-label table lookup, the triplet sampler's flat
mask indices, and the trainer's ``compile`` option (its eager fallback: a real compilation takes minutes).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.exc import InternalTorchDynamoError

from monai_genvq.apps.hyperbolic import HyperbolicVAE, HyperbolicVAETrainer, TripletPatchSampler
from monai_genvq.apps.hyperbolic.kmeans import _mobius_diff_terms, _segment_frechet, _segment_sum
from monai_genvq.apps.hyperbolic.manifold import as_curvature, bound_tangent0, expmap0, gmath, project
from monai_genvq.apps.hyperbolic.segmentation import matched_labels
from monai_genvq.apps.hyperbolic.vae import patch_offsets
from monai_genvq.utils.compile import CompiledForward
from monai_genvq.utils.errors import OptionError


def _plain_embedding(net: HyperbolicVAE, volume: torch.Tensor) -> torch.Tensor:
    """One pass over the whole padded volume, contiguous layout, 1×1×1 convolutions, out-of-place ELU."""
    lo, hi = patch_offsets(net.patch_size)
    h = F.pad(volume, (lo, hi, lo, hi, lo, hi), mode="replicate")
    for layer in net.encoder:
        h = F.elu(h) if isinstance(layer, torch.nn.ELU) else layer(h)
    mu_t = bound_tangent0(net.to_mu(h).movedim(1, -1), net.max_radius)
    return expmap0(mu_t, as_curvature(net.curvature, mu_t)).movedim(-1, 1)


def test_embed_volume_equals_a_plain_single_pass():
    torch.manual_seed(0)
    net = HyperbolicVAE(in_channels=2, channels=(4, 8, 8, 8)).eval()
    vol = torch.rand(2, 2, 13, 11, 21)  # 21 = 2 slabs of 8 + a partial one
    with torch.no_grad():
        emb = net.embed_volume(vol, slab=8)
        ref = _plain_embedding(net, vol)
        assert emb.shape == (2, 2, 13, 11, 21) and emb.is_contiguous()
        assert torch.allclose(emb, ref, atol=1e-6)
        assert torch.allclose(net.embed_volume(vol[0], slab=5), ref[0], atol=1e-6)  # unbatched, other slabs


def test_posterior_heads_equal_their_1x1_convolutions():
    torch.manual_seed(0)
    net = HyperbolicVAE()
    h = net.encoder(torch.rand(6, 1, 10, 10, 10))
    mu, sigma = net._posterior(h)
    mu_t = bound_tangent0(net.to_mu(h).movedim(1, -1), net.max_radius)
    assert torch.allclose(mu, expmap0(mu_t, as_curvature(1.0, mu_t)), atol=1e-6)
    sigma_ref = (F.softplus(net.to_sigma(h).movedim(1, -1)) + 1e-4).clamp(max=net.max_sigma)
    assert torch.allclose(sigma, sigma_ref, atol=1e-6)
    (mu.sum() + sigma.sum()).backward()  # the heads' weights get gradients through the matrix product
    assert net.to_mu.weight.grad.abs().sum() > 0 and net.to_sigma.weight.grad.abs().sum() > 0


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
def test_embed_volume_runs_every_convolution_on_onednn():
    """Batch-1 slabs along the first axis sent the 1-channel first layer to PyTorch's slow_conv3d."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    net = HyperbolicVAE(channels=(4, 8, 8, 8)).eval()
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        net.embed_volume(torch.rand(1, 150, 150, 6))
    ops = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops
    assert "aten::slow_conv3d_forward" not in ops


def _ball_points(n: int, d: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    k = as_curvature(1.0, torch.zeros((), dtype=torch.float64))
    return project(expmap0(scale * torch.randn(n, d, generator=gen, dtype=torch.float64), k), k)


def test_mobius_diff_terms_give_geoopts_distance_and_log_map():
    x, mu = _ball_points(400, 3, 0, 1.5), _ball_points(5, 3, 1, 1.5)
    x[0] = mu[2]  # a point on its centre
    labels = torch.arange(400) % 5
    labels[0] = 2
    k = as_curvature(1.0, x)
    norm, half_dist, alpha, den = _mobius_diff_terms(x.T.contiguous(), x.square().sum(1), mu, labels, 1.0)
    m = mu[labels]
    assert torch.allclose(2 * half_dist, gmath.dist(m, x, k=k), atol=1e-9)
    beta = 1 - m.square().sum(1, keepdim=True)
    w = (-alpha[:, None] * m + beta * x) / den[:, None]  # (-μ) ⊕ x
    assert torch.allclose(w, gmath.mobius_add(-m, x, k=k), atol=1e-9)
    assert torch.allclose(norm, w.norm(dim=1), atol=1e-9)
    log = 2 * half_dist[:, None] * w / (gmath.lambda_x(m, k=k, keepdim=True) * norm.clamp_min(1e-15)[:, None])
    assert torch.allclose(log, gmath.logmap(m, x, k=k), atol=1e-9)


def _reference_frechet(x, labels, centres, iters):
    """The Karcher iteration with geoopt's (n, d) maps (the implementation before issue 20)."""
    n, k = centres.shape[0], as_curvature(1.0, x)
    w = torch.ones(x.shape[0], dtype=x.dtype)
    mass = _segment_sum(w, labels, n)
    has = mass[:, None] > 0
    lam = gmath.lambda_x(x, k=k)
    num = _segment_sum(x * lam[:, None], labels, n)
    den = _segment_sum(lam - 1, labels, n).clamp_min(1e-12)
    mu = project(gmath.mobius_scalar_mul(torch.tensor(0.5, dtype=x.dtype), num / den[:, None], k=k), k)
    mu = torch.where(has, mu, centres)

    def objective(m):
        return _segment_sum(gmath.dist(m[labels], x, k=k).square(), labels, n)

    f = objective(mu)
    for _ in range(iters):
        step = _segment_sum(gmath.logmap(mu[labels], x, k=k), labels, n) / mass.clamp_min(1e-12)[:, None]
        cand = project(gmath.expmap(mu, step, k=k), k)
        f_new = objective(cand)
        better = (f_new < f)[:, None] & has
        mu, f = torch.where(better, cand, mu), torch.where(better[:, 0], f_new, f)
        if float((gmath.lambda_x(mu, k=k) * step.norm(dim=-1)).max()) < 1e-12 or not bool(better.any()):
            break
    return mu


def test_segment_frechet_equals_the_geoopt_karcher_iteration():
    # spread-out clusters away from the origin, where the Karcher steps move the gyro-midpoint start
    gen = torch.Generator().manual_seed(3)
    where = torch.tensor([[1.2, 0.3], [-0.9, 1.0], [0.2, -1.4], [0.0, 0.0]], dtype=torch.float64)
    labels = torch.randint(3, (600,), generator=gen)  # cluster 3 is empty: keeps its centre
    k = as_curvature(1.0, where)
    x = project(expmap0(where[labels] + 0.7 * torch.randn(600, 2, generator=gen, dtype=torch.float64), k), k)
    centres = _ball_points(4, 2, 4)
    start = _segment_frechet(x, labels, centres, 1.0, 0, 1e-12, None)
    for iters in (1, 2, 30):
        fast = _segment_frechet(x, labels, centres, 1.0, iters, 1e-12, None)
        assert torch.allclose(fast, _reference_frechet(x, labels, centres, iters), atol=1e-9), iters
        assert (fast[:3] - start[:3]).norm(dim=1).min() > 1e-4, "the Karcher steps must have moved every centre"
    assert torch.equal(fast[3], centres[3])


def test_matched_labels_equals_the_per_voxel_lookup():
    clusters = np.random.default_rng(0).integers(-1, 6, (7, 8, 9))
    mapping = {0: 3, 1: 0, 4: 5}  # label -> cluster; clusters 1, 2 and 4 are unmatched
    lut = {v: k for k, v in mapping.items()}
    expected = np.vectorize(lambda v: lut.get(int(v), 0 if v < 0 else 255), otypes=[np.int64])(clusters)
    assert np.array_equal(matched_labels(clusters, mapping), expected)
    assert np.array_equal(matched_labels(np.full(3, -1), {}), np.zeros(3, np.int64))


def test_triplet_parents_are_centred_on_mask_voxels():
    vol = torch.arange(40 * 40 * 40, dtype=torch.float32).reshape(1, 40, 40, 40)  # a voxel's value is its index
    mask = np.zeros((40, 40, 40), bool)
    mask[12, 30, 17] = mask[25, 9, 20] = True
    sampler = TripletPatchSampler(
        patch_size=10, parent_size=(10, 10), mask_fn=lambda v: mask, sampling="ours"
    ).set_random_state(0)
    centres = {int(t[0, 0, 5, 5, 5]) for t in sampler.sample(vol, 20)}  # parent = the exact 10³ crop at centre - 5
    assert centres == {12 * 1600 + 30 * 40 + 17, 25 * 1600 + 9 * 40 + 20}
    with pytest.raises(ValueError, match="sampling mask has shape"):
        TripletPatchSampler(patch_size=10, mask_fn=lambda v: mask[:-1]).sample(vol, 1)


class _FailingCompile:
    """Stands in for torch.compile when compilation fails (e.g. no C++ compiler): raises at the first call."""

    def __init__(self):
        self.calls = 0

    def __call__(self, module, **kwargs):
        def compiled(*args, **kw):
            self.calls += 1
            raise InternalTorchDynamoError("no working C++ compiler found")

        return compiled


def test_compiled_forward_falls_back_to_eager_with_a_warning(monkeypatch):
    torch.manual_seed(0)
    net, x = torch.nn.Linear(3, 2), torch.rand(4, 3)
    assert CompiledForward(net, enabled=False).compiled is False
    fake = _FailingCompile()
    monkeypatch.setattr(torch, "compile", fake)
    forward = CompiledForward(net, enabled="true", name="test net")
    assert forward.compiled
    with pytest.warns(RuntimeWarning, match="compiling the test net failed.*no working C\\+\\+ compiler"):
        assert torch.equal(forward(x), net(x))
    assert not forward.compiled and "InternalTorchDynamoError" in forward.error
    forward(x)
    assert fake.calls == 1  # later calls go straight to the eager module
    with pytest.raises(OptionError, match="--compile must be true or false"):
        CompiledForward(net, enabled="maybe")


def test_trainer_compile_option_runs_the_compiled_forward_and_keeps_eager_keys(monkeypatch):
    calls = []

    def tracing_compile(module, **kwargs):
        def compiled(*args, **kw):
            calls.append(kwargs)
            return module(*args, **kw)

        return compiled

    monkeypatch.setattr(torch, "compile", tracing_compile)
    torch.manual_seed(0)
    net = HyperbolicVAE(channels=(4, 4, 4, 4), gyro_channels=2)
    keys = list(net.state_dict())
    batch = {k: torch.rand(2, 1, 10, 10, 10) for k in ("parent", "child", "negative")}
    opt = torch.optim.Adam(net.parameters())
    trainer = HyperbolicVAETrainer("cpu", 1, [batch], net, opt, compile=True, compile_kwargs={"mode": "default"})
    trainer.run()
    assert calls == [{"mode": "default"}]
    assert trainer.network is net and list(trainer.network.state_dict()) == keys
    assert not HyperbolicVAETrainer("cpu", 1, [batch], net, opt).forward_network.compiled
