"""Figures next to the evaluations, and the one report (`python -m monai_genvq.report`) that gathers them."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_bundle
from ignite.engine import Engine
from matplotlib.image import imread

from monai_genvq.apps.cardiac import CardiacEvaluationReport
from monai_genvq.apps.hyperbolic import poincare_disk_2d
from monai_genvq.apps.streamlines import StreamlineEvaluationReport, save_streamline_render
from monai_genvq.apps.streamlines.transforms import StreamlineNormalizer
from monai_genvq.engines import VAEEvaluator
from monai_genvq.handlers import QuantizerEvaluationReport
from monai_genvq.networks import ConvVAE, ResNetAutoencoder, VectorQuantizer
from monai_genvq.report import ReportError, build_report, main, write_report
from monai_genvq.utils.tables import format_mean_std
from monai_genvq.visualize import (
    image_grid,
    project_codes,
    pyplot,
    save_image_grid,
    save_latent_projection,
    save_segmentation_slices,
)

BUNDLES = (
    "streamlines_vqdiff",
    "vq_quantizers",
    "cardiac_attri_sivae",
    "hyperbolic_toy_seg",
    "hyperbolic_brats_seg",
    "anatomical_prior_seg",
)


def _png(path):
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    img = imread(path)
    assert img.ndim in (2, 3) and float(img[..., :3].std()) > 0.01, f"{path} is (nearly) constant"
    return img


def _clusters(n=30, d=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, d))
    centres[0, 0], centres[1, 1], centres[2, 0] = 8.0, 8.0, -8.0
    codes = np.concatenate([c + rng.normal(size=(n, d)) for c in centres])
    return codes, np.repeat(["a", "b", "c"], n)


# ------------------------------------------------------------------------------------------ figures


def test_pca_known_answer_and_cluster_separation(tmp_path):
    # points on a line along (3, 4)/5: PC1 is the signed position along it (largest loading positive), PC2 is 0
    t = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    xy = project_codes(np.outer(t, [0.6, 0.8]) + [1.0, 1.0])
    np.testing.assert_allclose(xy[:, 0], t, atol=1e-12)
    np.testing.assert_allclose(xy[:, 1], 0.0, atol=1e-12)

    codes, labels = _clusters()
    xy = save_latent_projection(codes, labels, tmp_path / "pca.png", title="clusters")
    centres = np.stack([xy[labels == k].mean(0) for k in "abc"])
    spread = max(np.linalg.norm(xy[labels == k] - centres[i], axis=1).mean() for i, k in enumerate("abc"))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 3 * spread, (gaps, spread)
    # nearest centroid recovers every label
    assigned = np.argmin(((xy[:, None] - centres[None]) ** 2).sum(-1), 1)
    assert (np.array(list("abc"))[assigned] == labels).all()
    _png(tmp_path / "pca.png")


def test_tsne_keeps_clusters_and_poincare_disk_is_exact(tmp_path):
    codes, labels = _clusters(n=20)
    xy = save_latent_projection(codes, {"cluster": labels, "value": codes[:, 0]}, tmp_path / "tsne.png", method="tsne")
    # every point's nearest neighbour in the embedding is in its own cluster
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1) + np.eye(len(xy)) * 1e9
    assert (labels[d.argmin(1)] == labels).mean() == 1.0
    two_panels = _png(tmp_path / "tsne.png")

    # points on one axis of the 3-D ball keep their position: the tangent projection onto that axis is exact
    r = np.array([0.1, 0.4, 0.8])
    ball = np.zeros((3, 3))
    ball[:, 1] = r
    np.testing.assert_allclose(np.abs(poincare_disk_2d(ball, c=1.0)[:, 0]), r, atol=1e-6)
    # curvature c: the ball of radius 1/sqrt(c) is scaled onto the unit disk
    np.testing.assert_allclose(np.linalg.norm(poincare_disk_2d(ball / 2.0, c=4.0), axis=1), r, atol=1e-6)
    rng = np.random.default_rng(1)
    many = rng.normal(size=(200, 5))
    many = 0.99 * many / (1 + np.linalg.norm(many, axis=1, keepdims=True))
    disk = save_latent_projection(
        many, rng.integers(0, 4, 200), tmp_path / "disk.png", projector=poincare_disk_2d, unit_disk=True
    )
    assert (np.linalg.norm(disk, axis=1) < 1).all()
    one_panel = _png(tmp_path / "disk.png")
    assert two_panels.shape[1] > 1.6 * one_panel.shape[1], "one panel per labelling"
    with pytest.raises(ValueError, match="labels"):
        save_latent_projection(codes, labels[:5], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="projection method"):
        project_codes(many, "umap")


def test_image_grid_streamline_render_and_segmentation_pngs(tmp_path):
    images = torch.rand(6, 1, 10, 12)
    save_image_grid(images, tmp_path / "grid.png", nrow=3)
    assert _png(tmp_path / "grid.png").shape[:2] == image_grid(images, nrow=3).shape == (2 * 12 + 2, 3 * 14 + 2)

    rng = np.random.default_rng(0)
    groups = [np.cumsum(rng.normal(size=(16, 20, 3)) * [3.0, 1.0, 0.2], axis=1) for _ in range(4)]
    save_streamline_render(groups, [g + 0.5 for g in groups], tmp_path / "four.png", names=list("ABCD"))
    save_streamline_render(groups[:1], [np.moveaxis(groups[0], -1, 0)], tmp_path / "one.png")  # (3, S, P) accepted
    assert _png(tmp_path / "four.png").shape[1] > 2 * _png(tmp_path / "one.png").shape[1]
    with pytest.raises(ValueError, match="same positive number"):
        save_streamline_render(groups, groups[:2], tmp_path / "bad.png")

    vol = rng.random((20, 22, 24))
    labels = (vol > 0.5).astype(int)
    save_segmentation_slices(vol[None], {"truth": labels, "clusters": 1 - labels}, tmp_path / "seg.png")
    _png(tmp_path / "seg.png")
    with pytest.raises(ValueError, match="spatial shape"):
        save_segmentation_slices(vol, {"truth": labels[:5]}, tmp_path / "bad.png")
    assert not list(tmp_path.glob(".*tmp*")), "no temporary files are left behind"


# ------------------------------------------------------------- a tree written by the bundles' own writers


def _run(handler, batches, step):
    engine = Engine(lambda e, batch: step(batch))
    handler.attach(engine)
    engine.run(batches, max_epochs=1)
    return handler


def _streamline_eval(out: Path, seed: int, bottleneck=None):
    torch.manual_seed(seed)
    net = ResNetAutoencoder(2, 3, channels=(8,), latent_channels=4, num_res_blocks=1, bottleneck=bottleneck).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.cumsum(torch.randn(6, 3, 8, 16, generator=g) * 0.05, -1).clamp(-1, 1)
    names = ["AF_L", "AF_L", "CST_R", "CST_R", "UF_L", "UF_L"]
    batches = [{"bundle": x[i : i + 2], "name": names[i : i + 2]} for i in range(0, 6, 2)]
    with torch.no_grad():
        step = lambda b: {"pred": net(b["bundle"]).reconstruction, "label": b["bundle"]}  # noqa: E731
        return _run(
            StreamlineEvaluationReport(
                str(out),
                StreamlineNormalizer(-60.0, 60.0),
                out.parent.name,
                "synthetic:validation",
                network=net,
                perturbation_epsilons=[0.0, 0.5],
            ),
            batches,
            step,
        ).results


def _quantizer_eval(out: Path, method: str):
    torch.manual_seed(0)
    net = ResNetAutoencoder(
        2, 1, channels=(8,), latent_channels=4, num_res_blocks=1, bottleneck=VectorQuantizer(8, 4)
    ).eval()
    x = torch.rand(6, 1, 16, 16)
    with torch.no_grad():
        step = lambda b: {"pred": net(b).reconstruction.clamp(0, 1), "label": b}  # noqa: E731
        return _run(QuantizerEvaluationReport(str(out), net, method, "acdc_phantom:test"), [x[:3], x[3:]], step).results


def _cardiac_eval(out: Path, method: str, regularized, projections=("pca", "tsne"), seed=0):
    torch.manual_seed(seed)
    net = ConvVAE(image_size=16, channels=(4, 8), hidden=16, latent_dim=4)
    g = torch.Generator().manual_seed(1)
    batches = [
        {"image": torch.rand(8, 1, 16, 16, generator=g), "attributes": torch.rand(8, 3, generator=g)} for _ in range(2)
    ]
    evaluator = VAEEvaluator("cpu", batches, net)
    CardiacEvaluationReport(
        out,
        method,
        net,
        regularized_dims=regularized,
        dataset="acdc:test",
        outputs_root=out.parent.parent,
        projection_methods=projections,
    ).attach(evaluator)
    evaluator.run()
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """``bundles/`` with configs copied from the repository and outputs written by the bundles' report writers."""
    root = tmp_path_factory.mktemp("report_tree") / "bundles"
    for name in BUNDLES:
        shutil.copytree(REPO / "bundles" / name / "configs", root / name / "configs")
    s = root / "streamlines_vqdiff" / "outputs"
    results = {
        "vqdiff": _streamline_eval(s / "vqdiff" / "eval", 0, VectorQuantizer(8, 4)),
        "ae": _streamline_eval(s / "ae" / "eval", 1),
    }
    q = root / "vq_quantizers" / "outputs"
    results["neural_gas"] = _quantizer_eval(q / "neural_gas" / "eval", "neural_gas")
    c = root / "cardiac_attri_sivae" / "outputs"
    results["attri_sivae"] = _cardiac_eval(c / "attri_sivae" / "eval", "attri_sivae", [0, 1, 2])
    results["beta_vae"] = _cardiac_eval(c / "beta_vae" / "eval", "beta_vae", None, ("pca",), seed=1)
    h = root / "hyperbolic_toy_seg" / "outputs"
    for variant in ("hyperbolic", "euclidean"):
        results[variant] = _hyperbolic_metrics(h / variant / "eval", variant)
    results["anatomical"] = _anatomical_eval(root / "anatomical_prior_seg" / "outputs" / "default" / "eval")
    return root, results


