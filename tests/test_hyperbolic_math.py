"""Poincaré-ball math: geoopt identities used by the package, distributions, gyroplanes, clamping."""

import inspect
import math

import pytest
import torch
from conftest import REPO
from monai.bundle import ConfigParser
from scipy import integrate, stats

from monai_genvq.apps.hyperbolic import (
    MIN_SIGMA,
    GyroplaneConv3d,
    GyroplaneLayer,
    HyperbolicVAE,
    HyperbolicVAETrainer,
    as_curvature,
    dist,
    expmap0,
    gyroplane_conv3d,
    gyroplane_distance,
    hierarchical_triplet_loss,
    logmap0,
    project,
    riemannian_normal_log_prob,
    riemannian_normal_radius_cdf,
    riemannian_normal_radius_log_density,
    riemannian_normal_sample_radius,
    wrapped_normal_log_prob,
    wrapped_normal_rsample,
)
from monai_genvq.apps.hyperbolic.manifold import BOUNDARY_EPS, boundary_radius, gmath, lambda_x, log_sinhc


@pytest.fixture(autouse=True)
def _float64():
    """These identities are checked in float64; restore the previous default for other test files."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_geoopt_identities_the_layers_rely_on(c):
    torch.manual_seed(0)
    k = as_curvature(c)
    u = torch.randn(20, 3) * 0.7
    x = expmap0(u, k)
    assert torch.allclose(logmap0(x, k), u, atol=1e-8)
    # Riemannian norm at the origin is λ_0‖u‖ = 2‖u‖: d(0, expmap0(u)) = 2‖u‖ (the convention of distributions.py)
    assert torch.allclose(dist(torch.zeros_like(x), x, k), 2 * u.norm(dim=-1), atol=1e-8)
    # closed form 2/√c artanh(√c‖x‖)
    assert torch.allclose(
        dist(torch.zeros_like(x), x, k), 2 / math.sqrt(c) * torch.atanh(math.sqrt(c) * x.norm(dim=-1))
    )
    # transport from the origin is the scaling λ_0/λ_y
    v = torch.randn(20, 3)
    assert torch.allclose(gmath.parallel_transport0(x, v, k=k), v * 2 / lambda_x(x, k, keepdim=True))
    # d(μ, expmap_μ(ε/λ_μ)) = ‖ε‖ (orthonormal tangent coordinates)
    eps = torch.randn(20, 3) * 0.5
    y = gmath.expmap(x, eps / lambda_x(x, k, keepdim=True), k=k)
    assert torch.allclose(dist(x, y, k), eps.norm(dim=-1), atol=1e-7)
    # Möbius addition: (-x) ⊕ x = 0 and the distance is 2/√c artanh(√c‖(-x) ⊕ y‖)
    assert torch.allclose(gmath.mobius_add(-x, x, k=k), torch.zeros_like(x), atol=1e-10)
    m = gmath.mobius_add(-x, y, k=k).norm(dim=-1)
    assert torch.allclose(dist(x, y, k), 2 / math.sqrt(c) * torch.atanh(math.sqrt(c) * m), atol=1e-8)


def test_log_sinhc_matches_direct_formula_and_limits():
    x = torch.tensor([0.0, 1e-5, 0.5, 3.0, 30.0, 300.0])
    ref = torch.tensor(
        [
            0.0,
            1e-10 / 6,
            math.log(math.sinh(0.5) / 0.5),
            math.log(math.sinh(3.0) / 3.0),
            30 - math.log(60.0) + math.log1p(-math.exp(-60)),
            300 - math.log(600.0),
        ]
    )
    assert torch.allclose(log_sinhc(x), ref, rtol=1e-9, atol=1e-12)


def _integrate_disk(logp, c, r_max=14.0, nr=3000, nt=400):
    """∫ p dV over the 2-D ball in geodesic polar coordinates around the origin (dV = sinh(√c r)/√c dr dθ)."""
    r = torch.linspace(0, r_max, nr)
    t = torch.linspace(0, 2 * math.pi, nt + 1)[:-1]
    R, T = torch.meshgrid(r, t, indexing="ij")
    rho = torch.tanh(math.sqrt(c) * R / 2) / math.sqrt(c)
    z = torch.stack([rho * torch.cos(T), rho * torch.sin(T)], -1)
    dens = logp(z).exp() * torch.sinh(math.sqrt(c) * R) / math.sqrt(c)
    return float(torch.trapezoid(dens, r, dim=0).sum() * (2 * math.pi / nt))


@pytest.mark.parametrize("c", [1.0, 2.0])
def test_wrapped_normal_density_integrates_to_one(c):
    mu = torch.tensor([0.3, -0.2]) / math.sqrt(c)
    sigma = torch.tensor([0.4, 0.7])
    total = _integrate_disk(lambda z: wrapped_normal_log_prob(z, mu, sigma, c), c)
    assert abs(total - 1.0) < 2e-3


def test_wrapped_normal_flat_limit_is_a_gaussian():
    """c = 0: the density w.r.t. the flat model's volume (2^d dx) is N(2(z-μ); 0, σ²)."""
    mu, sigma = torch.tensor([0.1, -0.3]), torch.tensor([0.5, 0.2])
    z = torch.randn(50, 2)
    ref = torch.distributions.Normal(torch.zeros(2), sigma).log_prob(2 * (z - mu)).sum(-1)
    assert torch.allclose(wrapped_normal_log_prob(z, mu, sigma, 0.0), ref, atol=1e-10)


