"""Every bundle's ``configs/inference.json``: standalone, MONAI Label ``BundleInferTask``-compatible, exportable.

The tests walk ``bundles/`` so a new bundle is covered automatically (and fails until it has an
inference config, an example input below and an export wrapper). They drive the config the way
MONAI Label's ``BundleInferTask`` does — ``bundle_root`` set to the bundle, weights at
``<bundle>/models/model.pt``, ``preprocessing`` / ``inferer(inputs, network)`` / ``postprocessing``
taken from the parsed config, a ``label`` key in the request — without needing monailabel itself.
Weights are a freshly built network's (no training here). The TorchScript export of
``export_network_def`` (``ckpt_export``) and its equality with the eager network are checked, with
the other model-zoo checks, in ``tests/test_model_zoo.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import REPO, run_bundle
from monai.bundle import ConfigParser

BUNDLES = sorted(p for p in (REPO / "bundles").iterdir() if (p / "configs").is_dir())
IDS = [b.name for b in BUNDLES]
# the training configs whose network the inference network must equal, with overrides that avoid data/checkpoints
TRAINING = {
    "anatomical_prior_seg": (["train.json", "train_image.json"], {"prior": "@prior_def", "location_prior": None}),
}
REQUIRED_IDS = (
    "bundle_root",
    "device",
    "network_def",
    "network",
    "checkpoint",
    "preprocessing",
    "inferer",
    "postprocessing",
    "dataset#data",
    "run",
    "inferring",
    "export_network_def",
    "export_input_shape",
)
SLICE_SHAPE = (40, 48)  # a 2-D input of another size than the network's, so resizing and its inversion run
VOLUME_SHAPE = (12, 11, 13)


def _parser(configs: list[Path], bundle_root: Path, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(c) for c in configs])
    parser["bundle_root"] = str(bundle_root)
    parser["device"] = "$torch.device('cpu')"
    for k, v in overrides.items():
        parser[k] = v
    return parser


def _kind(bundle: Path) -> str:
    """Which example input the bundle takes: its inference config's loader says it."""
    text = (bundle / "configs" / "inference.json").read_text()
    if "streamline_inference_items" in text:
        return "streamlines"
    if "MRCReader" in text:  # the volume bundles read NIfTI and MRC
        return "mrc" if "cryoet" in bundle.name else "volume"
    if "EnsureSliced" in text:
        return "slice"
    raise AssertionError(f"{bundle.name}: add an example input for its inference.json to {__file__}")


def _make_input(bundle: Path, root: Path) -> Path:
    """One tiny input in ``<root>/inputs`` (plus the streamline normaliser under ``<root>/models``)."""
    rng = np.random.default_rng(0)
    inputs = root / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    kind = _kind(bundle)
    if kind == "slice":
        path = inputs / "case.nii.gz"
        img = np.zeros(SLICE_SHAPE, np.float32)
        img[10:30, 12:36] = rng.uniform(0.5, 1.0, (20, 24))
        nib.save(nib.Nifti1Image(img, np.diag([1.5, 1.5, 8.0, 1.0])), str(path))
    elif kind == "volume":
        path = inputs / "case.nii.gz"
        vol = rng.uniform(0.0, 1.0, VOLUME_SHAPE).astype(np.float32)
        vol[:2] = 0.0  # background, masked out by bundles that cluster only the non-zero voxels
        nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.2, 1.5, 1.0])), str(path))
    elif kind == "mrc":
        from monai_genvq.data.mrc import write_mrc

        path = write_mrc(inputs / "case.mrc", rng.normal(size=VOLUME_SHAPE).astype(np.float32), voxel_size=10.0)
    else:
        from monai_genvq.apps.streamlines import StreamlineNormalizer, save_streamlines

        base = np.linspace([0.0, 0.0, 0.0], [40.0, 20.0, 10.0], 30)
        streams = [base + rng.normal(scale=1.0, size=(1, 3)) + 20.0 for _ in range(12)]
        path = save_streamlines(inputs / "case.trk", streams)
        StreamlineNormalizer().fit(np.concatenate(streams)).save(root / "models" / "streamline_normalization.json")
    return Path(path)