def _anatomical_eval(out: Path) -> dict:
    """The bundle's SegmentationReport fed by MONAI evaluators (MeanDice with details), as evaluate.json wires it."""
    from monai.engines import SupervisedEvaluator
    from monai.handlers import MeanDice, from_engine
    from monai.transforms import AsDiscreted, Compose

    from monai_genvq.apps.anatomical_prior import SegmentationReport

    report = SegmentationReport(out, ["LV", "MYO", "RV"], dataset_name="phantom:test", n_figure=2)
    g = torch.Generator().manual_seed(0)
    data = [
        {"image": torch.rand(2, 1, 8, 8, generator=g), "label": torch.randint(0, 4, (2, 1, 8, 8), generator=g)}
        for _ in range(2)
    ]

    class Logits(torch.nn.Module):  # intensity quartile -> label
        def forward(self, x):
            return torch.nn.functional.one_hot((x[:, 0] * 3.999).long().clamp(0, 3), 4).permute(0, 3, 1, 2).float()

    post = Compose([AsDiscreted("pred", argmax=True), AsDiscreted(["pred", "label"], to_onehot=[4, 4])])
    for method, net in (
        ("anatomical prior VAE (unsupervised)", Logits()),
        ("intensity k-means (lower bound)", Logits()),
    ):
        dice = MeanDice(include_background=False, save_details=True, output_transform=from_engine(["pred", "label"]))
        SupervisedEvaluator(
            torch.device("cpu"),
            data,
            net,
            postprocessing=post,
            key_val_metric={"dice": dice},
            val_handlers=[report.handler(method)],
        ).run()
    return json.loads((out / "metrics.json").read_text())


