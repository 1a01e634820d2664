"""bundles/vq_quantizers: data layer, configs of every quantizer, and end-to-end CLI runs."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import REPO, run_bundle

from monai_genvq.data import (
    SliceImageData,
    discover_slices,
    generate_synthetic_acdc,
    generate_synthetic_slices,
    synthetic_cardiac_slice,
)
from monai_genvq.transforms import EnsureSlice

BUNDLE = REPO / "bundles" / "vq_quantizers"
CONFIGS = BUNDLE / "configs"
VARIANTS = {
    "vanilla": "VectorQuantizer",
    "ema": "EMAQuantizer",
    "neural_gas": "NeuralGasQuantizer",
    "fcm": "FuzzyCMeansQuantizer",
    "fcm_normalised": "FuzzyCMeansQuantizer",
    "sampled_expectation": "SampledExpectationQuantizer",
    "gumbel": "GumbelQuantizer",
    "neural_gas_lambda3": "NeuralGasQuantizer",
    "neural_gas_lambda10": "NeuralGasQuantizer",
    "fcm_posterior": "FuzzyCMeansQuantizer",
}
TINY = (
    "--channels",
    "[8,16]",
    "--latent_channels",
    "8",
    "--num_embeddings",
    "16",
    "--num_res_blocks",
    "1",
    "--batch_size",
    "4",
)
SHORT = ("--max_epochs", "1", "--train#trainer#epoch_length", "2", "--val_interval", "1")


def _parse(configs, dataset_dir, slices=True, **overrides):
    """Parse tiny configs; ``slices=True`` adds slices.json after train.json (``dataset_dir`` is a slice folder)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    if slices and "slices.json" not in configs:
        configs = [configs[0], "slices.json", *configs[1:]]
    parser.read_config([str(CONFIGS / c) for c in configs])
    parser.update(
        {
            "channels": [8, 16],
            "latent_channels": 8,
            "num_embeddings": 16,
            "num_res_blocks": 1,
            "dataset_dir": str(dataset_dir),
            "device": "$torch.device('cpu')",
            "batch_size": 4,
            **overrides,
        }
    )
    return parser


def _constant_image_reference(configs, bundle_root, *overrides):
    """What a reconstruction that ignores the anatomy scores on the images ``configs`` evaluate: MSE of each
    image's mean intensity (the best constant image), SSIM of the better of that and an all-zero image (computed
    as :class:`~monai_genvq.handlers.QuantizerEvaluationReport` does)."""
    from conftest import parse_bundle
    from monai.metrics import SSIMMetric

    data = parse_bundle(configs, bundle_root, *overrides).get_parsed_content("validate#dataset")
    images = torch.stack([torch.as_tensor(d["image"]).float() for d in data])
    mean = images.mean(dim=(1, 2, 3), keepdim=True).expand_as(images)
    ssim = SSIMMetric(spatial_dims=2, data_range=1.0, reduction="none")
    return {
        "n_images": len(images),
        "mse": float((mean - images).square().flatten(1).mean(1).mean()),
        "ssim": max(float(ssim(ref.clamp(0, 1), images.clamp(0, 1)).mean()) for ref in (mean, 0 * images)),
    }


