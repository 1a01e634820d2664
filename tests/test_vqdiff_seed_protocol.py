"""The VQ-Diff paper's protocol as options: its global VAE, Gumbel noise at evaluation, its bundle selection,
the full-subject figure and the Table 1 layout (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_genvq.apps.streamlines import (
    StreamlineGroups,
    count_streamlines,
    discover_tractoinferno,
    save_streamlines,
    save_subject_render,
    select_bundles_by_count,
)
from monai_genvq.apps.streamlines.table1 import VQDIFF_TABLE1, table1_markdown
from monai_genvq.losses import gaussian_kl
from monai_genvq.networks import GlobalGaussianBottleneck, GumbelQuantizer, ResNetAutoencoder

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "streamlines_vqdiff" / "configs"


# ---------------------------------------------------------------- the paper's global VAE


def test_global_gaussian_is_the_released_vae_layer():
    torch.manual_seed(0)
    bottleneck = GlobalGaussianBottleneck(spatial_dims=2, channels=64, latent_size=(16, 16))
    # 64x16x16 -> 128x8x8 -> 256x4x4 -> 20, and back (the released VAELayer's shapes)
    assert bottleneck.to_mean.in_features == 256 * 4 * 4 and bottleneck.to_mean.out_features == 20
    z = torch.randn(3, 64, 16, 16)
    out = bottleneck.eval()(z)
    assert out.latent.shape == z.shape and out.mean.shape == (3, 20)
    assert float(out.latent.detach().abs().max()) <= 1.0, "tanh output, as released"
    # evaluation decodes the mean (deterministic); one code per sample: it depends on the whole map
    assert torch.equal(out.latent, bottleneck(z).latent)
    assert torch.allclose(out.latent, bottleneck.decode_code(out.mean))
    # KL weight: batch mean of the per-sample KL, or the released code's batch sum
    kl = gaussian_kl(out.mean, out.logvar, "per_sample")
    assert torch.allclose(out.loss, 2.56e-5 * kl.mean(), rtol=1e-5)
    summed = GlobalGaussianBottleneck(2, 64, (16, 16), kl_weight=1e-7, kl_reduction="sum").eval()
    summed.load_state_dict(bottleneck.state_dict())
    assert torch.allclose(summed(z).loss, 1e-7 * kl.sum(), rtol=1e-5)
    # "sample" keeps drawing in eval, as the released reparameterize does
    sampled = GlobalGaussianBottleneck(2, 64, (16, 16), eval_mode="sample").eval()
    sampled.load_state_dict(bottleneck.state_dict())
    assert not torch.allclose(sampled(z).latent, sampled(z).latent)


def test_global_gaussian_trains_inside_the_autoencoder_and_rejects_bad_options():
    net = ResNetAutoencoder(
        channels=(8, 16),
        latent_channels=4,
        num_res_blocks=1,
        bottleneck=GlobalGaussianBottleneck(2, 4, (4, 4), 3, (8,)),
    )
    out = net(torch.randn(2, 3, 16, 16))
    (out.reconstruction.square().mean() + out.bottleneck.loss).backward()
    assert net.bottleneck.to_mean.weight.grad is not None and net.encoder[0].conv.weight.grad is not None
    with pytest.raises(ValueError, match="latent_size"):
        GlobalGaussianBottleneck(2, 4, (6, 6), hidden_channels=(8, 16))
    with pytest.raises(ValueError, match="kl_reduction"):
        GlobalGaussianBottleneck(2, 4, (4, 4), kl_reduction="mean")
    with pytest.raises(ValueError, match="eval_mode"):
        GlobalGaussianBottleneck(2, 4, (4, 4), eval_mode="soft")
    with pytest.raises(ValueError, match=r"expects \(B, 4, \*\(4, 4\)\)"):
        GlobalGaussianBottleneck(2, 4, (4, 4))(torch.randn(1, 4, 8, 8))


# ---------------------------------------------------------------- Gumbel noise at evaluation


def test_gumbel_eval_mode_keeps_the_noise_and_matches_training_draws():
    quantizer = GumbelQuantizer(32, 4, temperature=10.0, eval_mode="gumbel").eval()
    z = torch.randn(2, 4, 6)
    torch.manual_seed(3)
    first = quantizer(z).latent
    assert not torch.allclose(first, quantizer(z).latent), "noise stays on in evaluation"
    torch.manual_seed(3)
    assert torch.equal(first, quantizer.train()(z).latent), "the same draw as a training forward"
    soft = GumbelQuantizer(32, 4, temperature=10.0).eval()
    soft.load_state_dict(quantizer.state_dict())
    assert torch.equal(soft(z).latent, soft(z).latent)
    with pytest.raises(ValueError, match="eval_mode must be one of"):
        GumbelQuantizer(8, 4, eval_mode="noisy")


# ---------------------------------------------------------------- the paper's bundle selection


def _line(n: int, offset: float) -> np.ndarray:
    return np.stack([np.linspace(-30, 30, n), np.full(n, offset), np.linspace(0, 10, n)], axis=1).astype(np.float32)


@pytest.fixture()
def counted_root(tmp_path) -> Path:
    counts = {("sub-01", "AF_L"): 140, ("sub-02", "AF_L"): 130, ("sub-01", "CST_R"): 140, ("sub-02", "CST_R"): 90}
    for (subject, bundle), count in counts.items():
        lines = [_line(30, offset=0.1 * i) for i in range(count)]
        save_streamlines(
            tmp_path / "derivatives" / "trainset" / subject / "tractography" / f"{subject}__{bundle}.trk", lines
        )
    return tmp_path


def test_min_streamlines_keeps_bundles_above_the_count_in_every_subject(counted_root):
    records = discover_tractoinferno(counted_root)
    assert sorted(count_streamlines(r["path"]) for r in records) == [90, 130, 140, 140]
    kept = select_bundles_by_count(records, 100)  # CST_R has 90 in sub-02: dropped for every subject
    assert sorted({r["bundle"] for r in kept}) == ["AF_L"] and len(kept) == 2
    assert select_bundles_by_count(records, 0) == records
    assert {r["bundle"] for r in select_bundles_by_count(records, 89)} == {"AF_L", "CST_R"}
    assert {r["bundle"] for r in select_bundles_by_count(records, 90)} == {"AF_L"}  # "more than", as the paper
    with pytest.raises(ValueError, match=r"min_streamlines=140: .*AF_L: 130, CST_R: 90"):
        select_bundles_by_count(records, 140)
    groups = StreamlineGroups(
        counted_root, dataset="tractoinferno", group_size=64, min_streamlines=100, group_cache=False
    )
    assert groups.bundle_names == ["AF_L"]
    with pytest.raises(ValueError, match="min_streamlines must be a non-negative integer"):
        StreamlineGroups(counted_root, dataset="tractoinferno", min_streamlines=-1)


# ---------------------------------------------------------------- full-subject figure, Table 1, configs


def test_subject_render_writes_every_bundle(tmp_path):
    groups = [np.stack([_line(16, o) for o in range(4)]) + shift for shift in (0.0, 40.0)]
    path = save_subject_render(groups, [g + 1.0 for g in groups], ["AF_L", "CST_R"], tmp_path / "s.png")
    assert path.is_file() and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="views"):
        save_subject_render(groups, groups, ["AF_L", "CST_R"], tmp_path / "t.png", views=["oblique"])


def test_evaluation_report_draws_the_subject_with_most_bundles(tmp_path):
    from types import SimpleNamespace

    from monai_genvq.apps.streamlines import StreamlineEvaluationReport, StreamlineNormalizer

    report = StreamlineEvaluationReport(str(tmp_path), StreamlineNormalizer(-1.0, 1.0), "ae", perturbation_epsilons=())
    x = torch.rand(4, 3, 8, 16) * 2 - 1
    batch = {"name": ["AF_L", "CST_R", "AF_L", "AF_L"], "subject": ["sub-02", "sub-02", "sub-01", "sub-03"]}
    engine = SimpleNamespace(state=SimpleNamespace(output={"pred": x, "label": x}, batch=batch, metrics={}))
    report._collect(engine)
    report._report(engine)
    assert "subject_sub-02.png" in report.results["figures"] and (tmp_path / "subject_sub-02.png").is_file()
    report.figure_subject = "sub-09"
    with pytest.raises(ValueError, match="figure_subject 'sub-09'"):
        report._report(engine)


def _metrics(values: dict[str, float]) -> dict:
    per = {name: {"mean": v, "std": 0.1, "n": 4} for name, v in values.items()}
    mean = float(np.mean(list(values.values())))
    return {"buan_normalised": {"threshold": 0.05, **per, "all": {"mean": mean, "std": 0.1, "n": 4 * len(values)}}}


def test_table1_layout_seed_row_first_and_means_over_seeds():
    assert VQDIFF_TABLE1["PYT_R"]["VQ-Diff"] == (0.9988, 0.0038) and len(VQDIFF_TABLE1) == 12
    runs = {"AE": [_metrics({"AF_L": 0.9, "CC_Fr_1": 0.7}), _metrics({"AF_L": 0.8, "CC_Fr_1": 0.5})]}
    text = table1_markdown(runs)
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[0].split("|")[1].strip() == "bundle" and "AE" in lines[0]
    assert lines[2].startswith("| seed paper")  # the seed's numbers are the first row
    assert "| 0.9996 |" in lines[2]  # its AE mean over its 12 bundles: (10 × 0.9999 + 0.9988 + 0.9975) / 12
    af = next(line for line in lines if line.startswith("| AF_L"))
    assert "0.850 ± 0.071" in af  # mean ± std over the 2 seeds
    paper_cc = next(line for line in lines if line.startswith("| CC_Fr_1 (paper)"))
    assert "0.9999 ± 0.0004" in paper_cc  # a bundle the paper also reports gets the paper's row
    assert not any(line.startswith("| AF_L (paper)") for line in lines)


@pytest.mark.parametrize(
    "files",
    [["vae_seed.json"], ["vqvae.json", "remedies.json"], ["vqema.json", "seed_network.json"], ["eval_gumbel.json"]],
)
def test_seed_protocol_configs_build_the_network(files):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), *[str(CONFIGS / f) for f in files]])
    net = parser.get_parsed_content("network_def")
    out = net.eval()(torch.randn(1, 3, 64, 64))
    assert out.reconstruction.shape == (1, 3, 64, 64)
    if "remedies.json" in files:
        assert net.bottleneck.data_init and net.bottleneck.dead_code_steps > 0
    if "seed_network.json" in files:
        assert not net.standardize_input and parser.get_parsed_content("run_tag") == "_seednet"
    if "eval_gumbel.json" in files:
        assert net.bottleneck.eval_mode == "gumbel"
    assert json.loads((CONFIGS / "seed_bundles.json").read_text())["min_streamlines"] == 1000