def _hyperbolic_metrics(out: Path, variant: str):
    """HyperbolicSegmentation on a hand-made 2-D latent 'network' whose embedding is the voxel's label: known Dice."""
    from monai_genvq.apps.hyperbolic import HyperbolicSegmentation

    class Embed(torch.nn.Module):
        curvature = 1.0 if variant == "hyperbolic" else 0.0
        patch_size = 4

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def embed_volume(self, v, zoom: float = 1.0):
            lab = (v[0] > 0.5).float()
            return torch.stack([0.5 * lab - 0.25, torch.zeros_like(lab)])

        def encode(self, x):
            return torch.zeros(x.shape[0], 2), torch.ones(x.shape[0], 2)

        def decode(self, z):
            return torch.rand(z.shape[0], 1, 4, 4, 4)

    import nibabel as nib

    folder = out.parent.parent.parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    vol = np.zeros((8, 8, 8), np.float32)
    vol[2:6, 2:6, 2:6] = 1.0
    label = (vol > 0.5).astype(np.int16)
    if variant == "euclidean":  # the Euclidean run: a quarter of the foreground is labelled background
        label[2:4, 2:6, 2:6] = 0
    nib.save(nib.Nifti1Image(vol, np.eye(4)), folder / f"{variant}_img.nii.gz")
    nib.save(nib.Nifti1Image(label, np.eye(4)), folder / f"{variant}_lab.nii.gz")
    records = [
        {
            "name": "vol0",
            "image": str(folder / f"{variant}_img.nii.gz"),
            "label_level1": str(folder / f"{variant}_lab.nii.gz"),
        }
    ]
    return HyperbolicSegmentation(
        Embed(), records, {"level1": ("label_level1", 2, [0, 1])}, out, method=variant, write_segmentations=False
    ).run()


def test_bundle_writers_record_their_figures(tree):
    root, results = tree
    expected = {
        "streamlines_vqdiff/outputs/vqdiff/eval": {"streamlines.png", "latent_pca.png"},
        "vq_quantizers/outputs/neural_gas/eval": {"reconstructions.png", "latent_pca.png"},
        "cardiac_attri_sivae/outputs/attri_sivae/eval": {
            "attribute_traversal.png",
            "ssim_distribution.png",
            "reconstructions.png",
            "latent_pca.png",
            "latent_tsne.png",
        },
        "hyperbolic_toy_seg/outputs/hyperbolic/eval": {
            "latent_projection.png",
            "segmentation.png",
            "reconstructions.png",
        },
    }
    for folder, figures in expected.items():
        metrics = json.loads((root / folder / "metrics.json").read_text())
        assert set(metrics["figures"]) == figures, folder
        for f in figures:
            _png(root / folder / f)