@pytest.fixture(scope="module")
def tiny_slices(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slices")
    return generate_synthetic_slices(folder, counts={"train": 8, "validation": 4, "test": 4}, seed=1)


def test_synthetic_slices_are_deterministic_and_varied():
    a = synthetic_cardiac_slice(np.random.default_rng(3))
    b = synthetic_cardiac_slice(np.random.default_rng(3))
    c = synthetic_cardiac_slice(np.random.default_rng(4))
    assert a.shape == (64, 64) and a.dtype == np.float32 and np.array_equal(a, b)
    assert np.abs(a - c).mean() > 0.02, "different seeds give different anatomy"
    assert 0.0 <= a.min() and a.max() <= 1.2 and (a > 0.6).mean() > 0.01, "bright blood pool present"


def test_slice_folder_discovery_and_errors(tiny_slices, tmp_path):
    data = SliceImageData(dataset_dir=tiny_slices, dataset="folder")
    assert (len(data.train), len(data.validation), len(data.test)) == (8, 4, 4)
    assert data.train[0]["name"] == "slice_0000" and data.train[0]["image"].endswith(".nii.gz")
    flat = SliceImageData(dataset_dir=tiny_slices / "train", dataset="folder", val_fraction=0.25)
    assert len(flat.train) == 6 and len(flat.validation) == 2 and flat.test == flat.validation
    assert not {d["image"] for d in flat.train} & {d["image"] for d in flat.validation}

    bad = tmp_path / "bad"
    bad.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 5), np.float32), np.eye(4)), bad / "volume.nii.gz")
    with pytest.raises(ValueError, match=r"volume.nii.gz'.*expected a 2-D slice.*\(8, 8, 5\)"):
        discover_slices(bad)
    (bad / "volume.nii.gz").unlink()
    (bad / "broken.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match="broken.nii.gz'.*cannot be read as NIfTI"):
        discover_slices(bad)
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        discover_slices(tmp_path / "does_not_exist")
    with pytest.raises(FileNotFoundError, match="no 'test' sub-folder"):
        discover_slices(tmp_path, "test")


def test_ensure_slice_checks_shape_and_values():
    from monai.data import MetaTensor

    assert EnsureSlice()(np.zeros((5, 6, 1))).shape == (1, 5, 6)
    img = MetaTensor(torch.full((4, 4), float("nan")), meta={"filename_or_obj": "/data/p01_slice3.nii.gz"})
    with pytest.raises(ValueError, match="p01_slice3.nii.gz'.*NaN"):
        EnsureSlice()(img)
    with pytest.raises(ValueError, match="expected a 2-D slice"):
        EnsureSlice()(torch.zeros(2, 4, 4))


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
    ):
        assert key in train, key
    assert isinstance(train["train"]["handlers"], list)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_config_builds_its_quantizer_and_trains_a_step(variant, tiny_slices):
    parser = _parse(["train.json", f"{variant}.json"], tiny_slices)
    net = parser.get_parsed_content("network")
    assert type(net.bottleneck).__name__ == VARIANTS[variant] and parser["variant"] == variant
    if variant == "fcm_normalised":
        assert net.bottleneck.loss_type == "normalised"
    batch = next(iter(parser.get_parsed_content("train#dataloader")))
    assert (
        batch["image"].shape == (4, 1, 64, 64)
        and 0.0 <= float(batch["image"].min()) <= float(batch["image"].max()) <= 1.0
    )
    out = net(batch["image"])
    (torch.nn.functional.mse_loss(out.reconstruction, batch["image"]) + out.bottleneck.loss).backward()
    assert torch.isfinite(out.bottleneck.loss)


def test_thesis_configs_hold_the_seed_settings(tiny_slices):
    """Seed 004, section 6: Adam 1e-3, 512 prototypes of dimension 64; λ fixed at 3 / 10 with α 0.15, η 1;
    the fuzzy "posterior" loss (eq. 4.6) with α 0.08."""
    for lam in (3, 10):
        parser = _parse(["train.json", "thesis.json", f"neural_gas_lambda{lam}.json"], tiny_slices)
        for key in ("num_embeddings", "latent_channels"):  # _parse shrinks them: read the file's values
            parser[key] = json.loads((CONFIGS / "thesis.json").read_text())[key]
        net = parser.get_parsed_content("network")
        ng = net.bottleneck
        assert (ng.num_embeddings, ng.embedding_dim, parser["learning_rate"]) == (512, 64, 0.001)
        assert (ng.commitment_cost, ng.codebook_cost, ng.current_lambda) == (0.15, 1.0, float(lam))
        ng.train()(torch.randn(1, 64, 2, 2))
        assert ng.current_lambda == float(lam), "λ stays fixed"
        scheduler, optimizer = parser.get_parsed_content("lr_scheduler"), parser.get_parsed_content("optimizer")
        for _ in range(3):
            optimizer.step()
            scheduler.step()
        assert scheduler.get_last_lr() == [0.001], "constant learning rate"
    fcm = _parse(["train.json", "fcm_posterior.json"], tiny_slices).get_parsed_content("bottleneck")
    assert (fcm.loss_type, fcm.commitment_cost, fcm.codebook_cost) == ("posterior", 0.08, 1.0)


