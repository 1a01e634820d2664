"""End-to-end runs of bundles/cardiac_attri_sivae through the real ``python -m monai.bundle`` CLI."""

import json

import pytest
from conftest import REPO, run_bundle

BUNDLE = REPO / "bundles" / "cardiac_attri_sivae"
CONFIGS = BUNDLE / "configs"
VARIANT_FILES = {
    "attri_sivae": [],
    "attri_vae": ["attri_vae.json"],
    "beta_vae": ["beta_vae.json"],
    "soft_intro_vae": ["soft_intro_vae.json"],
}
TINY_ACDC = "{'n_train': 4, 'n_test': 3, 'shape': [96, 96], 'n_slices': 6, 'n_frames': 3}"
TINY_MNMS = "{'n_train': 4, 'n_val': 1, 'n_test': 4, 'n_unlabeled': 1, 'shape': [96, 96], 'n_slices': 6, 'n_frames': 3}"
DATA = ("--synthetic_acdc", TINY_ACDC, "--synthetic_mnms", TINY_MNMS, "--batch_size", "4")
SHORT = ("--max_epochs", "1", "--train#trainer#epoch_length", "2", "--val_interval", "1", *DATA)


def test_train_config_has_model_zoo_ids():  # metadata, README, licences, JSON: tests/test_model_zoo.py
    train = json.loads((CONFIGS / "train.json").read_text())
    for key in (
        "bundle_root",
        "device",
        "dataset_dir",
        "network_def",
        "network",
        "train",
        "validate",
        "val_interval",
        "initialize",
        "run",
        "training",
        "finalize",
    ):
        assert key in train, key
    assert isinstance(train["train"]["handlers"], list)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["beta_vae", "soft_intro_vae"])  # attri_vae: the M&Ms test below
def test_cli_trains_two_iterations(variant, cache_dir, tmp_path):
    extra = ()
    if variant == "soft_intro_vae":  # with the perceptual term of paper.json, from a user's local VGG16 file
        import torch

        from monai_genvq.losses.perceptual import _vgg_features

        weights = tmp_path / "my_vgg16.pth"
        torch.save({f"features.{k}": v for k, v in _vgg_features("vgg16").state_dict().items()}, weights)
        extra = ("--reconstruction", "mse", "--perceptual_delta", "50.0", "--perceptual_weights", str(weights))
    out = run_bundle(
        "training", [CONFIGS / "train.json"] + [CONFIGS / f for f in VARIANT_FILES[variant]], tmp_path, *SHORT, *extra
    )
    models = tmp_path / "outputs" / variant / "models"
    assert (models / "model.pt").is_file() and (models / "model_final.pt").is_file()
    assert "val_ssim" in out
    if extra:
        from monai_genvq.apps.cardiac import training_summary

        summary = training_summary(tmp_path / "outputs" / variant / "run_settings.json")
        assert summary["perceptual_term"] == f"on (δ = 50, vgg16 mse, weights {weights})", summary