def test_report_tables_numbers_and_figure_links(tree, tmp_path):
    root, results = tree
    out = tmp_path / "docs" / "report.md"
    write_report(root, out)
    text = out.read_text()

    def row(first_cell):
        lines = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
        assert lines, f"no table row for {first_cell!r}"
        return [c.strip() for c in lines[0].strip("|").split("|")]

    vq = results["vqdiff"]
    assert row("VQ-Diff")[1:3] == [format_mean_std(vq["buan_normalised"]["all"]), format_mean_std(vq["buan_mm"]["all"])]
    assert row("VQ-Diff")[5] == f"{vq['codebook']['perplexity']:.1f}"
    assert row("AE")[1] == format_mean_std(results["ae"]["buan_normalised"]["all"]) and row("AE")[5] == "–"
    for missing in ("VAE", "VQ-VAE", "VQ-EMA"):
        assert row(missing)[1] == "not run"
    assert {"AF_L", "CST_R", "UF_L"} <= set(re.findall(r"\b[A-Z]{2,3}_[LR]\b", text))
    assert row("neural gas")[1:3] == [
        format_mean_std(results["neural_gas"]["mse"], 5),
        format_mean_std(results["neural_gas"]["ssim"], 4),
    ]
    assert row("EMA")[1] == "not run" and row("sampled expectation")[1] == "not run"
    sivae = results["attri_sivae"]
    assert row("Attri-SIVAE")[1:5] == [f"{sivae[k]:.3f}" for k in ("interpretability", "scc", "modularity", "sap")]
    assert row("Attri-SIVAE")[6] == format_mean_std(sivae["ssim"])
    assert row("Attri-VAE")[1] == "not run" and row("β-VAE")[1] == f"{results['beta_vae']['interpretability']:.3f}"
    # hyperbolic: levels × configurations, with the known Dice of the hand-made embeddings
    level = row("level1")
    assert level[1] == format_mean_std(results["hyperbolic"]["levels"]["level1"]) == "1.000 ± 0.000"
    assert level[2] == format_mean_std(results["euclidean"]["levels"]["level1"])
    # clusters = the 64-voxel cube, labels = half of it: Dice (2·32/96 + 2·448/928) / 2
    assert results["euclidean"]["levels"]["level1"]["mean"] == pytest.approx((64 / 96 + 896 / 928) / 2)
    # ablations and the no-learning intensity reference (intensity.json) are listed as not run
    assert len(level) >= 7 and level[3:] == ["not run"] * (len(level) - 3)
    assert "| intensity k-means (no training) |" in text
    dice = results["anatomical"]["dice"]["anatomical prior VAE (unsupervised)"]
    assert row("anatomical prior VAE (unsupervised)")[1:] == [
        format_mean_std(dice[k]) for k in ("LV", "MYO", "RV", "mean")
    ]
    assert row("intensity k-means (lower bound)")
    # bundles present without outputs are listed as not run; every figure link resolves relative to the report
    brats = row("[hyperbolic_brats_seg](#hyperbolic-vae-brats-whole-tumour-dice)")
    assert brats[1:3] == ["0", "–"] and brats[3].startswith("hyperbolic, euclidean")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 13 and all(l.startswith("../") for l in links)
    assert all((out.parent / l).resolve().is_file() for l in links)
    assert any(l.endswith("vqdiff/eval/streamlines.png") for l in links)
    assert any(l.endswith("hyperbolic/eval/latent_projection.png") for l in links)
    assert any(l.endswith("outputs/eval_ssim_distribution.png") for l in links), "bundle-level figures too"
    assert not list(out.parent.glob(".*tmp"))


def test_malformed_metrics_fail_clearly_or_are_marked_skipped(tree, tmp_path, capsys):
    root, _ = tree
    broken = tmp_path / "bundles"
    shutil.copytree(root, broken)
    bad = broken / "vq_quantizers" / "outputs" / "gumbel" / "eval" / "metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"method": "gumbel", "mse": ')
    with pytest.raises(ReportError, match=re.escape(str(bad)) + ".*not valid JSON"):
        build_report(broken, tmp_path / "r.md")
    assert main(["--bundles_dir", str(broken), "--output", str(tmp_path / "r.md")]) == 1
    assert str(bad) in capsys.readouterr().err and not (tmp_path / "r.md").exists()
    text = build_report(broken, tmp_path / "r.md", skip_invalid=True)
    assert "## Skipped files" in text and str(bad) in text and "| Gumbel-softmax | not run |" in text
    # valid JSON without what the bundle's table needs: the file and the missing key are named
    bad.write_text(json.dumps({"method": "gumbel", "ssim": {"mean": 0.5, "std": 0.1}}))
    with pytest.raises(ReportError, match=re.escape(str(bad)) + ".*missing key 'mse'"):
        build_report(broken, tmp_path / "r.md")
    bad.write_text("[1, 2]")
    with pytest.raises(ReportError, match="expected a JSON object"):
        build_report(broken, tmp_path / "r.md")
    with pytest.raises(ReportError, match="no such bundles folder"):
        build_report(tmp_path / "nowhere", tmp_path / "r.md")