def test_ema_bundle_defaults_use_more_codes_than_the_plain_ema(tiny_slices):
    """A short real run: the ema.json defaults (data init, dead-code re-seeding) against the same EMA quantizer
    without them (van den Oord et al.'s N(0, 1) codes, which a fresh encoder's small outputs barely reach)."""
    used = {}
    for name, overrides in {"default": {}, "plain": {"data_init": False, "dead_code_steps": 0}}.items():
        torch.manual_seed(0)
        parser = _parse(["train.json", "ema.json"], tiny_slices, image_size=[16, 16], **overrides)
        net = parser.get_parsed_content("network")
        assert net.bottleneck.data_init is (name == "default")
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        images = torch.cat([b["image"] for b in parser.get_parsed_content("train#dataloader")])
        seen = set()
        for step in range(24):
            batch = images[torch.randperm(len(images))[:4]]
            out = net(batch)
            loss = torch.nn.functional.mse_loss(out.reconstruction, batch) + out.bottleneck.loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 20:  # after the first re-seeding (ema.json: dead_code_steps 20)
                seen |= set(out.bottleneck.indices.unique().tolist())
        used[name] = len(seen)
    assert used["default"] >= 2 * used["plain"] and used["default"] >= 8, used  # of 16 codes


@pytest.mark.slow
def test_cli_train_evaluate_and_prior_end_to_end(tiny_slices, tmp_path):
    data = ("--dataset_dir", str(tiny_slices))
    configs = [CONFIGS / "train.json", CONFIGS / "slices.json", CONFIGS / "neural_gas.json"]
    # 100 iterations at 10x the bundle's learning rate (SHORT's 2 leave the codebook collapsed on one code)
    trained = ("--max_epochs", "50", "--val_interval", "50", "--learning_rate", "0.003")
    out = run_bundle("training", configs, tmp_path, *data, *TINY, *trained, "--log_every", "1")
    assert "val_ssim" in out and "code_use" in out and "perplexity" in out
    run_bundle("evaluating", configs + [CONFIGS / "evaluate.json"], tmp_path, *data, *TINY)
    metrics = json.loads((tmp_path / "outputs" / "neural_gas" / "eval" / "metrics.json").read_text())
    assert (
        metrics["n_images"] == 4
        and metrics["method"] == "neural_gas"
        and metrics["dataset"] == "2-D slice folder (test split)"
    )
    assert 0 < metrics["mse"]["mean"] < 1 and -1 <= metrics["ssim"]["mean"] <= 1
    cb = metrics["codebook"]
    assert 1 <= cb["perplexity"] <= 16 and cb["codes_used"] == round(cb["code_use"] * 16)
    # better than reconstructions that ignore the anatomy, and the codebook not collapsed onto one code (perplexity
    # 1). Measured (seed 0, 2 threads): MSE 0.0176 vs 0.0548, SSIM 0.306 vs 0.152, perplexity 3.34; an untrained
    # network: 0.116, 0.078, 1.0; SHORT's 2 iterations: 0.061, 0.122, 1.0.
    ref = _constant_image_reference(configs + [CONFIGS / "evaluate.json"], tmp_path, *data, *TINY)
    assert ref["n_images"] == metrics["n_images"]
    assert metrics["mse"]["mean"] < 0.6 * ref["mse"], (metrics["mse"], ref)
    assert metrics["ssim"]["mean"] > ref["ssim"] + 0.05, (metrics["ssim"], ref)
    assert cb["perplexity"] > 2.0, cb
    table = (tmp_path / "outputs" / "quantizer_comparison.md").read_text()
    assert "| neural_gas |" in table and "perplexity" in table

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    source = tiny_slices / "test" / "slice_0000.nii.gz"
    (inputs / source.name).write_bytes(source.read_bytes())
    run_bundle("inferring", [CONFIGS / "inference.json", CONFIGS / "neural_gas.json"], tmp_path, *TINY)
    recon = nib.load(tmp_path / "outputs" / "neural_gas" / "inference" / "slice_0000_recon.nii.gz")
    assert recon.shape == nib.load(source).shape == (64, 64)
    assert np.isfinite(recon.get_fdata()).all()

    run_bundle(
        "training_prior",
        configs + [CONFIGS / "prior.json"],
        tmp_path,
        *data,
        *TINY,
        "--prior_max_epochs",
        "1",
        "--num_samples",
        "2",
        "--prior_def#channels",
        "8",
        "--prior_def#num_layers",
        "2",
    )
    prior_dir = tmp_path / "outputs" / "neural_gas" / "prior_pixelcnn"
    prior_metrics = json.loads((prior_dir / "metrics.json").read_text())
    assert prior_metrics["code_map_shape"] == [16, 16] and prior_metrics["uniform_bits_per_code"] == 4.0
    assert np.isfinite(prior_metrics["nll_bits_per_code"]["mean"])
    assert (prior_dir / "samples.png").is_file() and len(list((prior_dir / "samples").glob("*.nii.gz"))) == 2
    assert (prior_dir / "prior.pt").is_file()