def test_wrapped_normal_samples_match_the_tangent_gaussian():
    torch.manual_seed(1)
    c, mu, sigma = 1.0, torch.tensor([0.5, 0.1]), torch.tensor([0.3, 0.6])
    z = wrapped_normal_rsample(mu, sigma, c, (20000,))
    k = as_curvature(c)
    eps = gmath.logmap(mu.expand_as(z), z, k=k) * lambda_x(mu, k)
    assert torch.allclose(eps.std(0), sigma, rtol=0.03)
    assert eps.mean(0).abs().max() < 0.02


@pytest.mark.parametrize("sigma", [0.3, 1.0, 1.8])
def test_riemannian_normal_density_integrates_to_one(sigma):
    mu = torch.tensor([0.2, 0.4])
    total = _integrate_disk(
        lambda z: riemannian_normal_log_prob(z, mu, torch.tensor([sigma]), 1.0), 1.0, r_max=18.0, nr=6000
    )
    assert abs(total - 1.0) < 2e-3


@pytest.mark.parametrize("d,sigma", [(2, 0.3), (2, 1.5), (3, 0.4), (3, 1.2), (5, 0.8)])
def test_riemannian_normal_radius_cdf_and_ks(d, sigma):
    c = 1.0
    s = torch.tensor(sigma)
    # the closed-form CDF equals the quadrature of the radial density
    for r in (0.2, 1.0, 3.0):
        quad, _ = integrate.quad(
            lambda t: math.exp(float(riemannian_normal_radius_log_density(torch.tensor(t), s, c, d))), 0, r
        )
        assert abs(quad - float(riemannian_normal_radius_cdf(torch.tensor(r), s, c, d))) < 1e-6
    torch.manual_seed(0)
    radii = riemannian_normal_sample_radius(torch.full((4000,), sigma), c, d)
    cdf = lambda r: riemannian_normal_radius_cdf(torch.as_tensor(r), s, c, d).numpy()  # noqa: E731
    assert stats.kstest(radii.numpy(), cdf).pvalue > 1e-3
    # a wrong σ is rejected by the same test
    assert (
        stats.kstest(
            radii.numpy(), lambda r: riemannian_normal_radius_cdf(torch.as_tensor(r), s * 1.3, c, d).numpy()
        ).pvalue
        < 1e-3
    )


