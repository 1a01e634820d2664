"""Hyperbolic VAE: a short real training run, and the three bundles through the real CLI."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import REPO, run_bundle
from ignite.engine import Events
from monai.transforms import LoadImage

from monai_genvq.apps.hyperbolic import (
    HyperbolicSegmentation,
    HyperbolicVAE,
    HyperbolicVAETrainer,
    TripletPatchSamplerd,
    discover_hierarchy_toy,
    ensure_hierarchy_toy,
    generate_synthetic_brats,
    generate_synthetic_cryoet,
    hierarchical_triplet_loss,
    hyperbolic_loss_terms,
)

BUNDLES = {
    name: REPO / "bundles" / name / "configs"
    for name in ("hyperbolic_toy_seg", "hyperbolic_brats_seg", "hyperbolic_cryoet_seg")
}
SHORT = ("--max_epochs", "1", "--triplets_per_volume", "4")


@pytest.fixture(scope="module")
def tiny_toy(cache_dir):
    return ensure_hierarchy_toy(n_train=2, n_test=1, size=32)


@pytest.mark.parametrize("name", list(BUNDLES))
def test_train_config_has_model_zoo_ids(name):  # metadata, README, licences, JSON: tests/test_model_zoo.py
    configs = BUNDLES[name]
    train = json.loads((configs / "train.json").read_text())
    for key in (
        "bundle_root",
        "device",
        "dataset_dir",
        "network_def",
        "network",
        "train",
        "initialize",
        "run",
        "training",
    ):
        assert key in train, key
    assert isinstance(train["train"]["handlers"], list)
    for variant in ("euclidean", "no_gyroconv", "no_triplet", "riemannian", "intensity"):
        assert (configs / f"{variant}.json").is_file(), variant


def test_released_capacity_config_builds_the_released_codes_size(tmp_path):
    """released_capacity.json: encoder of ~1.65 M parameters, 300 gyroplanes, K = 8 (the seed code's model)."""
    from conftest import parse_bundle

    configs = [BUNDLES["hyperbolic_toy_seg"] / f for f in ("train.json", "released_capacity.json")]
    net = parse_bundle(configs, tmp_path).get_parsed_content("network_def")
    n_encoder = sum(p.numel() for p in net.encoder.parameters())
    assert 1.5e6 < n_encoder < 1.8e6, n_encoder
    assert net.posterior_samples == 8 and net.head.p_tilde.shape[0] == 300


def _batches(records, n_batches, triplets, seed=0):
    sampler = TripletPatchSamplerd(
        "image", num_samples=triplets, patch_size=10, parent_size=(14, 24), sampling="ours"
    ).set_random_state(seed)
    load = LoadImage(ensure_channel_first=True)
    vols = [{"image": load(r["image"])} for r in records]
    for i in range(n_batches):
        items = sampler(vols[i % len(vols)])
        yield {k: torch.stack([it[k] for it in items]) for k in ("parent", "child", "negative")}


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"distribution": "riemannian"},
        {"curvature": 0.0, "decoder_head": "linear"},
        {"decoder_head": "gyroplane"},
    ],
)
def test_trainer_runs_every_configuration(config, tiny_toy):
    torch.manual_seed(0)
    net = HyperbolicVAE(patch_size=10, latent_dim=2, channels=(4, 8, 8, 8), gyro_channels=4, **config)
    trainer = HyperbolicVAETrainer(
        torch.device("cpu"),
        1,
        list(_batches(discover_hierarchy_toy(tiny_toy), 2, 4)),
        net,
        torch.optim.Adam(net.parameters(), 1e-3),
        triplet_weight=1.0,
    )
    trainer.run()
    out = hyperbolic_loss_terms(trainer.state.output)
    assert all(torch.isfinite(torch.as_tensor(out[k])) for k in ("loss", "rec_loss", "kl", "triplet"))


@pytest.mark.parametrize("squared", [False, True])
def test_trainer_logs_the_triplet_loss_it_is_configured_with(squared, tiny_toy):
    """With a frozen network the logged triplet term equals the loss on the batch's posterior means."""
    torch.manual_seed(0)
    net = HyperbolicVAE(patch_size=10, latent_dim=2, channels=(4, 8, 8, 8), gyro_channels=4)
    batch = next(_batches(discover_hierarchy_toy(tiny_toy), 1, 8))
    trainer = HyperbolicVAETrainer(
        torch.device("cpu"),
        1,
        [batch],
        net,
        torch.optim.SGD(net.parameters(), lr=0.0),
        margin=2.0,
        squared_triplet=squared,
    )
    trainer.run()
    with torch.no_grad():
        mu = {k: net.encode(torch.as_tensor(batch[k]).float())[0] for k in ("parent", "child", "negative")}
    expected = hierarchical_triplet_loss(mu["parent"], mu["child"], mu["negative"], margin=2.0, squared=squared)
    assert hyperbolic_loss_terms(trainer.state.output)["triplet"] == pytest.approx(float(expected), rel=1e-5)