def test_transformer_prior_config_builds_monai_transformer(tiny_slices):
    parser = _parse(["train.json", "fcm_normalised.json", "prior.json", "prior_transformer.json"], tiny_slices)
    parser.update({"prior_def#attn_layers_dim": 16, "prior_def#attn_layers_depth": 1})
    prior = parser.get_parsed_content("prior")
    assert type(prior).__name__ == "TransformerCodePrior" and prior.spatial_shape == (16, 16)
    assert type(prior.transformer).__name__ == "DecoderOnlyTransformer" and prior.num_embeddings == 16
    assert parser.get_parsed_content("prior_dir").endswith("prior_transformer")


def test_quantizer_table_rows():
    from monai_genvq.handlers import quantizer_table

    row = {
        "mse": {"mean": 0.01, "std": 0.002},
        "ssim": {"mean": 0.8, "std": 0.05},
        "codebook": {
            "perplexity": 40.0,
            "code_use": 0.25,
            "codes_used": 128,
            "num_embeddings": 512,
            "collapsed": False,
        },
    }
    table = quantizer_table({"neural_gas": row, "vanilla": {**row, "codebook": {**row["codebook"], "collapsed": True}}})
    assert "| neural_gas | 0.01000 ± 0.00200 | 0.8000 ± 0.0500 | 40.0 | 0.250 (128/512) | no |" in table
    assert table.strip().endswith("| yes |")


@pytest.mark.parametrize("slices", [True, False], ids=["slices", "acdc"])
def test_missing_dataset_folder_fails_clearly(tmp_path, slices):
    parser = _parse(["train.json"], tmp_path / "does_not_exist", slices=slices)
    with pytest.raises(RuntimeError) as info:
        parser.get_parsed_content("train#dataset")
    cause = info.value.__cause__
    assert isinstance(cause, FileNotFoundError) and "does_not_exist' does not exist" in str(cause)


# ------------------------------------------------------------------ default data: the ACDC-layout phantom
TINY_ACDC = {"n_train": 5, "n_test": 2, "shape": (96, 96), "n_slices": 6, "n_frames": 2}


@pytest.fixture(scope="module")
def tiny_acdc(tmp_path_factory):
    return generate_synthetic_acdc(tmp_path_factory.mktemp("acdc"), seed=2, **TINY_ACDC)


