"""Bundle anatomical_prior_seg: metadata, datalist split, and the real CLI (2 iterations of each stage + evaluation)."""

import json
from pathlib import Path

import pytest
from conftest import run_bundle

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "anatomical_prior_seg"
CONFIGS = BUNDLE / "configs"
TINY = "{'n_train': 4, 'n_test': 2, 'shape': [96, 96], 'n_slices': 6, 'n_frames': 2}"


def test_configs_have_model_zoo_ids():  # metadata, README, licences: tests/test_model_zoo.py
    prior = json.loads((CONFIGS / "train.json").read_text())
    for key in ("run", "training", "initialize", "finalize", "network_def", "network", "device"):
        assert key in prior, key
    assert isinstance(prior["train"]["handlers"], list)
    image = json.loads((CONFIGS / "train_image.json").read_text())
    assert "prior_checkpoint" in image["prior"]  # the stage-1 checkpoint is handed over in config
    assert "run" in json.loads((CONFIGS / "evaluate.json").read_text())


@pytest.mark.slow
def test_cli_two_stages_and_evaluation(tmp_path, cache_dir):
    from monai_genvq.apps.anatomical_prior import anatomical_prior_datalists

    lists = anatomical_prior_datalists(synthetic=eval(TINY))
    prior_subjects = {r["subject"] for r in lists["prior"]}
    image_subjects = {r["subject"] for r in lists["image"]}
    assert prior_subjects and image_subjects and not prior_subjects & image_subjects

    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "train_image.json")])
    parser["synthetic_acdc"] = eval(TINY)
    item = parser.get_parsed_content("train#dataset")[0]
    assert "label" not in item and tuple(item["image"].shape) == (1, 64, 64)  # stage 2 sees no labels

    common = ("--synthetic_acdc", TINY, "--batch_size", "4")
    stage1 = [CONFIGS / "train.json"]
    stage2 = stage1 + [CONFIGS / "train_image.json"]
    # 300 prior, 100 image-model (50 of them pre-training) and 50 UNet iterations: enough for each model to beat
    # the references below (with 2 of each none does); about 11 s more than 2 of each on 2 cores
    run_bundle("training", stage1, tmp_path, *common, "--max_epochs", "1", "--epoch_length", "300")
    prior_ckpt = tmp_path / "outputs" / "default" / "prior" / "models" / "model.pt"
    assert prior_ckpt.is_file()
    image_training = ("--max_epochs", "1", "--epoch_length", "100", "--pretrain_iterations", "50")
    out = run_bundle("training", stage2, tmp_path, *common, *image_training)
    assert "pretrain_loss" in out or "Epoch[1] Complete" in out
    assert (tmp_path / "outputs" / "default" / "image" / "models" / "model.pt").is_file()
    run_bundle(
        "evaluating",
        stage2 + [CONFIGS / "evaluate.json"],
        tmp_path,
        *common,
        "--unet_iterations",
        "50",
        "--refine_steps",
        "2",
    )
    eval_dir = tmp_path / "outputs" / "default" / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert set(metrics["dice"]) == {
        "prior mean shape, z = 0 (ignores the image)",
        "anatomical prior VAE + MAP refinement of z (unsupervised)",
        "anatomical prior VAE (unsupervised)",
        "intensity k-means (lower bound)",
        "supervised UNet (upper bound)",
    }
    for result in metrics["dice"].values():
        assert {"LV", "MYO", "RV", "mean"} <= set(result)
        assert 0.0 <= result["mean"]["mean"] <= 1.0
    # on the same 6 test slices: the image model must beat the prior's mean shape (z = 0, the image ignored: what a
    # broken or untrained image encoder gives at best), the supervised UNet the references that learn nothing from
    # labels. Measured (seed 0, 2 threads): VAE 0.373, + MAP 0.374, prior mean shape 0.248, k-means 0.330, UNet 0.611;
    # with 2 iterations of each: 0.238, 0.239, 0.232, 0.330, 0.156.
    dice = {name: result["mean"]["mean"] for name, result in metrics["dice"].items()}
    atlas = dice["prior mean shape, z = 0 (ignores the image)"]
    assert dice["anatomical prior VAE (unsupervised)"] > atlas + 0.05, dice
    assert dice["anatomical prior VAE + MAP refinement of z (unsupervised)"] > atlas + 0.05, dice
    assert dice["supervised UNet (upper bound)"] > max(atlas, dice["intensity k-means (lower bound)"]) + 0.1, dice
    assert "| anatomical prior VAE (unsupervised) |" in (eval_dir / "results.md").read_text()
    assert metrics["figures"] and all(Path(f).is_file() for f in metrics["figures"])
    assert {Path(f).name for f in metrics["figures"]} >= {"overlays.png", "latent_pca.png"}
    assert set(metrics["other_metrics"]["anatomical prior VAE (unsupervised)"]) == {"matched_dice"}


@pytest.mark.slow
def test_brain3d_override_trains_both_stages_and_evaluates_in_3d(tmp_path, cache_dir):
    """configs/brain3d.json: Decathlon-layout NIfTI phantom read by MONAI's loaders, 3-D prior, image model, evaluation."""
    from monai.bundle import ConfigParser

    tiny = {"n_subjects": 8, "size": 16, "fov": 20}

    def parser(*files, **overrides):
        p = ConfigParser()
        p.read_config([str(CONFIGS / f) for f in (*files, "brain3d.json")])
        p.update(
            {
                "bundle_root": str(tmp_path),
                "synthetic_brain": tiny,
                "image_size": 16,
                "batch_size": 2,
                "max_epochs": 1,
                "epoch_length": 2,
                **overrides,
            }
        )
        return p

    root = Path(cache_dir).glob("synthetic_brain_v2-*")
    p1 = parser("train.json")
    item = p1.get_parsed_content("train#dataset")[0]
    assert tuple(item["label"].shape) == (1, 16, 16, 16) and p1.get_parsed_content("network").spatial_dims == 3
    p1.get_parsed_content("run")
    assert (tmp_path / "outputs" / "brain3d" / "prior" / "models" / "model.pt").is_file()
    assert any((r / "dataset.json").is_file() and any((r / "labelsTr").glob("*.nii.gz")) for r in root)
    parser("train.json", "train_image.json", pretrain_iterations=1).get_parsed_content("run")
    p3 = parser("train.json", "train_image.json", "evaluate.json", unet_iterations=2, refine_steps=2)
    p3.get_parsed_content("run")
    metrics = json.loads((tmp_path / "outputs" / "brain3d" / "eval" / "metrics.json").read_text())
    assert metrics["label_names"] == ["CSF", "GM", "WM"] and metrics["n_test_images"] == 2
    assert set(metrics["dice"]["anatomical prior VAE (unsupervised)"]) == {"CSF", "GM", "WM", "mean"}