def test_riemannian_normal_sigma_gradient_matches_finite_difference():
    """∂E[r]/∂σ by the implicit reparameterisation equals the derivative of the quadrature mean."""
    c, d, sigma = 1.0, 3, 0.7

    def mean_radius(s):
        f = lambda t: t * math.exp(float(riemannian_normal_radius_log_density(torch.tensor(t), torch.tensor(s), c, d)))  # noqa: E731
        return integrate.quad(f, 0, 30)[0]

    h = 1e-4
    fd = (mean_radius(sigma + h) - mean_radius(sigma - h)) / (2 * h)
    torch.manual_seed(0)
    s = torch.full((40000,), sigma, requires_grad=True)
    r = riemannian_normal_sample_radius(s, c, d)
    r.mean().backward()
    assert abs(float(s.grad.sum()) - fd) < 0.03 * abs(fd)


def test_gyroplane_distance_known_answer_and_sign():
    # plane through the origin with normal e1: the distance of x = t e1 is d(0, x) = 2 artanh(t) (signed)
    a = torch.tensor([1.0, 0.0])
    for t in (0.3, -0.6):
        x = torch.tensor([t, 0.0])
        assert torch.allclose(gyroplane_distance(x, torch.zeros(2), a, 1.0), torch.tensor(2 * math.atanh(t)))
        assert torch.allclose(gyroplane_distance(x, torch.zeros(2), -a, 1.0), torch.tensor(-2 * math.atanh(t)))


def _naive_gyro(x, p, a, c, padding):
    """Ganea et al. 2018's formula evaluated voxel by voxel, without geoopt."""
    b, d, X, Y, Z = x.shape
    cout, k3, _ = p.shape
    ks = round(k3 ** (1 / 3))
    xp = torch.zeros(b, d, X + 2 * padding, Y + 2 * padding, Z + 2 * padding)
    xp[:, :, padding : padding + X, padding : padding + Y, padding : padding + Z] = x
    ox, oy, oz = X + 2 * padding - ks + 1, Y + 2 * padding - ks + 1, Z + 2 * padding - ks + 1
    out = torch.zeros(b, cout, ox, oy, oz)

    def madd(u, v):
        uv, uu, vv = (u * v).sum(), (u * u).sum(), (v * v).sum()
        return ((1 + 2 * c * uv + c * vv) * u + (1 - c * uu) * v) / (1 + 2 * c * uv + c**2 * uu * vv)

    for bi in range(b):
        for o in range(cout):
            for i in range(ox):
                for j in range(oy):
                    for l in range(oz):
                        total = 0.0
                        for t in range(k3):
                            ti, tj, tl = t // (ks * ks), (t // ks) % ks, t % ks
                            w = madd(-p[o, t], xp[bi, :, i + ti, j + tj, l + tl])
                            num = 2 * math.sqrt(c) * (w * a[o, t]).sum()
                            den = (1 - c * (w * w).sum()) * a[o, t].norm()
                            total += math.asinh(float(num / den)) / math.sqrt(c)
                        out[bi, o, i, j, l] = total
    return out


@pytest.mark.parametrize("c,padding", [(1.0, 1), (0.5, 0)])
def test_gyroplane_conv3d_equals_naive_loop(c, padding):
    torch.manual_seed(0)
    conv = GyroplaneConv3d(2, 3, kernel_size=3, c=c, padding=padding, bias=False)
    with torch.no_grad():
        conv.p_tilde.normal_(0, 0.3)
    x = expmap0(torch.randn(2, 4, 5, 3, 2) * 0.8, as_curvature(c)).movedim(-1, 1)  # (B=2, d=2, 4, 5, 3)
    p, a = conv.planes()
    expected = _naive_gyro(x, p.detach(), a.detach(), c, padding)
    got = conv(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-8)
    # and the functional form agrees with the layer's gyroplanes applied one by one
    single = gyroplane_conv3d(x[:, :, :3, :3, :3], p, a, c)
    manual = gyroplane_distance(
        x[:, :, :3, :3, :3].reshape(2, 2, 27).transpose(1, 2)[:, None], p[None], a[None], c
    ).sum(-1)
    assert torch.allclose(single.reshape(2, 3), manual, atol=1e-10)