@pytest.mark.slow
def test_bundle_evaluation_cli_writes_figures_and_report_embeds_them(cache_dir, tmp_path):
    """The toy hyperbolic bundle's evaluate.json (real CLI, an untrained checkpoint) writes its figures; the report shows them."""
    from monai_genvq.apps.hyperbolic import HyperbolicVAE, ensure_hierarchy_toy

    data = ensure_hierarchy_toy(n_train=1, n_test=1, size=24)
    bundles = tmp_path / "bundles"
    configs = bundles / "hyperbolic_toy_seg" / "configs"
    shutil.copytree(REPO / "bundles" / "hyperbolic_toy_seg" / "configs", configs)
    train = json.loads((configs / "train.json").read_text())
    net = HyperbolicVAE(
        spatial_dims=3,
        in_channels=1,
        patch_size=train["patch_size"],
        latent_dim=train["latent_dim"],
        channels=train["channels"],
        gyro_channels=train["gyro_channels"],
        max_radius=train["max_radius"],
    )
    ckpt = bundles / "hyperbolic_toy_seg" / "outputs" / "hyperbolic" / "models" / "model.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"model": net.state_dict()}, ckpt)
    run_bundle(
        "evaluating",
        [configs / "train.json", configs / "evaluate.json"],
        bundles / "hyperbolic_toy_seg",
        "--dataset_dir",
        str(data),
    )
    eval_dir = bundles / "hyperbolic_toy_seg" / "outputs" / "hyperbolic" / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert set(metrics["figures"]) == {"latent_projection.png", "segmentation.png", "reconstructions.png"}
    for f in metrics["figures"]:
        _png(eval_dir / f)
    import sys
    from subprocess import run

    proc = run(
        [
            sys.executable,
            "-m",
            "monai_genvq.report",
            "--bundles_dir",
            str(bundles),
            "--output",
            str(tmp_path / "report.md"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "report.md").read_text()
    assert "](bundles/hyperbolic_toy_seg/outputs/hyperbolic/eval/latent_projection.png)" in text
    assert re.search(r"\| level3 \| \d\.\d{3} ± \d\.\d{3} \| not run \|", text)


def test_report_puts_the_seeds_numbers_beside_ours(tree, tmp_path):
    """Seed rows from seed_results.json in every table, captions with data / protocol / seeds, nested M&Ms layout."""
    root, results = tree
    bundles = tmp_path / "bundles"
    shutil.copytree(root, bundles)
    c = bundles / "cardiac_attri_sivae" / "outputs"
    (c / "attri_sivae" / "run_settings.json").write_text(json.dumps({"options": {"seed": 3, "max_epochs": 7}}))
    ours = json.loads((c / "attri_sivae" / "eval" / "metrics.json").read_text())
    for folder, dataset in (
        ("mnms/attri_vae/eval", "synthetic M&Ms-layout phantom (test split)"),
        ("mnms/attri_sivae/eval_acdc", "ACDC (test split), trained on M&Ms"),
    ):
        (c / folder).mkdir(parents=True)
        (c / folder / "metrics.json").write_text(json.dumps({**ours, "dataset": dataset, "figures": []}))
    text = build_report(bundles, tmp_path / "report.md")
    lines = text.splitlines()

    def cells(first_cell, after=0):
        i = next(i for i, line in enumerate(lines) if i >= after and line.startswith(f"| {first_cell} |"))
        return i, [x.strip() for x in lines[i].strip("|").split("|")]

    # cardiac, ACDC column of Table 1 ("0.53 / 0.27" -> 0.53), then our row of the same method
    i_seed, seed_row = cells("Attri-SIVAE (seed, Table 1, ACDC)")
    assert seed_row[1:7] == ["0.53", "0.78", "0.80", "0.27", "–", "–"]
    i_ours, our_row = cells("Attri-SIVAE", i_seed)
    assert our_row[1] == f"{ours['interpretability']:.3f}" and i_ours > i_seed
    assert "Attri-SIVAE: seed 3, 7 epochs" in text and "β-VAE: seed not recorded (no run_settings.json)" in text
    assert "k-NN MI (sklearn mutual_info_regression, n_neighbors=3, random_state=0; as AR-VAE)" in text
    # outputs/mnms/<variant>/eval: the M&Ms column; .../eval_acdc of an M&Ms model: section 4.3
    i_mnms = lines.index("### Evaluation `mnms/eval`: synthetic M&Ms-layout phantom (test split)")
    assert cells("Attri-VAE (seed, Table 1, M&Ms)", i_mnms)[1][1:5] == ["0.20", "0.51", "0.73", "0.10"]
    i_cross = next(i for i, line in enumerate(lines) if line.startswith("### Evaluation `mnms/eval_acdc`"))
    assert cells("Attri-SIVAE (seed, section 4.3)", i_cross)[1][1:7] == ["0.54", "–", "–", "–", "–", "0.80 ± 0.05"]
    assert cells("Attri-SIVAE", i_cross)[0] > i_cross
    # streamlines: the seed's per-bundle range beside ours, and its Table 1 as published
    assert cells("VQ-Diff (seed)")[1][1] == "0.9855–0.9990 over 12 bundles"
    assert (
        "| IFOF.L | 0.9855 ± 0.0164 | 0.9975 ± 0.0016 | 0.2340 ± 0.2130 | 0.3143 ± 0.1773 | 0.2296 ± 0.162993 |" in text
    )
    # hyperbolic toy: the ablation row matching each configuration, right above our level row
    i, toy = cells("level1 (seed)")
    assert toy[1:3] == ["0.95211", "0.76111"] and cells("level1", i)[0] == i + 1
    assert cells("whole_tumour (seed)")[1][1] == "0.68391"  # BraTS, although nothing of ours ran
    # every table says where the seed's numbers come from and what data / seeds ours had
    assert text.count("Seed rows: seed `") >= 5 and "Ours: data acdc:test" in text
    assert "Seeds: 5 runs with different seeds" in text and "reports no numbers" in text


def test_streamline_runs_and_evaluation_modes_are_rows_of_their_own(tree, tmp_path):
    """Two runs of one method (run_tag), the Gumbel evaluation and the seed's VAE: one labelled row each, none lost."""
    root, _ = tree
    bundles = tmp_path / "bundles"
    shutil.copytree(root / "streamlines_vqdiff", bundles / "streamlines_vqdiff")
    s = bundles / "streamlines_vqdiff" / "outputs"
    ours = json.loads((s / "vqdiff" / "eval" / "metrics.json").read_text())
    runs = {
        "vqvae_s0/eval": ("vqvae", 0.11),
        "vqvae_remedies_s0/eval": ("vqvae", 0.22),
        "vqdiff/eval_gumbel": ("vqdiff", 0.33),
        "vae_seed_s0/eval": ("vae_seed", 0.44),
    }
    for folder, (method, buan) in runs.items():
        (s / folder).mkdir(parents=True)
        metrics = {**ours, "method": method, "figures": []}
        metrics["buan_normalised"] = {**ours["buan_normalised"], "all": {"mean": buan, "std": 0.0}}
        (s / folder / "metrics.json").write_text(json.dumps(metrics))
    text = build_report(bundles, tmp_path / "report.md")
    rows: dict = {}
    for line in text.splitlines():  # the first table (BUAN overall); later tables repeat the row names
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0][2:], line.split(" | ")[1])
    assert rows["VQ-VAE (s0)"].startswith("0.110") and rows["VQ-VAE (remedies s0)"].startswith("0.220")
    assert rows["VQ-Diff (Gumbel noise at evaluation)"].startswith("0.330")
    assert rows["VAE, 20-d global as the seed's (s0)"].startswith("0.440")
    assert (
        rows["VQ-Diff"] == f"{ours['buan_normalised']['all']['mean']:.3f} ± {ours['buan_normalised']['all']['std']:.3f}"
    )
    assert rows["VQ-EMA"] == "not run"  # a variant of the bundle's configs that has no evaluation yet