def test_default_triplet_weight_shapes_the_embedding(cache_dir):
    """The NLL is summed over 10³ voxels: the default β must make the triplet term matter (β = 1 did not)."""
    records = discover_hierarchy_toy(ensure_hierarchy_toy(n_train=2, n_test=1, size=32, version=3))  # measured on v3
    train, held_out = list(_batches(records, 24, 16)), next(_batches(records, 1, 64, seed=1))
    triplet_after = {}
    for name, kwargs in (
        ("default", {}),
        ("weight_1", {"triplet_weight": 1.0}),
        ("no_triplet", {"triplet_weight": 0.0}),
    ):
        torch.manual_seed(0)
        net = HyperbolicVAE(patch_size=10, latent_dim=2, channels=(4, 8, 8, 8), gyro_channels=4)
        HyperbolicVAETrainer(
            torch.device("cpu"), 1, train, net, torch.optim.Adam(net.parameters(), 2e-3), kl_weight=0.1, **kwargs
        ).run()
        net.eval()
        with torch.no_grad():
            mu = {k: net.encode(held_out[k])[0] for k in ("parent", "child", "negative")}
        triplet_after[name] = float(hierarchical_triplet_loss(mu["parent"], mu["child"], mu["negative"]))
    assert triplet_after["default"] < 0.75 * min(triplet_after["no_triplet"], triplet_after["weight_1"]), triplet_after


@pytest.mark.slow
def test_short_training_loss_drops_and_beats_untrained_model(cache_dir, tmp_path):
    root = ensure_hierarchy_toy(n_train=2, n_test=1, size=50, version=3)  # calibrated on v3
    records = discover_hierarchy_toy(root, "train")
    torch.manual_seed(0)
    net = HyperbolicVAE(patch_size=10, latent_dim=2, channels=(8, 16, 16, 16), gyro_channels=8)
    levels = {"level1": ("label_level1", 2, [0, 1]), "level2": ("label_level2", 4, [0, 1, 2, 3])}
    test = discover_hierarchy_toy(root, "test")
    before = HyperbolicSegmentation(
        net, test, levels, tmp_path / "m" / "before" / "eval", write_segmentations=False
    ).run()
    losses = []
    trainer = HyperbolicVAETrainer(
        torch.device("cpu"),
        1,
        list(_batches(records, 60, 16)),
        net,
        torch.optim.Adam(net.parameters(), 3e-3),
        kl_weight=0.5,
    )
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.append(hyperbolic_loss_terms(e.state.output)["rec_loss"])
    )
    trainer.run()
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5]), "the reconstruction loss must drop"
    after = HyperbolicSegmentation(
        net, test, levels, tmp_path / "m" / "after" / "eval", write_segmentations=False
    ).run()
    d_before, d_after = before["levels"]["level1"]["mean"], after["levels"]["level1"]["mean"]
    assert d_after > 0.8 and d_after > d_before, (d_before, d_after)
    assert (tmp_path / "m" / "comparison.md").read_text().count("|") > 6


def _one_cluster_dice(configs, bundle_root, *overrides):
    """Per level, the Dice that the evaluation of ``configs`` gives one cluster everywhere: its records, label
    conversions and mask, Hungarian matching, mean over volumes. What an embedding that carries nothing scores."""
    from conftest import parse_bundle

    from monai_genvq.metrics.cluster_dice import hungarian_dice

    evaluation = parse_bundle(configs, bundle_root, *overrides).get_parsed_content("evaluation")
    scores = {name: [] for name in evaluation.levels}
    for record in evaluation.records:
        image = evaluation.load(record["image"]).as_tensor().numpy()
        keep = np.ones(image.shape[1:], bool) if evaluation.mask == "none" else (image != 0).any(0)
        for name, (label_key, _, label_ids) in evaluation.levels.items():
            label = np.rint(evaluation.load(record[label_key], normalize=False).as_tensor().numpy()[0]).astype(int)
            if name in evaluation.label_transforms:
                label = evaluation.label_transforms[name](label)
            scores[name].append(hungarian_dice(np.zeros(int(keep.sum()), int), label[keep], label_ids)[0])
    return {name: float(np.mean(v)) for name, v in scores.items()}