def _save_fresh_weights(bundle: Path, root: Path) -> torch.nn.Module:
    """A freshly built network's state dict at ``<root>/models/model.pt`` ({"model": ...}, as CheckpointSaver writes)."""
    torch.manual_seed(0)
    net = _parser([bundle / "configs" / "inference.json"], root).get_parsed_content("network_def")
    (root / "models").mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict()}, root / "models" / "model.pt")
    return net


def _scalars(net: torch.nn.Module) -> dict:
    """Every submodule's plain hyperparameters (ints, floats, strings, tuples): what two builds must share."""
    out = {}
    for name, mod in net.named_modules():
        for k, v in vars(mod).items():
            if not k.startswith("_") and isinstance(v, (bool, int, float, str, tuple)):
                out[f"{name}.{k}"] = v
    return out


def test_tensor_output_network_keeps_checkpoint_keys_and_picks_the_field():
    from monai_genvq.networks import ResNetAutoencoder, TensorOutputNetwork, network_tensor

    torch.manual_seed(0)
    net = ResNetAutoencoder(spatial_dims=2, in_channels=1, channels=(8, 16), latent_channels=4, num_res_blocks=1).eval()
    wrapped = TensorOutputNetwork(
        ResNetAutoencoder(spatial_dims=2, in_channels=1, channels=(8, 16), latent_channels=4, num_res_blocks=1),
        output="reconstruction",
    ).eval()
    assert list(wrapped.state_dict()) == list(
        net.state_dict()
    )  # no "network." prefix: training checkpoints load as they are
    wrapped.load_state_dict(net.state_dict())
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(wrapped(x), net(x).reconstruction)
        assert torch.equal(network_tensor(net, x, output="reconstruction"), net(x).reconstruction)
    with pytest.raises(ValueError, match="output"):
        network_tensor(net, x)  # a dataclass result needs the field named
    with pytest.raises(ValueError, match="no method"):
        TensorOutputNetwork(net, method="does_not_exist")


def test_cluster_embedding_separates_groups_and_respects_the_mask():
    from monai_genvq.apps.hyperbolic import HyperbolicClusterInferer, cluster_embedding

    emb = torch.zeros(2, 4, 6)
    emb[:, :, :3] = torch.tensor([-0.6, 0.1])[:, None, None]
    emb[:, :, 3:] = torch.tensor([0.5, -0.2])[:, None, None]
    emb += 0.01 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(0))
    for c in (1.0, 0.0):  # Poincaré and Euclidean k-means
        ids = cluster_embedding(emb, 2, c)
        assert len(set(ids[:, :3].ravel())) == 1 and len(set(ids[:, 3:].ravel())) == 1 and ids[0, 0] != ids[0, 3]
    keep = np.ones((4, 6), bool)
    keep[0] = False
    ids = cluster_embedding(emb, 2, 1.0, keep)
    assert (ids[0] == -1).all() and (ids[1:] >= 0).all()
    with pytest.raises(ValueError, match="clusters"):
        cluster_embedding(emb, 30, 1.0)
    with pytest.raises(ValueError, match="clustering"):
        HyperbolicClusterInferer(2, clustering="spectral")
    with pytest.raises(ValueError, match="curvature"):
        HyperbolicClusterInferer(2, curvature=0.0, clustering="poincare")
    assert HyperbolicClusterInferer(2, curvature=1.0, clustering="euclidean").curvature == 0.0


def test_require_input_files_names_the_folder_and_patterns():
    from monai_genvq.data import require_input_files

    assert require_input_files(("a.nii.gz", Path("b.nii")), "inputs") == ["a.nii.gz", "b.nii"]
    with pytest.raises(FileNotFoundError, match=r"no input files \(\*\.png\) in 'my/inputs'; .*--input_dir"):
        require_input_files([], "my/inputs", ["*.png"])