def test_seed_results_are_validated(tmp_path):
    from monai_genvq.report import SEED_RESULTS_FILE, load_seed_results

    data = json.loads(SEED_RESULTS_FILE.read_text())
    data["cardiac_attri_sivae"]["tables"][0]["rows"][0] = ["β-VAE", "0.28 / 0.14"]
    bad = tmp_path / "seeds.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="one cell per header cell"):
        load_seed_results(bad)


SEEDS_DIR = REPO.parent / "shared" / "seeds"


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="the seed documents are not next to this checkout")
def test_seed_numbers_are_transcribed_exactly():
    """Each transcribed row appears in its seed document as printed (markdown tables; Table 1 of 001 tab-separated)."""
    from monai_genvq.report import load_seed_results

    seeds = load_seed_results()
    for bundle, entry in seeds.items():
        if bundle == "about":
            continue
        doc = (SEEDS_DIR / entry["document"]).read_text(encoding="utf-8")
        printed = {tuple(c.strip() for c in line.strip().strip("|").split("|")) for line in doc.splitlines()}
        tabbed = {tuple(c.strip().replace("β -VAE", "β-VAE") for c in line.split("\t")) for line in doc.splitlines()}
        for table in entry["tables"]:
            for row in table["rows"]:
                if table["key"] == "ablations":  # the printed table leaves a repeated 'Latent Space' empty
                    assert tuple(row) in printed or ("", *row[1:]) in printed, row
                elif table["key"] in ("cross_domain", "training_list"):  # numbers quoted from the text
                    numbers = re.findall(r"\d+\.\d+", " ".join(row[1:]))
                    assert numbers and all(n in doc for n in numbers), row
                else:
                    assert tuple(row) in printed or tuple(row) in tabbed, row