@pytest.mark.slow
def test_toy_bundle_cli_train_evaluate(tiny_toy, tmp_path):
    configs = [BUNDLES["hyperbolic_toy_seg"] / "train.json"]
    # 10 epochs of 16 triplets per volume (not SHORT's 1 of 4): enough to beat the one-cluster reference below
    trained = ("--max_epochs", "10", "--triplets_per_volume", "16")
    run_bundle("training", configs, tmp_path, "--dataset_dir", str(tiny_toy), *trained)
    assert (tmp_path / "outputs" / "hyperbolic" / "models" / "model.pt").is_file()
    run_bundle(
        "evaluating",
        configs + [BUNDLES["hyperbolic_toy_seg"] / "evaluate.json"],
        tmp_path,
        "--dataset_dir",
        str(tiny_toy),
    )
    eval_dir = tmp_path / "outputs" / "hyperbolic" / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert set(metrics["levels"]) == {"level1", "level2", "level3"} and metrics["clustering"] == "poincare"
    assert all(0 <= v["mean"] <= 1 for v in metrics["levels"].values())
    # one cluster everywhere on the same test volume (the toy evaluation is too slow to run twice for an untrained
    # network). Toy v4 (the default since issue 20; its levels do not follow intensity), measured in CI on 2 cores:
    # trained 0.518/0.325/0.149, one cluster 0.402/0.172/0.086 (levels 1/2/3). On toy v3 the trained model gave
    # 0.974/0.395/0.152 against 0.475/0.238/0.119; this rules out embeddings that carry nothing.
    ref = _one_cluster_dice(
        configs + [BUNDLES["hyperbolic_toy_seg"] / "evaluate.json"], tmp_path, "--dataset_dir", str(tiny_toy)
    )
    dice = {level: v["mean"] for level, v in metrics["levels"].items()}
    assert all(dice[k] > ref[k] + 0.08 for k in ("level1", "level2")) and dice["level3"] > ref["level3"], (dice, ref)
    name = metrics["volumes"][0]["name"]
    seg = nib.load(eval_dir / "segmentations" / f"{name}_level3.nii.gz")
    src = nib.load(discover_hierarchy_toy(tiny_toy, "test")[0]["image"])
    assert seg.shape == src.shape and np.allclose(seg.affine, src.affine)
    assert set(np.unique(np.asarray(seg.dataobj))) <= set(range(8))
    # inference on unlabelled inputs: cluster maps and the per-voxel embedding image, in the input geometry
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "case.nii.gz").write_bytes(
        open(discover_hierarchy_toy(tiny_toy, "test")[0]["image"], "rb").read()
    )
    run_bundle("inferring", [BUNDLES["hyperbolic_toy_seg"] / "inference.json"], tmp_path)
    inf = tmp_path / "outputs" / "hyperbolic" / "inference"
    emb = nib.load(inf / "embeddings" / "case_embedding.nii.gz")
    assert emb.shape == src.shape + (2,) and np.allclose(emb.affine, src.affine)
    assert np.all(np.linalg.norm(np.asarray(emb.dataobj), axis=-1) < 1.0), "embeddings lie inside the unit ball"
    assert set(np.unique(np.asarray(nib.load(inf / "segmentations" / "case_level2.nii.gz").dataobj))) <= {0, 1, 2, 3}
    # the Euclidean ablation trains through the same CLI and lands in the comparison table
    run_bundle(
        "training",
        configs + [BUNDLES["hyperbolic_toy_seg"] / "euclidean.json"],
        tmp_path,
        "--dataset_dir",
        str(tiny_toy),
        *SHORT,
    )
    run_bundle(
        "evaluating",
        configs + [BUNDLES["hyperbolic_toy_seg"] / "euclidean.json", BUNDLES["hyperbolic_toy_seg"] / "evaluate.json"],
        tmp_path,
        "--dataset_dir",
        str(tiny_toy),
    )
    # the k-means-on-intensity reference needs no training and joins the same table
    run_bundle(
        "evaluating",
        configs + [BUNDLES["hyperbolic_toy_seg"] / "evaluate.json", BUNDLES["hyperbolic_toy_seg"] / "intensity.json"],
        tmp_path,
        "--dataset_dir",
        str(tiny_toy),
    )
    table = (tmp_path / "outputs" / "comparison.md").read_text()
    assert all(name in table for name in ("hyperbolic", "euclidean", "intensity", "level3"))
    assert (
        json.loads((tmp_path / "outputs" / "euclidean" / "eval" / "metrics.json").read_text())["clustering"]
        == "euclidean"
    )
    assert json.loads((tmp_path / "outputs" / "intensity" / "eval" / "metrics.json").read_text())[
        "embedding"
    ].startswith("input intensities")