@pytest.mark.parametrize("name", ["anatomical_prior_seg", "cardiac_attri_sivae", "vq_quantizers"])
def test_inference_without_inputs_fails_naming_the_folder(name, tmp_path):
    """``initialize`` checks the inputs with ``require_input_files`` before the evaluator runs on nothing."""
    parser = _parser([REPO / "bundles" / name / "configs" / "inference.json"], tmp_path)
    assert any("require_input_files(@input_files, @input_dir" in str(x) for x in parser["initialize"])
    with pytest.raises(RuntimeError, match="require_input_files") as err:  # MONAI wraps what an expression raises
        parser.get_parsed_content("initialize")
    assert isinstance(err.value.__cause__, FileNotFoundError)
    assert str(err.value.__cause__).startswith(f"no input files (*.nii, *.nii.gz) in '{tmp_path / 'inputs'}'")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "case.nii.gz").write_bytes(b"")
    _parser([REPO / "bundles" / name / "configs" / "inference.json"], tmp_path).get_parsed_content("initialize")


def test_resolve_checkpoint_prefers_the_first_existing_file(tmp_path):
    from monai_genvq.handlers import resolve_checkpoint

    a, b = tmp_path / "outputs" / "model.pt", tmp_path / "models" / "model.pt"
    assert resolve_checkpoint(a, b) == str(a)  # neither exists: the usual place, so the error names it
    b.parent.mkdir()
    b.write_bytes(b"x")
    assert resolve_checkpoint(a, b) == str(b)
    a.parent.mkdir()
    a.write_bytes(b"x")
    assert resolve_checkpoint(a, b) == str(a)


@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_inference_config_stands_alone_with_the_trained_network(bundle, tmp_path):
    """inference.json holds MONAI Label's ids and builds exactly the network its training config trains
    (MONAI Label loads inference.json alone: a different network would not take the trained weights)."""
    configs = bundle / "configs"
    assert (configs / "inference.json").is_file(), f"{bundle.name} has no configs/inference.json"
    parser = _parser([configs / "inference.json"], tmp_path)
    for key in REQUIRED_IDS:
        assert key in parser, f"{bundle.name}/configs/inference.json lacks the id '{key}'"
    files, overrides = TRAINING.get(bundle.name, (["train.json"], {}))
    trained = _parser([configs / f for f in files], tmp_path, **overrides).get_parsed_content("network_def")
    inferring = parser.get_parsed_content("network_def")
    assert type(inferring) is type(trained)
    assert {k: v.shape for k, v in inferring.state_dict().items()} == {
        k: v.shape for k, v in trained.state_dict().items()
    }
    assert _scalars(inferring) == _scalars(trained)
    training_parser = _parser([configs / f for f in files], tmp_path, **overrides)
    for key in ("zoom", "image_size", "n_points", "group_size"):  # input geometry the network was trained at
        if key in training_parser:
            assert key in parser and parser.get_parsed_content(key) == training_parser.get_parsed_content(key), key
    # the weights: the in-place training output wins, MONAI Label's <bundle>/models/model.pt is the fallback
    ckpt_dir = Path(parser.get_parsed_content("ckpt_dir"))
    assert Path(parser.get_parsed_content("checkpoint")) == ckpt_dir / "model.pt"  # neither exists: the usual place
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"")
    assert (
        Path(_parser([configs / "inference.json"], tmp_path).get_parsed_content("checkpoint"))
        == tmp_path / "models" / "model.pt"
    )
    ckpt_dir.mkdir(parents=True)
    (ckpt_dir / "model.pt").write_bytes(b"")
    assert (
        Path(_parser([configs / "inference.json"], tmp_path).get_parsed_content("checkpoint")) == ckpt_dir / "model.pt"
    )