@pytest.mark.slow
def test_cli_attri_sivae_train_and_evaluate(cache_dir, tmp_path):
    from conftest import evaluate_untrained_copy

    # 20 iterations (not SHORT's 2): enough for the reconstructions to beat an untrained network's
    short = ("--max_epochs", "1", "--train#trainer#epoch_length", "20", "--val_interval", "1", *DATA)
    run_bundle("training", [CONFIGS / "train.json"], tmp_path, *short)
    evaluation = [CONFIGS / "train.json", CONFIGS / "evaluate.json"]
    run_bundle("evaluating", evaluation, tmp_path, *DATA)
    eval_dir = tmp_path / "outputs" / "attri_sivae" / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert metrics["n_images"] == 3 and metrics["codes"] == "posterior mean μ"
    assert metrics["regularized_dims"] == [0, 1, 2] and metrics["ssim"]["settings"]["sigma"] == 1.5
    assert metrics["perceptual_term"] == "off" and metrics["training"]["seed"] == 0  # from the run's settings
    for key in ("interpretability", "modularity", "sap", "scc", "mig"):
        # 3 codes: the k-NN entropy of an attribute can be 0, and MIG then leaves it out (NaN if all; reported)
        assert 0.0 <= metrics[key] <= 1.0 or (key == "mig" and metrics["mig_excluded_attributes"]), key
    assert metrics["mi_estimator"] == "knn" and metrics["scc_max_p"] == 0.05  # the seed's settings by default
    # the same evaluation of a freshly initialised Attri-SIVAE on the same 3 test images (3 images are too few for
    # the disentanglement scores to rank models; SSIM does). Measured (seed 0, 2 threads): SSIM 0.212 trained,
    # 0.0078 untrained, 0.0080 after SHORT's 2 iterations.
    untrained = evaluate_untrained_copy(evaluation, tmp_path, *DATA)
    assert untrained["n_images"] == metrics["n_images"]
    assert metrics["ssim"]["mean"] > untrained["ssim"]["mean"] + 0.1, (metrics["ssim"], untrained["ssim"])
    assert "| Method | Interp | SCC | Mod | SAP | MIG | SSIM |" in (eval_dir / "metrics.md").read_text()
    for png in ("attribute_traversal.png", "ssim_distribution.png", "reconstructions.png"):
        assert (eval_dir / png).stat().st_size > 1000, png
    assert "Attri-SIVAE" in (tmp_path / "outputs" / "eval_table1.md").read_text()


@pytest.mark.slow
def test_cli_mnms_training_and_cross_domain_evaluation(cache_dir, tmp_path):
    configs = [CONFIGS / "train.json", CONFIGS / "attri_vae.json", CONFIGS / "mnms.json"]
    out = run_bundle("training", configs, tmp_path, *SHORT)
    models = tmp_path / "outputs" / "mnms" / "attri_vae" / "models"
    assert (models / "model.pt").is_file() and (models / "model_final.pt").is_file() and "val_ssim" in out
    run_bundle("evaluating", configs + [CONFIGS / "evaluate.json", CONFIGS / "cross_domain.json"], tmp_path, *DATA)
    metrics = json.loads((tmp_path / "outputs" / "mnms" / "attri_vae" / "eval_acdc" / "metrics.json").read_text())
    assert (
        metrics["dataset"] == "synthetic ACDC-layout phantom (test split), trained on synthetic M&Ms-layout phantom"
        and metrics["n_images"] == 3
    )
    assert list(metrics["ssim_per_domain"]) == ["ACDC"] and metrics["regularized_dims"] == [0, 1, 2]


def test_demo_finds_the_bundle_it_drives():
    """``python -m monai_genvq.apps.cardiac.demo`` reads the bundle's configs from the repository."""
    from monai_genvq.apps.cardiac import demo

    assert demo.BUNDLE.resolve() == BUNDLE.resolve()
    assert (demo.BUNDLE / "configs" / "train.json").is_file()


def test_demo_seed_table_gathers_every_seed_folder(tmp_path):
    """``--seeds`` runs add up: the table averages every ``seed_N`` folder, the seed paper's Table 1 rows first."""
    from monai_genvq.apps.cardiac import demo

    for seed, interp in ((0, 0.4), (2, 0.6)):
        d = tmp_path / f"seed_{seed}" / "outputs" / "attri_sivae" / "eval"
        d.mkdir(parents=True)
        m = {"interpretability": interp, "scc": 0.5, "ssim": {"mean": 0.9}, "perceptual_term": "off"}
        (d / "metrics.json").write_text(json.dumps({**m, "dataset": "phantom", "mi_description": "k-NN MI"}))
    text = demo._seed_table(tmp_path, "outputs", "eval", "acdc")
    assert text == (tmp_path / "table1_seeds_eval.md").read_text()
    assert "| Attri-SIVAE (seed paper) | 5 | 0.53 | 0.78 | 0.80 | 0.27 | – | – |" in text
    assert "| Attri-SIVAE | 0, 2 | 0.500 ± 0.100 | 0.500 ± 0.000 |" in text and "perceptual term: off" in text