@pytest.mark.slow
def test_brats_bundle_cli_on_2023_layout(tmp_path):
    # phantom v1 (bright tumour): the one-cluster margin below was measured on it; v2 is not a threshold
    data = generate_synthetic_brats(
        tmp_path / "brats", n_cases=2, shape=(32, 32, 24), layout="2023", seed=1, phantom="v1"
    )
    configs = [BUNDLES["hyperbolic_brats_seg"] / "train.json"]
    common = ("--dataset_dir", str(data), "--n_test", "1", "--label_map", "2023")
    run_bundle("training", configs, tmp_path, *common, *SHORT)
    evaluation = configs + [BUNDLES["hyperbolic_brats_seg"] / "evaluate.json"]
    run_bundle("evaluating", evaluation, tmp_path, *common)
    metrics = json.loads((tmp_path / "outputs" / "hyperbolic" / "eval" / "metrics.json").read_text())
    wt = metrics["levels"]["whole_tumour"]
    assert 0 <= wt["per_label"]["1"]["mean"] <= 1
    # one cluster everywhere in the brain mask of the same test case (tumour Dice 0: it is matched to the
    # background). Measured (seed 0, 2 threads): whole tumour 0.644 (tumour 0.530), one cluster 0.461. Untrained
    # networks score 0.53-0.67 (8 seeds): on this phantom the tumour is bright, so this only rules out embeddings
    # that carry nothing, which longer training does not change (0.60-0.79 for 5-40 epochs).
    ref = _one_cluster_dice(evaluation, tmp_path, *common)["whole_tumour"]
    assert wt["mean"] > ref + 0.1 and wt["per_label"]["1"]["mean"] > 0.25, (wt, ref)
    # the wrong label convention (2021 has no label 3) is refused with a clear message
    with pytest.raises(AssertionError, match="not in the label convention"):
        run_bundle(
            "evaluating",
            configs + [BUNDLES["hyperbolic_brats_seg"] / "evaluate.json"],
            tmp_path,
            "--dataset_dir",
            str(data),
            "--n_test",
            "1",
            "--label_map",
            "2021",
        )


@pytest.mark.slow
def test_cryoet_bundle_cli_writes_mrc(tmp_path):
    import mrcfile
    from conftest import evaluate_untrained_copy

    data = generate_synthetic_cryoet(tmp_path / "tomo", n_tomograms=2, shape=(24, 32, 32))
    configs = [BUNDLES["hyperbolic_cryoet_seg"] / "train.json"]
    # 10 epochs of 16 triplets (not SHORT's 1 of 4): enough to beat an untrained network
    run_bundle(
        "training", configs, tmp_path, "--dataset_dir", str(data), "--max_epochs", "10", "--triplets_per_volume", "16"
    )
    evaluation = configs + [BUNDLES["hyperbolic_cryoet_seg"] / "evaluate.json"]
    run_bundle("evaluating", evaluation, tmp_path, "--dataset_dir", str(data))
    metrics = json.loads((tmp_path / "outputs" / "hyperbolic" / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["levels"]["classes"]["mean"] <= 1
    # a freshly initialised network through the same evaluation. Measured (seed 0, 2 threads): Dice 0.273 trained,
    # 0.166 untrained, 0.153 after SHORT; one cluster everywhere: 0.174.
    untrained = evaluate_untrained_copy(evaluation, tmp_path, "--dataset_dir", str(data))["levels"]["classes"]
    assert metrics["levels"]["classes"]["mean"] > untrained["mean"] + 0.05, (metrics["levels"]["classes"], untrained)
    with mrcfile.open(tmp_path / "outputs" / "hyperbolic" / "eval" / "segmentations" / "model_1_classes.mrc") as mrc:
        assert mrc.data.shape == (24, 32, 32) and float(mrc.voxel_size.x) == pytest.approx(10.0)


@pytest.mark.slow
def test_cli_unreadable_mrc_fails_clearly(tmp_path):
    for model in ("model_0", "model_1"):  # two tomograms: one to train on, one held out (n_test=1)
        data = tmp_path / "tomo" / model
        data.mkdir(parents=True)
        (data / "reconstruction.mrc").write_bytes(b"garbage" * 100)
    with pytest.raises(AssertionError, match="cannot read MRC file.*reconstruction.mrc"):
        run_bundle(
            "training",
            [BUNDLES["hyperbolic_cryoet_seg"] / "train.json"],
            tmp_path,
            "--dataset_dir",
            str(tmp_path / "tomo"),
            *SHORT,
        )