@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_bundle_infer_task_path(bundle, tmp_path):
    """What BundleInferTask does: preprocessing -> inferer(image[None], network) -> tensor -> postprocessing,
    with the weights from <bundle>/models/model.pt and a ``label`` key riding along in the request."""
    source = _make_input(bundle, tmp_path)
    _save_fresh_weights(bundle, tmp_path)
    parser = _parser([bundle / "configs" / "inference.json"], tmp_path)
    assert Path(parser.get_parsed_content("checkpoint")) == tmp_path / "models" / "model.pt"
    network = parser.get_parsed_content("network_def")
    state = torch.load(parser.get_parsed_content("checkpoint"), map_location="cpu", weights_only=True)
    network.load_state_dict(state["model"])
    network.eval()
    items = parser.get_parsed_content("dataset#data")
    assert len(items) == 1
    key = parser.get("prepare_batch", {}).get("key", "image")
    data = {**items[0], "label": str(source)}  # MONAI Label may send the current label: it must be tolerated
    data = parser.get_parsed_content("preprocessing")(data)
    inputs = torch.as_tensor(data[key])[None]
    with torch.no_grad():
        pred = parser.get_parsed_content("inferer")(inputs, network)
    assert isinstance(pred, torch.Tensor) and torch.isfinite(pred.float()).all()
    kind = _kind(bundle)
    if kind in ("volume", "mrc"):
        assert pred.shape == (1, 1, *VOLUME_SHAPE)
        ids = set(torch.unique(pred).tolist())
        assert ids <= set(range(parser.get_parsed_content("n_clusters") + 1)) and len(ids - {0}) >= 2
        if parser.get_parsed_content("mask") == "nonzero":
            assert (pred[0, 0, :2] == 0).all() and (pred[0, 0, 2:] > 0).float().mean() > 0.9
    else:
        assert pred.shape[0] == 1 and pred.shape[2:] == inputs.shape[2:]
    data["pred"] = pred[0]
    out = parser.get_parsed_content("postprocessing")(data)
    if kind == "slice":  # written back at the input's size and affine
        written = next(Path(parser.get_parsed_content("inference_dir")).glob("case_*.nii.gz"))
        img = nib.load(written)
        assert img.shape == SLICE_SHAPE and np.allclose(img.affine, nib.load(source).affine)
        if "argmax" in json.dumps(parser.get("inferer")):
            labels = set(np.unique(np.asarray(img.dataobj)).tolist())
            assert labels <= set(range(parser.get_parsed_content("num_labels")))
    else:
        assert torch.equal(torch.as_tensor(out["pred"]).to(pred.dtype), pred[0])


def _run_monailabel_task(task, data: dict) -> dict:
    """What MONAI Label's BasicInferTask does for a request: pre-transforms, inferer, post-transforms."""
    for t in task.pre_transforms(data):
        data = t(data)
    data = task.run_inferer(data, device="cpu")
    for t in task.post_transforms(data):
        data = t(data)
    return data


def test_monailabel_bundle_infer_task(tmp_path):
    """MONAI Label's own BundleInferTask on every image bundle (needs ``pip install monailabel``, which pulls torchvision)."""
    pytest.importorskip("monailabel", reason="monailabel is not installed (make install-label)")
    from monai_genvq.apps.monai_label import keep_torchvision_off_import_path

    keep_torchvision_off_import_path()  # MONAI Label's BundleInferTask module imports torchvision.utils
    from monailabel.tasks.infer.bundle import BundleInferTask

    for bundle in BUNDLES:
        kind = _kind(bundle)
        if kind == "streamlines":  # .trk tractograms are not a MONAI Label data type
            continue
        root = tmp_path / bundle.name
        shutil.copytree(bundle / "configs", root / "configs")
        source = _make_input(bundle, root)
        _save_fresh_weights(bundle, root)
        task = BundleInferTask(str(root), {})
        assert task.is_valid(), bundle.name
        data = {"image": str(source), "label": str(source), "device": "cpu", "model_filename": "model.pt"}
        data = _run_monailabel_task(task, data)
        pred = data["pred"]
        assert isinstance(pred, torch.Tensor), bundle.name
        expected = SLICE_SHAPE if kind == "slice" else VOLUME_SHAPE  # Restored drops a volume's singleton channel
        assert tuple(pred.shape[-len(expected) :]) == expected, (bundle.name, pred.shape)