def test_gyroplane_layer_gradients_flow_and_shapes():
    layer = GyroplaneLayer(3, 5, c=1.0)
    x = expmap0(torch.randn(7, 3), as_curvature(1.0))
    out = layer(x)
    assert out.shape == (7, 5)
    out.sum().backward()
    assert layer.p_tilde.grad is not None and torch.isfinite(layer.a_tilde.grad).all()


@pytest.mark.parametrize("norm", [1.0, 1.5, 1e6])
def test_points_at_or_beyond_the_edge_are_clamped_without_nan(norm):
    c = 1.0
    k = as_curvature(c)
    x = torch.tensor([[norm, 0.0], [0.0, -norm]], dtype=torch.float32)
    y = torch.tensor([[0.1, 0.2], [0.3, -0.1]], dtype=torch.float32)
    projected = project(x, k.float())
    assert (projected.norm(dim=-1) < 1.0).all()
    for value in (
        dist(x, y, k.float()),
        logmap0(x, k.float()),
        wrapped_normal_log_prob(x, y, torch.full_like(y, 0.5), c),
        riemannian_normal_log_prob(x.double(), y.double(), torch.tensor([[0.5], [0.5]]), c),
        gyroplane_distance(x, y, torch.ones_like(y), c),
    ):
        assert torch.isfinite(value).all()
    from monai_genvq.apps.hyperbolic import pairwise_dist

    assert torch.isfinite(pairwise_dist(x, y, c)).all()
    # huge encoder outputs map to finite points strictly inside the ball
    assert torch.isfinite(expmap0(torch.tensor([[1e8, 1e8]]), k.float())).all()


def test_curvature_and_distribution_arguments_are_checked():
    with pytest.raises(ValueError, match="curvature"):
        as_curvature(-1.0)
    with pytest.raises(ValueError, match="c > 0"):
        riemannian_normal_sample_radius(torch.tensor([0.5]), 0.0, 2)
    with pytest.raises(ValueError, match="> 0"):
        riemannian_normal_sample_radius(torch.tensor([-0.5]), 1.0, 2)
    with pytest.raises(ValueError, match="Riemannian normal needs curvature"):
        HyperbolicVAE(curvature=0.0, distribution="riemannian", decoder_head="linear")


def test_embed_volume_equals_patchwise_encoding():
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    net = HyperbolicVAE(patch_size=10, latent_dim=3, channels=(4, 8, 8, 8)).eval()
    vol = torch.rand(1, 14, 12, 11)
    emb = net.embed_volume(vol, slab=5)
    assert emb.shape == (3, 14, 12, 11)
    padded = torch.nn.functional.pad(vol[None], (4, 5, 4, 5, 4, 5), mode="replicate")[0]
    for i, j, l in [(0, 0, 0), (7, 3, 10), (13, 11, 5)]:
        mu, _ = net.encode(padded[None, :, i : i + 10, j : j + 10, l : l + 10])
        assert torch.allclose(mu[0], emb[:, i, j, l], atol=1e-5)
    with pytest.raises(ValueError, match="patches of shape"):
        net.encode(torch.rand(2, 1, 8, 8, 8))


def test_embed_volume_zoom_resamples_in_and_out():
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    net = HyperbolicVAE(patch_size=6, latent_dim=2, channels=(4, 4, 4), max_radius=1.5).eval()
    # a constant volume stays constant under resampling: every voxel gets the constant patch's embedding
    const = torch.full((1, 9, 8, 7), 0.3)
    mu, _ = net.encode(torch.full((1, 1, 6, 6, 6), 0.3))
    emb = net.embed_volume(const, zoom=2.0)
    assert emb.shape == (2, 9, 8, 7)
    assert torch.allclose(emb, mu[0].view(2, 1, 1, 1).expand_as(emb), atol=1e-5)
    # a step edge: at zoom 2 each voxel's patch covers half as many input voxels, so fewer voxels near the
    # edge see both sides (their embedding differs from both plateaus'); all points stay inside max_radius
    step = torch.zeros(1, 24, 8, 8)
    step[:, 12:] = 1.0
    mixed = []
    for zoom in (1.0, 2.0):
        e = net.embed_volume(step, zoom=zoom)
        assert e.shape == (2, 24, 8, 8)
        assert float(2 * torch.atanh(e.norm(dim=0)).max()) <= 1.5 + 1e-4
        lo, hi = e[:, 0, 4, 4], e[:, -1, 4, 4]
        line = e[:, :, 4, 4]
        off = torch.minimum((line - lo[:, None]).norm(dim=0), (line - hi[:, None]).norm(dim=0))
        mixed.append(int((off > 1e-3).sum()))
    assert mixed[1] < mixed[0]
    with pytest.raises(ValueError, match="zoom"):
        net.embed_volume(const, zoom=0.0)


