"""Toy v4 (levels not readable from intensities), the released code's triplet sampling, K posterior samples."""

import json

import numpy as np
import pytest
import torch
from ignite.engine import Events

from monai_genvq.apps.hyperbolic import (
    HyperbolicVAE,
    HyperbolicVAETrainer,
    TripletPatchSampler,
    ensure_hierarchy_toy,
    generate_textured_hierarchy_volume,
    hyperbolic_loss_terms,
    reconstruction_nll,
)
from monai_genvq.apps.hyperbolic import triplets as triplets_module
from monai_genvq.apps.hyperbolic.inferer import cluster_embedding
from monai_genvq.apps.hyperbolic.synthetic_toy import level_map
from monai_genvq.metrics import IntensityKMeans, hungarian_dice

# the seed's unsupervised baselines on its toy set (shared/seeds/003, toy table): at most 0.63 / 0.31
SEED_BASELINE_BOUND = {1: 0.63, 2: 0.32}


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
def test_toy_v4_classes_share_intensity_and_defeat_intensity_kmeans():
    img, lab3 = generate_textured_hierarchy_volume(np.random.default_rng(1), size=40)
    assert set(np.unique(lab3)) == set(range(8))
    assert float(img[lab3 == 0].std()) == 0.0, "the background is constant"
    for c in range(1, 8):  # every class: the same ternary texture distribution
        v = img[lab3 == c]
        assert abs(v.mean() - 0.5) < 0.01 and abs(v.std() - 0.212) < 0.01, (c, v.mean(), v.std())
    for sigma in (0.0, 1.0):  # raw and Gaussian-smoothed intensities
        emb = IntensityKMeans(sigma=sigma, spatial_dims=3).embed_volume(torch.as_tensor(img)[None])
        for level, bound in SEED_BASELINE_BOUND.items():
            k = 2 if level == 1 else 4
            dice = hungarian_dice(cluster_embedding(emb, k, 0.0), level_map(lab3, level), list(range(k)))[0]
            assert dice <= bound, (sigma, level, dice)


def test_toy_versions_have_their_own_cache_folders(cache_dir):
    v4 = ensure_hierarchy_toy(n_train=1, n_test=1, size=16)
    v3 = ensure_hierarchy_toy(n_train=1, n_test=1, size=16, version=3)
    assert v4.name.startswith("hierarchy_toy_v4") and v3.name.startswith("hierarchy_toy_v3")
    assert json.loads((v4 / "dataset.json").read_text())["generator_version"] == 4
    with pytest.raises(ValueError, match="version must be one of"):
        ensure_hierarchy_toy(version=2)


def _record_boxes(monkeypatch):
    """Record (start, side) of every crop the sampler cuts, in parent / child / negative order."""
    boxes = []
    real = triplets_module._crop_resize

    def spy(v, start, size, out):
        boxes.append((np.asarray(start), int(size)))
        return real(v, start, size, out)

    monkeypatch.setattr(triplets_module, "_crop_resize", spy)
    return boxes


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_released_sampling_ranges_and_placement(monkeypatch, scale):
    boxes = _record_boxes(monkeypatch)
    vol = torch.rand(1, *(int(50 * scale),) * 3)
    TripletPatchSampler(patch_size=10, voxel_scale=scale).set_random_state(0).sample(vol, 200)
    parents, children, negatives = boxes[0::3], boxes[1::3], boxes[2::3]
    p_sides = np.array([s for _, s in parents])
    assert p_sides.min() >= round(2 * scale) * 2 + 1 and p_sides.max() <= round(17 * scale) * 2 + 1
    assert p_sides.max() - p_sides.min() > 20 * scale, "parents span the released code's ~5-35 voxel range"
    for (ps, p), (cs, c), (ns, n) in zip(parents, children, negatives):
        assert c % 2 == 1 and c < p and c <= round(7 * scale) * 2 + 1  # odd, smaller, at most 15 native voxels
        assert np.array_equal(ps + p // 2, cs + c // 2), "the child is concentric with its parent"
        assert n == c
        n_ctr = ns + n // 2
        assert np.all((n_ctr < ps) | (n_ctr > ps + p - 1)), "the negative lies outside the parent on every axis"


def test_released_sampling_skips_constant_parents(monkeypatch):
    vol = torch.zeros(1, 40, 40, 40)
    vol[0, 30:34, 30:34, 30:34] = 1.0  # one small textured spot in a constant background
    boxes = _record_boxes(monkeypatch)
    TripletPatchSampler(patch_size=10).set_random_state(0).sample(vol, 10)
    for start, side in boxes[0::3]:
        crop = vol[0, start[0] : start[0] + side, start[1] : start[1] + side, start[2] : start[2] + side]
        assert crop.amax() > crop.amin(), "a constant parent was kept"
    with pytest.raises(ValueError, match="case_9.*constant"):
        TripletPatchSampler(patch_size=10)(torch.ones(1, 20, 20, 20), name="case_9")
    with pytest.raises(ValueError, match="sampling must be one of"):
        TripletPatchSampler(sampling="mine")


def test_posterior_samples_are_averaged_in_the_kl_and_the_nll():
    torch.manual_seed(0)
    net = HyperbolicVAE(posterior_samples=3).train()
    x = torch.rand(4, 1, 10, 10, 10)
    out = net(x)
    assert out.reconstruction.shape == (3, 4, 1, 10, 10, 10) and out.z.shape == (3, 4, 2) and out.kl.shape == (4,)
    assert not torch.allclose(out.z[0], out.z[1]), "three different samples"
    per_sample = torch.stack([net.kl(z, out.mu, out.sigma) for z in out.z])
    assert torch.allclose(out.kl, per_sample.mean(0), atol=1e-5)
    assert net.eval()(x).reconstruction.shape == (4, 1, 10, 10, 10), "evaluation decodes the mean once"
    with pytest.raises(ValueError, match="posterior_samples"):
        HyperbolicVAE(posterior_samples=0)

    captured = []
    net.train().register_forward_hook(lambda m, i, o: captured.append(o))
    batch = {k: torch.rand(2, 1, 10, 10, 10) for k in ("parent", "child", "negative")}
    trainer = HyperbolicVAETrainer("cpu", 1, [batch], net, torch.optim.SGD(net.parameters(), lr=0.0))
    logged = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: logged.append(hyperbolic_loss_terms(e.state.output))
    )
    trainer.run()
    x = torch.cat([batch[k] for k in ("parent", "child", "negative")])
    expected = torch.stack([reconstruction_nll(r, x).mean() for r in captured[0].reconstruction.detach()]).mean()
    assert logged[0]["rec_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert logged[0]["kl"] == pytest.approx(float(captured[0].kl.detach().mean()), rel=1e-5)