def test_default_data_is_the_acdc_layout_through_the_cardiac_loaders(tiny_acdc):
    parser = _parse(["train.json", "neural_gas.json"], tiny_acdc, slices=False)
    assert parser.get_parsed_content("dataset") == "acdc"
    lists = parser.get_parsed_content("datalists")
    # 5 training patients: 1 held out for validation, 4 x 5 neighbouring short-axis slices; ACDC's testing split
    assert (len(lists["train"]), len(lists["validation"]), len(lists["test"])) == (20, 1, 2)
    assert {d["slice_offset"] for d in lists["train"]} == {-2, -1, 0, 1, 2}
    assert not {d["subject"] for d in lists["train"]} & {d["subject"] for d in lists["validation"]}
    batch = next(iter(parser.get_parsed_content("validate#dataloader")))
    image = batch["image"]
    assert (
        image.shape == (1, 1, 64, 64)
        and image.dtype == torch.float32
        and set(batch) == {"image", "subject", "slice_offset"}
    )
    assert float(image.min()) == 0.0 and 0.5 < float(image.max()) <= 1.0, "aligned slice scaled to [0, 1]"
    centre, corner = image[0, 0, 24:40, 24:40], image[0, 0, :8, :8]
    assert float(centre.mean()) > 0.1 and float(corner.abs().max()) == 0.0, "heart centred, outside the mask zeroed"
    # the same record through the cardiac bundle's own preprocessing (no second implementation)
    from monai.transforms import Resize

    from monai_genvq.transforms import CardiacAlignmentd, LoadCardiacEDd

    ref = CardiacAlignmentd(keys=("image", "label"), size=128)(LoadCardiacEDd()(lists["validation"][0]))["image"]
    torch.testing.assert_close(image[0], Resize((64, 64), mode="area")(ref).float())


@pytest.mark.slow
def test_cli_trains_and_evaluates_on_the_default_acdc_phantom(cache_dir, tmp_path):
    data = ("--synthetic_acdc", str({k: list(v) if isinstance(v, tuple) else v for k, v in TINY_ACDC.items()}))
    configs = [CONFIGS / "train.json", CONFIGS / "vanilla.json"]
    # 200 iterations at 10x the bundle's learning rate (after SHORT's 2 the MSE is that of a constant image)
    trained = ("--max_epochs", "40", "--val_interval", "40", "--learning_rate", "0.003")
    out = run_bundle("training", configs, tmp_path, *data, *TINY, *trained, "--log_every", "1")
    assert "val_ssim" in out and "perplexity" in out
    assert (tmp_path / "outputs" / "vanilla" / "models" / "model.pt").is_file()
    run_bundle("evaluating", configs + [CONFIGS / "evaluate.json"], tmp_path, *data, *TINY)
    metrics = json.loads((tmp_path / "outputs" / "vanilla" / "eval" / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic ACDC-layout phantom (test split)" and metrics["n_images"] == 2
    assert 0 < metrics["mse"]["mean"] < 1 and 1 <= metrics["codebook"]["perplexity"] <= 16
    # better than each image's mean intensity, and more than one code in use (a collapsed codebook: perplexity 1).
    # Measured (seed 0, 2 threads): MSE 0.0225 vs 0.0494, perplexity 2.00; an untrained network: 0.0614, 1.08;
    # SHORT's 2 iterations: 0.0568, 1.07. (SSIM is no test here: the phantom is black outside the heart, so an
    # all-zero image scores 0.70.)
    ref = _constant_image_reference(configs + [CONFIGS / "evaluate.json"], tmp_path, *data, *TINY)
    assert ref["n_images"] == metrics["n_images"]
    assert metrics["mse"]["mean"] < 0.75 * ref["mse"], (metrics["mse"], ref)
    assert metrics["codebook"]["perplexity"] > 1.5, metrics["codebook"]