def test_report_tolerates_other_schemas_and_figure_paths(tmp_path):
    """An evaluation whose figures are listed by absolute path, extra per-method metrics, and an unknown bundle."""
    bundles = tmp_path / "bundles"
    (bundles / "anatomical_prior_seg" / "configs").mkdir(parents=True)
    ev = bundles / "anatomical_prior_seg" / "outputs" / "default" / "eval"
    save_image_grid(torch.rand(2, 1, 8, 8), ev / "overlays.png")
    stats = {"mean": 0.75, "std": 0.05, "n": 4}
    (ev / "metrics.json").write_text(
        json.dumps(
            {
                "label_names": ["LV"],
                "dice": {"model": {"LV": stats, "mean": stats}},
                "other_metrics": {"model": {"hausdorff": {"mean": 3.5, "std": 0.5}}},
                "figures": [str(ev / "overlays.png")],
            }
        )
    )
    (bundles / "new_bundle" / "configs").mkdir(parents=True)
    (bundles / "new_bundle" / "configs" / "train.json").write_text(json.dumps({"variant": "base"}))
    (bundles / "new_bundle" / "configs" / "other.json").write_text(json.dumps({"variant": "other"}))
    (bundles / "new_bundle" / "outputs" / "base" / "eval").mkdir(parents=True)
    (bundles / "new_bundle" / "outputs" / "base" / "eval" / "metrics.json").write_text(
        json.dumps({"loss": {"mean": 0.125, "std": 0.0}, "auc": 0.9})
    )
    text = build_report(bundles, tmp_path / "report.md")
    assert "| model | 0.750 ± 0.050 | 0.750 ± 0.050 | 3.500 ± 0.500 |" in text
    assert "](bundles/anatomical_prior_seg/outputs/default/eval/overlays.png)" in text
    assert "| loss | 0.125 ± 0.000 |" in text and "| auc | 0.9 |" not in text and "| auc | 0.900 |" in text
    assert "Not run: other." in text


# the data description each evaluation writes into metrics.json and the title of metrics.md: the embedded
# phantom (empty dataset_dir) must not read like the real dataset (it once read "acdc:test" either way)
_TITLE_CASES = [
    ("cardiac_attri_sivae", ["train.json", "evaluate.json"], "validate#handlers#2#dataset", "ACDC (test split)"),
    ("vq_quantizers", ["train.json", "evaluate.json"], "validate#handlers#2#dataset", "ACDC (test split)"),
    (
        "streamlines_vqdiff",
        ["train.json", "evaluate.json"],
        "validate#handlers#2#dataset",
        "TractoInferno at /data/X (validation split)",
    ),
    (
        "hyperbolic_toy_seg",
        ["train.json", "evaluate.json"],
        "evaluation#dataset",
        "hierarchy-toy volumes at /data/X (test split)",
    ),
    ("hyperbolic_brats_seg", ["train.json", "evaluate.json"], "evaluation#dataset", "BraTS at /data/X (test split)"),
    ("hyperbolic_cryoet_seg", ["train.json", "evaluate.json"], "evaluation#dataset", "cryo-ET at /data/X (test split)"),
]


@pytest.mark.parametrize("bundle,configs,key,real", _TITLE_CASES, ids=[c[0] for c in _TITLE_CASES])
def test_evaluation_title_says_synthetic_phantom_or_real_dataset(bundle, configs, key, real):
    from monai.bundle import ConfigParser

    def title(dataset_dir):
        parser = ConfigParser()
        parser.read_config([str(REPO / "bundles" / bundle / "configs" / c) for c in configs])
        parser["bundle_root"], parser["dataset_dir"] = str(REPO / "bundles" / bundle), dataset_dir
        return parser.get_parsed_content(key)

    phantom = title("")
    assert phantom.startswith("synthetic ") and phantom.endswith(" split)") and ":" not in phantom, phantom
    assert title("/data/X") == real


def test_cardiac_cross_domain_title_names_both_datasets():
    from monai.bundle import ConfigParser

    configs = ["train.json", "mnms.json", "evaluate.json", "cross_domain.json"]
    parser = ConfigParser()
    parser.read_config([str(REPO / "bundles" / "cardiac_attri_sivae" / "configs" / c) for c in configs])
    parser["bundle_root"], parser["dataset_dir"] = str(REPO / "bundles" / "cardiac_attri_sivae"), "/data/MnM"
    assert parser.get_parsed_content("validate#handlers#2#dataset") == (
        "synthetic ACDC-layout phantom (test split), trained on M&Ms"
    )


# ------------------------------------------------------------------ what each figure tells its reader


def _texts(legend):
    return [t.get_text() for t in legend.get_texts()]


def test_attribute_traversal_labels_attribute_and_latent_values():
    from monai_genvq.apps.cardiac.figures import _attribute_traversal_figure

    names = ["LVEDV (z0)", "MEDV (z1)"]
    row_values = [[-1.5, 0.0, 1.5], [0.25, 0.5, 0.75]]
    fig = _attribute_traversal_figure(torch.rand(2, 3, 1, 8, 8), names, [0.0, 0.5, 1.0], row_values=row_values)
    axes = np.asarray(fig.axes).reshape(2, 3)
    assert [axes[i, 0].get_ylabel() for i in range(2)] == names
    assert [[ax.get_xlabel() for ax in row] for row in axes] == [
        ["-1.50", "+0.00", "+1.50"],
        ["+0.25", "+0.50", "+0.75"],
    ]
    assert "latent" in fig._supxlabel.get_text()
    with pytest.raises(ValueError, match="row_values"):
        _attribute_traversal_figure(torch.rand(2, 3, 1, 8, 8), names, [0.0, 0.5, 1.0], row_values=row_values[:1])
    pyplot().close(fig)


