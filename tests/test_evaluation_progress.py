"""Long evaluations show progress: one INFO line per case (name, i/N, metric, seconds) and the training's progress bar."""

import json
import logging

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import REPO, parse_bundle
from monai.engines import SupervisedEvaluator
from monai.handlers import MeanDice, from_engine
from monai.transforms import AsDiscreted

from monai_genvq.apps.hyperbolic import HyperbolicSegmentation, ensure_hierarchy_toy
from monai_genvq.handlers import CaseProgress, EvaluationProgress, case_names
from monai_genvq.metrics import IntensityKMeans

BUNDLES = sorted(p.parent.parent for p in (REPO / "bundles").glob("*/configs/evaluate.json"))
LOGGER = "monai_genvq.handlers.progress"


def _volume(tmp_path, name):
    rng = np.random.default_rng(0)
    label = np.zeros((12, 12, 12), np.uint8)
    label[2:8, 3:10, 2:9] = 1
    image = np.array([0.1, 0.9], np.float32)[label] + rng.normal(scale=0.03, size=label.shape).astype(np.float32)
    nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / f"{name}_img.nii.gz")
    nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / f"{name}_lab.nii.gz")
    return {"image": str(tmp_path / f"{name}_img.nii.gz"), "label": str(tmp_path / f"{name}_lab.nii.gz"), "name": name}


def test_hyperbolic_segmentation_logs_every_volume_with_its_dice(tmp_path, caplog):
    records = [_volume(tmp_path, "toy_000"), _volume(tmp_path, "toy_001")]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        HyperbolicSegmentation(
            IntensityKMeans(sigma=0, spatial_dims=3),
            records,
            {"classes": ("label", 2, [0, 1])},
            tmp_path / "outputs" / "intensity" / "eval",
            method="intensity",
            figures=False,
            write_segmentations=False,
            progress_bar=True,  # a tqdm bar (stderr), removed at the end; the lines still reach the log
        ).run()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    for i, name in enumerate(("toy_000", "toy_001"), 1):
        line = next((m for m in lines if f"volume {i}/2 '{name}'" in m), None)
        assert line is not None, lines
        assert line.startswith("intensity evaluation: ") and "classes dice 1.000" in line and line.endswith(" s)")
    assert any("2 volumes in" in m for m in lines), lines


def _evaluator(progress: EvaluationProgress) -> SupervisedEvaluator:
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[0, 2:6, 2:6] = 1
    data = [{"image": label.float(), "label": label, "subject": f"patient{i:03d}"} for i in range(3)]
    post = AsDiscreted(keys=["pred", "label"], argmax=[True, False], to_onehot=[2, 2])
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=torch.utils.data.DataLoader(data, batch_size=1),
        network=torch.nn.Conv2d(1, 2, 1),
        postprocessing=post,
        key_val_metric={"dice": MeanDice(include_background=False, output_transform=from_engine(["pred", "label"]))},
        val_handlers=[progress],
    )


@pytest.mark.parametrize("progress_bar", [False, True])
def test_evaluator_logs_every_case_by_name_and_honours_progress_bar(progress_bar, caplog):
    from ignite.handlers import ProgressBar

    torch.manual_seed(0)
    evaluator = _evaluator(EvaluationProgress(progress_bar, desc="unet", unit="image", case_metric="dice"))
    handlers = [h for hs in evaluator._event_handlers.values() for h, *_ in hs]
    assert any(isinstance(getattr(h, "__self__", None), ProgressBar) for h in handlers) == progress_bar
    with caplog.at_level(logging.INFO, logger=LOGGER):
        evaluator.run()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    for i in range(3):
        assert any(m.startswith(f"unet: image {i + 1}/3 'patient{i:03d}': dice ") for m in lines), lines
    assert any(m.startswith("unet: 3 images in ") for m in lines), lines


def test_case_names_and_plain_loop_lines(caplog):
    from monai.data import MetaTensor

    image = MetaTensor(torch.zeros(2, 1, 4, 4), meta={"filename_or_obj": ["/d/a.nii.gz", "/d/b.nii.gz"]})
    assert case_names({"image": image}) == ["a", "b"]
    assert case_names({"image": torch.zeros(1)}) == []
    with caplog.at_level(logging.INFO, logger=LOGGER), CaseProgress(None, "buan", unit="bundle") as progress:
        progress.start("AF_L")
        progress.done("BUAN 0.8")
    assert caplog.records[0].getMessage().startswith("buan: bundle 1 'AF_L': BUAN 0.8 (")
    assert caplog.records[-1].getMessage().startswith("buan: 1 bundle in ")


def _evaluations(config: dict) -> list:
    """Every place an evaluate.json runs cases: the hyperbolic ``evaluation``, else each evaluator's handlers."""
    if "evaluation" in config:
        return [config["evaluation"]]
    if "validate#handlers" in config:
        return [config["validate#handlers"]]
    return [v["val_handlers"] for v in config.values() if isinstance(v, dict) and "val_handlers" in v]


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_every_evaluation_reports_progress_with_the_training_progress_bar_option(bundle):
    config = json.loads((bundle / "configs" / "evaluate.json").read_text())
    train = json.loads((bundle / "configs" / "train.json").read_text())
    assert "progress_bar" in train, "evaluate.json stacks on train.json, which defines progress_bar"
    evaluations = _evaluations(config)
    assert evaluations, bundle.name
    for evaluation in evaluations:
        if isinstance(evaluation, dict):  # HyperbolicSegmentation logs per volume itself
            assert evaluation.get("progress_bar") == "@progress_bar", bundle.name
            continue
        progress = [
            h for h in evaluation if isinstance(h, dict) and h.get("_target_", "").endswith("EvaluationProgress")
        ]
        assert len(progress) == 1 and progress[0]["progress_bar"] == "@progress_bar", (bundle.name, evaluation)


def test_toy_bundle_evaluation_logs_each_test_volume(cache_dir, tmp_path, caplog):
    """The issue's case, the toy bundle's evaluate.json (intensity k-means: no checkpoint), run from its config.

    Through the CLI with ``--logging_file configs/logging.conf`` (root logger at INFO on stdout) the same lines
    reach the console.
    """
    configs = REPO / "bundles" / "hyperbolic_toy_seg" / "configs"
    data = ensure_hierarchy_toy(n_train=2, n_test=1, size=32)
    parser = parse_bundle(
        [configs / "train.json", configs / "evaluate.json", configs / "intensity.json"],
        tmp_path,
        "--dataset_dir",
        str(data),
        "--progress_bar",
        "False",
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        parser.get_parsed_content("evaluating")
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any(m.startswith("intensity evaluation: volume 1/1 'toy_") and "level3 dice" in m for m in lines), lines