def test_bound_tangent0_known_answers_and_identity_near_zero():
    from monai_genvq.apps.hyperbolic import bound_tangent0

    u = torch.tensor([[0.3, -0.4], [0.0, 0.0], [1e-7, 0.0], [1e9, 0.0]])
    out = bound_tangent0(u, 4.0)  # R = 2: ‖out‖ = 2 tanh(‖u‖/2)
    expected = 2.0 * torch.tanh(u.norm(dim=-1) / 2.0)
    assert torch.allclose(out.norm(dim=-1), expected, atol=1e-12)
    assert torch.allclose(out[0] / out[0].norm(), u[0] / u[0].norm())  # direction kept
    assert torch.equal(out[1], u[1]) and torch.allclose(out[2], u[2], rtol=1e-10)
    # Jacobian is the identity at 0 (tanh(x)/x branch is exact there)
    jac = torch.autograd.functional.jacobian(lambda v: bound_tangent0(v, 4.0), torch.zeros(2))
    assert torch.allclose(jac, torch.eye(2))
    # geodesic distance from the origin after expmap0 saturates at max_radius, for c > 0 and the flat model
    for c in (0.0, 1.0, 2.0):
        k = as_curvature(c)
        x = expmap0(bound_tangent0(torch.tensor([[1e9, 1e9]]), 4.0), k)
        r = dist(torch.zeros_like(x), x, k)
        assert float(r) == pytest.approx(4.0, rel=1e-6)
    with pytest.raises(ValueError, match="max_radius"):
        bound_tangent0(u, 0.0)