def test_overlay_grid_has_column_titles_and_a_label_legend(tmp_path, monkeypatch):
    from matplotlib.colors import to_rgb

    from monai_genvq.visualize import LABEL_COLOURS, label_overlay, save_overlay_grid
    from monai_genvq.visualize.segmentation import _overlay_grid_figure

    lab = np.zeros((8, 8), int)
    lab[2:4, 2:4], lab[5:7, 5:7] = 1, 3
    rows = [[label_overlay(np.random.rand(8, 8), m) for m in (None, lab, lab)]] * 2
    titles = ["image", "ground truth", "anatomical prior VAE (unsupervised)"]
    fig = _overlay_grid_figure(rows, titles, ["LV", "MYO", "RV"])
    assert [ax.get_title().replace("\n", " ") for ax in fig.axes[:3]] == titles
    (legend,) = fig.legends
    assert _texts(legend) == ["LV", "MYO", "RV"]
    assert [to_rgb(p.get_facecolor()) for p in legend.legend_handles] == [to_rgb(c) for c in LABEL_COLOURS[:3]]
    pyplot().close(fig)
    _png(save_overlay_grid(rows, tmp_path / "overlays.png", column_titles=titles, label_names=["LV", "MYO", "RV"]))

    # the anatomical-prior report passes its columns and label names
    from monai_genvq.apps.anatomical_prior import SegmentationReport
    from monai_genvq.apps.anatomical_prior import report as ap_report

    seen = {}
    monkeypatch.setattr(ap_report, "save_overlay_grid", lambda rows, path, **kw: seen.update(kw))
    report = SegmentationReport(tmp_path, ["LV", "MYO", "RV"], n_figure=1)
    report.results = {"k-means": {}}
    report.samples = {"k-means": [(np.random.rand(8, 8), lab, lab)]}
    report.write_figure(tmp_path / "o.png")
    assert seen == {"column_titles": ["image", "ground truth", "k-means"], "label_names": ["LV", "MYO", "RV"]}


def test_segmentation_slices_have_a_cluster_legend():
    from monai_genvq.visualize.slices import _segmentation_slices_figure

    vol = np.random.default_rng(0).random((12, 12, 6))
    clusters = (vol * 3).astype(int)  # ids 0, 1, 2
    fig = _segmentation_slices_figure(vol, {"truth": (vol > 0.5).astype(int), "clusters": clusters})
    (legend,) = fig.legends
    assert _texts(legend) == ["cluster 1", "cluster 2"] and "colour" in legend.get_title().get_text()
    pyplot().close(fig)
    fig = _segmentation_slices_figure(vol, {"clusters": clusters}, label_names={1: "tumour core", 2: "oedema"})
    assert _texts(fig.legends[0]) == ["tumour core", "oedema"]
    pyplot().close(fig)


def test_streamline_render_ticks_are_readable_and_in_mm():
    from monai_genvq.apps.streamlines.figures import _streamline_render_figure

    rng = np.random.default_rng(0)
    groups = [np.cumsum(rng.normal(size=(8, 12, 3)) * [3.0, 1.0, 0.2], axis=1) for _ in range(2)]
    fig = _streamline_render_figure(groups, groups, names=["AF_L", "CST_R"])
    for ax in fig.axes:
        assert ax.get_xlabel().endswith("(mm)") and ax.get_ylabel().endswith("(mm)")
        assert ax.xaxis.label.get_fontsize() >= 8 and ax.yaxis.label.get_fontsize() >= 8
        ticks = ax.get_xticklabels() + ax.get_yticklabels()
        assert ticks and min(t.get_fontsize() for t in ticks) >= 8
    pyplot().close(fig)


def test_every_documented_bundle_run_names_its_bundle_root():
    """Without --bundle_root (default ".") a run writes into the repository root, where the report does not look."""
    docs = [REPO / "README.md", *sorted((REPO / "bundles").glob("*/docs/README.md"))]
    docs += [p for p in sorted((REPO / "docs").glob("*.md")) if p.name != "monai_label.md"]
    missing = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8").replace("\\\n", " ")  # join continued shell lines
        for line in text.splitlines():
            for m in re.finditer(r"monai\.bundle run \w+", line):
                command = line[m.start() :].split("`")[0]  # an inline command ends at its closing backtick
                if "--config_file" in command and "--bundle_root" not in command:
                    missing.append(f"{doc.relative_to(REPO)}: {command.strip()}")
    assert not missing, "commands without --bundle_root:\n" + "\n".join(missing)