def test_genvq_infer_task_serves_the_input_geometry(tmp_path):
    """Our MONAI Label infer task on each served bundle: the written label map has the input's shape and affine."""
    pytest.importorskip("monailabel", reason="monailabel is not installed (make install-label)")
    from monai_genvq.apps.monai_label import read_monai_label_spec
    from monai_genvq.apps.monai_label.tasks import GenVQInferTask
    from monai_genvq.data import LoadVolume

    served = [b for b in BUNDLES if read_monai_label_spec(b).served]
    assert {b.name for b in served} == {
        "anatomical_prior_seg",
        "hyperbolic_toy_seg",
        "hyperbolic_brats_seg",
        "hyperbolic_cryoet_seg",
    }
    for bundle in served:
        root = tmp_path / bundle.name
        shutil.copytree(bundle / "configs", root / "configs")
        source = _make_input(bundle, root)
        _save_fresh_weights(bundle, root)
        task = GenVQInferTask(str(root), {})
        assert task.is_valid() and task.labels == read_monai_label_spec(bundle)["labels"], bundle.name
        data = {"image": str(source), "image_path": str(source), "device": "cpu", "model_filename": "model.pt"}
        data = _run_monailabel_task(task, data)
        written, _ = task.writer(data)
        result, src = (LoadVolume(image_only=True)(f) for f in (written, str(source)))
        assert result.shape == src.shape, (bundle.name, result.shape, src.shape)
        assert np.allclose(result.affine, src.affine), bundle.name
        values = set(np.unique(np.asarray(result)).astype(int).tolist())
        assert values <= {0, *task.labels.values()}, (bundle.name, values)
        os.remove(written)


@pytest.mark.slow
def test_cli_inferring_subprocess(tmp_path):
    """The real ``python -m monai.bundle run inferring --config_file inference.json`` (one bundle: a subprocess
    costs ~20 s of imports on a loaded machine; every bundle runs the same ``monai.bundle.run`` in-process below)."""
    bundle = REPO / "bundles" / "vq_quantizers"
    _make_input(bundle, tmp_path)
    _save_fresh_weights(bundle, tmp_path)
    run_bundle("inferring", [bundle / "configs" / "inference.json"], tmp_path)
    assert nib.load(tmp_path / "outputs" / "vanilla" / "inference" / "case_recon.nii.gz").shape == SLICE_SHAPE


@pytest.mark.slow
@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_run_inferring(bundle, tmp_path):
    """``monai.bundle.run("inferring", config_file=inference.json)`` (what the CLI calls) alone, weights in <root>/models/model.pt."""
    from monai.bundle import run

    source = _make_input(bundle, tmp_path)
    _save_fresh_weights(bundle, tmp_path)
    run(
        "inferring",
        config_file=str(bundle / "configs" / "inference.json"),
        bundle_root=str(tmp_path),
        logging_file=str(bundle / "configs" / "logging.conf"),
    )
    parser = _parser([bundle / "configs" / "inference.json"], tmp_path)
    inference_dir = Path(parser.get_parsed_content("inference_dir"))
    kind = _kind(bundle)
    if kind == "slice":
        written = sorted(inference_dir.glob("case_*.nii.gz"))
        assert len(written) == 1 and nib.load(written[0]).shape == SLICE_SHAPE
        if (inference_dir / "latents.json").exists() or "LatentCodeWriter" in (
            bundle / "configs" / "inference.json"
        ).read_text():
            latents = json.loads((inference_dir / "latents.json").read_text())
            assert list(latents) == ["case"] and len(latents["case"]["mu"]) == parser.get_parsed_content("latent_dim")
            names, dims = parser.get_parsed_content("attribute_names"), parser.get_parsed_content("regularized_dims")
            assert all(latents["case"][n] == latents["case"]["mu"][d] for n, d in zip(names, dims))
            assert (inference_dir / "latents.csv").read_text().splitlines()[0].startswith("name," + ",".join(names))
    elif kind in ("volume", "mrc"):
        segs = sorted((inference_dir / "segmentations").glob("case_*"))
        assert segs, f"no segmentation written in {inference_dir}"
        if kind == "volume":
            seg = nib.load(segs[0])
            assert seg.shape == VOLUME_SHAPE and np.allclose(seg.affine, nib.load(source).affine)
        else:
            from monai.transforms import LoadImage

            from monai_genvq.data import MRCReader

            seg, src = LoadImage(reader=MRCReader())(segs[0]), LoadImage(reader=MRCReader())(source)
            assert seg.shape == VOLUME_SHAPE and segs[0].suffix == ".mrc" and torch.equal(seg.affine, src.affine)
    else:
        assert (inference_dir / "case_recon.trk").is_file()