@pytest.mark.parametrize("curvature", [1.0, 0.0])
def test_huge_encoder_outputs_give_means_inside_max_radius_with_gradients(curvature):
    """Without the bound, huge encoder outputs put every mean on the clamp sphere (the collapse)."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    head = "gyroconv" if curvature else "linear"
    kwargs = dict(patch_size=6, latent_dim=2, channels=(4, 4), curvature=curvature, decoder_head=head)
    net, unbounded = HyperbolicVAE(max_radius=3.0, **kwargs), HyperbolicVAE(max_radius=None, **kwargs)
    unbounded.load_state_dict(net.state_dict())
    for m in (net, unbounded):
        with torch.no_grad():
            m.to_mu.weight.mul_(1e4)
    x = torch.rand(16, 1, 6, 6, 6)
    k = as_curvature(curvature)
    mu, _ = net.encode(x)
    r = dist(torch.zeros_like(mu), mu, k)
    assert (r <= 3.0 + 1e-4).all() and (r > 2.5).all()  # saturated, but at the bound, not at the clamp
    if curvature:
        clamp = 1.0 - 4e-3
        assert (mu.norm(dim=-1) < math.tanh(1.5) + 1e-6).all() and math.tanh(1.5) < clamp - 0.05
        mu_u, _ = unbounded.encode(x)
        assert torch.allclose(mu_u.norm(dim=-1), torch.full((16,), clamp), atol=1e-5)  # the collapse
        # ... and the KL exploit that drove it: with σ -> MIN_SIGMA, samples clamped at the edge are
        # many σ away from where they were drawn, so log q(z) and the one-sample "KL" go very negative
        for m in (net, unbounded):
            with torch.no_grad():
                m.to_sigma.weight.zero_()
                m.to_sigma.bias.fill_(-30.0)
        torch.manual_seed(1)
        kl_bounded, kl_unbounded = net.train()(x).kl, unbounded.train()(x).kl
        assert (kl_bounded > 0).all() and kl_unbounded.min() < -10.0
        net.to_sigma.reset_parameters()
    out = net.train()(x)
    loss = out.reconstruction.square().mean() + out.kl.mean() + dist(out.mu[:8], out.mu[8:], k).mean()
    loss.backward()
    grad = net.to_mu.weight.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="max_radius"):
        HyperbolicVAE(max_radius=-1.0, **kwargs)
    if curvature > 0:  # too close to the float32 edge: clamped samples would let training exploit the KL
        assert boundary_radius(curvature) == pytest.approx(2 / curvature**0.5 * math.atanh(1 - 4e-3))
        with pytest.raises(ValueError, match="too close to the ball's float32 edge"):
            HyperbolicVAE(max_radius=0.7 * boundary_radius(curvature), **kwargs)
        HyperbolicVAE(max_radius=0.6 * boundary_radius(curvature), **kwargs)


@pytest.mark.parametrize("distribution,sigma_bias", [("wrapped", [300.0, -30.0]), ("riemannian", [20.0])])
def test_posterior_scale_is_capped_so_samples_stay_off_the_edge(distribution, sigma_bias):
    """A huge σ puts samples on the float32 clamp, where the one-sample KL goes far below 0 (a toy run
    drifted to σ ≈ (300, 1e-4) and a KL of -650)."""
    torch.manual_seed(0)
    kwargs = dict(patch_size=6, latent_dim=2, channels=(4, 4), distribution=distribution, max_radius=3.0)
    capped, uncapped = HyperbolicVAE(**kwargs), HyperbolicVAE(**kwargs)
    assert capped.max_sigma == pytest.approx((boundary_radius(1.0) - 3.0) / 4)
    assert HyperbolicVAE(curvature=0.0, decoder_head="linear", patch_size=6, channels=(4, 4)).max_sigma is None
    uncapped.load_state_dict(capped.state_dict())
    uncapped.max_sigma = None
    for m in (capped, uncapped):
        with torch.no_grad():
            m.to_sigma.weight.zero_()
            m.to_sigma.bias.copy_(torch.tensor(sigma_bias))
    x = torch.rand(64, 1, 6, 6, 6)
    torch.manual_seed(1)
    out_c = capped.train()(x)
    torch.manual_seed(1)
    out_u = uncapped.train()(x)
    clamp = 1.0 - BOUNDARY_EPS[torch.float32]  # where project() puts clamped points (c = 1)
    assert (out_u.z.norm(dim=-1) > clamp - 1e-5).any()  # samples on the clamp, where log q(z) is wrong ...
    if distribution == "riemannian":
        assert out_u.kl.min() < -10.0  # ... and here the one-sample KL already far below 0
    assert out_c.sigma.max() <= capped.max_sigma + 1e-6 and (out_c.z.norm(dim=-1) < clamp - 1e-3).all()
    assert torch.isfinite(out_c.kl).all() and out_c.kl.min() > -10.0


@pytest.mark.parametrize("c", [0.0, 1.0, 2.0])
def test_hierarchical_triplet_loss_known_answers(c):
    """Parent at the origin, child and negative on one axis: distances from the origin in closed form
    (c = 0 is the ball's flat limit, whose metric is 2× the Euclidean one)."""
    parent, child, negative = torch.zeros(1, 2), torch.tensor([[0.1, 0.0]]), torch.tensor([[0.5, 0.0]])
    radius = (lambda r: 2 * r) if c == 0 else (lambda r: 2 / math.sqrt(c) * math.atanh(math.sqrt(c) * r))
    d_pos, d_neg = radius(0.1), radius(0.5)
    for squared, (p, n) in ((False, (d_pos, d_neg)), (True, (d_pos**2, d_neg**2))):
        for margin in (0.0, 1.2, 3.0):
            got = float(hierarchical_triplet_loss(parent, child, negative, c, margin, squared=squared))
            assert got == pytest.approx(max(0.0, p - n + margin), abs=1e-9)
    # a child further from its parent than the negative is penalised even with margin 0
    assert float(hierarchical_triplet_loss(parent, negative, child, c, 0.0)) == pytest.approx(d_neg - d_pos, abs=1e-9)


def test_riemannian_setting_samples_the_riemannian_normal():
    """``distribution="riemannian"`` must sample (and score) the Riemannian normal, not the wrapped one.

    All patches share one posterior (μ off the origin, σ = 0.7): the geodesic distances d(μ, z) of the
    training-mode samples follow the Riemannian normal's radial law, ∝ exp(-r²/2σ²) sinh(r)^(d-1),
    and not the wrapped normal's σ·χ_d (the law a model that ignores the setting would sample).
    """
    torch.manual_seed(0)
    d, sigma, c = 3, 0.7, 1.0
    net = HyperbolicVAE(patch_size=4, latent_dim=d, channels=(2,), distribution="riemannian").train()
    with torch.no_grad():
        net.to_mu.weight.zero_()
        net.to_mu.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
        net.to_sigma.weight.zero_()
        net.to_sigma.bias.fill_(math.log(math.expm1(sigma - MIN_SIGMA)))  # softplus(b) + MIN_SIGMA = σ
    out = net(torch.rand(4000, 1, 4, 4, 4))
    assert out.sigma.shape == (4000, 1) and torch.allclose(out.sigma, torch.full_like(out.sigma, sigma))
    assert out.mu.norm(dim=-1).min() > 0.1  # the posterior is not centred at the origin
    radii = dist(out.mu, out.z, as_curvature(c)).detach().numpy()
    riemannian_cdf = lambda r: riemannian_normal_radius_cdf(torch.as_tensor(r), torch.tensor(sigma), c, d).numpy()  # noqa: E731
    assert stats.kstest(radii, riemannian_cdf).pvalue > 1e-3
    assert stats.kstest(radii, stats.chi(d, scale=sigma).cdf).pvalue < 1e-6  # the wrapped normal's radii
    # the Monte-Carlo KL is scored with the Riemannian normal's density too
    prior = riemannian_normal_log_prob(out.z, torch.zeros_like(out.mu), torch.ones_like(out.sigma), c)
    expected_kl = riemannian_normal_log_prob(out.z, out.mu, out.sigma, c) - prior
    assert torch.allclose(out.kl, expected_kl)


def test_python_defaults_are_the_toy_bundles_settings():
    """``HyperbolicVAE()`` and ``HyperbolicVAETrainer`` without tuning arguments are the toy bundle's model and
    objective (``bundles/hyperbolic_toy_seg/configs/train.json``): every network argument and every tuning
    argument of the trainer that the config sets equals the Python default."""
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "hyperbolic_toy_seg" / "configs" / "train.json"))
    net_defaults = inspect.signature(HyperbolicVAE).parameters
    net_args = [k for k in parser["network_def"] if k != "_target_"]
    assert net_args, "the toy bundle's network_def sets no arguments"
    for key in net_args:
        default = net_defaults[key].default
        expected = parser.get_parsed_content(f"network_def#{key}")
        assert (list(default) if isinstance(default, tuple) else default) == expected, key
    bundle_net, default_net = parser.get_parsed_content("network_def"), HyperbolicVAE()
    assert {k: v.shape for k, v in default_net.state_dict().items()} == {
        k: v.shape for k, v in bundle_net.state_dict().items()
    }
    trainer_defaults = inspect.signature(HyperbolicVAETrainer).parameters
    plumbing = {"train_handlers"}  # run wiring, not a setting of the method
    tuned = [
        k
        for k in parser["train"]["trainer"]
        if k in trainer_defaults and trainer_defaults[k].default is not inspect.Parameter.empty and k not in plumbing
    ]
    assert {"kl_weight", "triplet_weight", "margin", "likelihood_scale"} <= set(tuned)
    trainer = HyperbolicVAETrainer(
        torch.device("cpu"), 1, [{}], default_net, torch.optim.SGD(default_net.parameters(), lr=0.0)
    )
    for key in tuned:
        assert getattr(trainer, key) == parser.get_parsed_content(f"train#trainer#{key}"), key
