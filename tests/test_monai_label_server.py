"""The real MONAI Label server over the bundles: /info/, /infer/<m> (geometry, label values), /train/<m>, /infer again.

Starts ``monailabel start_server`` on 127.0.0.1 twice (a 3-D studies folder for the hyperbolic bundles,
a 2-D short-axis slice folder for anatomical_prior_seg: one datastore a server, as a user would run
it), over a copy of the bundles with untrained weights in ``models/model.pt``. Marked
``monai_label_server``; skipped when monailabel is not installed (``make install-label``), except
under ``GENVQ_REQUIRE_MONAILABEL=1`` (set by ``.ci/run``), where its absence is a failure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HYPERBOLIC = ["hyperbolic_toy_seg", "hyperbolic_brats_seg", "hyperbolic_cryoet_seg"]
UNSERVED = ["vq_quantizers", "cardiac_attri_sivae", "streamlines_vqdiff"]

pytestmark = [pytest.mark.monai_label_server, pytest.mark.slow]

if importlib.util.find_spec("monailabel") is None:
    if os.environ.get("GENVQ_REQUIRE_MONAILABEL") == "1":
        raise RuntimeError("GENVQ_REQUIRE_MONAILABEL=1 but monailabel is not installed: run `make install-label`")
    pytest.skip("monailabel is not installed (make install-label)", allow_module_level=True)

requests = pytest.importorskip("requests")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _oblique_affine(spacing: float, dims: int) -> np.ndarray:
    """A rotated, shifted affine with the given voxel size (a viewer misplaces an overlay that loses it)."""
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot * spacing
    affine[:3, 3] = [-40.0, 12.5, 7.0]
    return affine


def _copy_bundles(dest: Path, names: list[str]) -> Path:
    """Copy the bundles' configs and give each served one untrained weights (as a freshly shipped model)."""
    from monai.bundle import ConfigParser

    bundles = dest / "bundles"
    for name in names:
        shutil.copytree(ROOT / "bundles" / name / "configs", bundles / name / "configs")
        spec = json.loads((bundles / name / "configs" / "metadata.json").read_text())["monai_label"]
        if spec["served_as"] != "segmentation":
            continue
        parser = ConfigParser()
        parser.read_config(str(bundles / name / "configs" / "inference.json"))
        parser["bundle_root"] = str(bundles / name)
        torch.manual_seed(0)
        net = parser.get_parsed_content("network_def")
        (bundles / name / "models").mkdir()
        torch.save({"model": net.state_dict()}, bundles / name / "models" / "model.pt")
        # a short training for the test (a user sets these in the served copy's train.json the same way)
        train = json.loads((bundles / name / "configs" / "train.json").read_text())
        if name == "anatomical_prior_seg":
            train.update({"epoch_length": 2, "batch_size": 4})
        else:
            train.update({"triplets_per_volume": 4})
        (bundles / name / "configs" / "train.json").write_text(json.dumps(train, indent=4))
    return bundles


def _volume_studies(folder: Path) -> dict[str, np.ndarray]:
    """Three 40^3 volumes (2 mm, oblique), labels (final tag) for two of them."""
    rng = np.random.default_rng(0)
    affines = {}
    (folder / "labels" / "final").mkdir(parents=True)
    grid = np.stack(np.meshgrid(*[np.arange(40)] * 3, indexing="ij"))
    for i in range(3):
        centre = rng.uniform(14, 26, size=3)
        r = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(0))
        label = (r < 16).astype(np.uint8) + (r < 9) + (r < 4)
        image = (np.choose(label, [0.0, 0.4, 0.7, 1.0]) + rng.normal(0, 0.05, label.shape)) * (label > 0)
        affine = _oblique_affine(2.0, 3)
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), folder / f"vol{i}.nii.gz")
        if i < 2:
            nib.save(nib.Nifti1Image(label, affine), folder / "labels" / "final" / f"vol{i}.nii.gz")
        affines[f"vol{i}"] = affine
    return affines


def _slice_studies(folder: Path, cache: Path) -> dict[str, np.ndarray]:
    """Six 2-D short-axis slices (1.4 mm, oblique in-plane) with LV/MYO/RV labels, from the ACDC phantom."""
    from monai_genvq.data import discover_acdc, ensure_synthetic_acdc
    from monai_genvq.transforms import LoadCardiacEDd

    (folder / "labels" / "final").mkdir(parents=True)
    affines = {}
    records = discover_acdc(ensure_synthetic_acdc(cache / "acdc", n_train=6, n_test=1))
    for i, record in enumerate([r for r in records if r.get("split", "training") == "training"][:6]):
        d = LoadCardiacEDd()(record)
        complete = [z for z in range(d["label"].shape[2]) if set(np.unique(d["label"][..., z])) >= {1, 2, 3}]
        z = complete[len(complete) // 2]  # a slice that shows LV, myocardium and RV (training requires all three)
        affine = _oblique_affine(1.4, 2)
        nib.save(nib.Nifti1Image(np.asarray(d["image"][..., z], np.float32), affine), folder / f"sa{i}.nii.gz")
        nib.save(
            nib.Nifti1Image(np.asarray(d["label"][..., z], np.uint8), affine),
            folder / "labels" / "final" / f"sa{i}.nii.gz",
        )
        affines[f"sa{i}"] = affine
    return affines


class Server:
    def __init__(self, app: Path, studies: Path, bundles: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "monailabel"
        cmd = [
            str(exe),
            "start_server",
            "--app",
            str(app),
            "--studies",
            str(studies),
            "--conf",
            "bundles",
            str(bundles),
        ]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        # the monailabel script runs `python -m monailabel.main`: the python of this environment first on PATH
        path = os.pathsep.join([str(exe.parent), os.environ.get("PATH", "")])
        env = {**os.environ, "PATH": path, "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false", "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.proc = subprocess.Popen(
            cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait(self, timeout: float = 240.0) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                r = requests.get(f"{self.url}/info/", timeout=5)
                if r.status_code == 200:
                    return r.json()
            except requests.ConnectionError:
                pass
            time.sleep(1.0)
        raise AssertionError(f"server did not answer /info/ within {timeout} s:\n{self.log.read_text()[-4000:]}")

    def infer(self, model: str, image: str, out: Path) -> nib.Nifti1Image:
        r = requests.post(f"{self.url}/infer/{model}", params={"image": image, "output": "image"}, timeout=600)
        assert r.status_code == 200, (
            f"/infer/{model} {image}: HTTP {r.status_code} {r.text[:2000]}\n{self.log.read_text()[-3000:]}"
        )
        out.write_bytes(r.content)
        return nib.load(str(out))

    def train(self, model: str, params: dict) -> None:
        r = requests.post(f"{self.url}/train/{model}", params={"run_sync": "true"}, json=params, timeout=900)
        assert r.status_code == 200, (
            f"/train/{model}: HTTP {r.status_code} {r.text[:2000]}\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_geometry(result: nib.Nifti1Image, source: Path, n_labels: int, what: str) -> np.ndarray:
    src = nib.load(str(source))
    data = np.asarray(result.dataobj)
    assert data.shape == src.shape, f"{what}: result shape {data.shape} != input shape {src.shape}"
    assert np.allclose(result.affine, src.affine, atol=1e-4), f"{what}: affine\n{result.affine}\n!= input\n{src.affine}"
    values = set(np.unique(data).astype(int).tolist())
    assert values <= set(range(n_labels + 1)), f"{what}: label values {sorted(values)} outside 0..{n_labels}"
    return data


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monai_label")
    app = tmp / "app"
    app.mkdir()
    (app / "main.py").write_text("from monai_genvq.apps.monai_label.app import GenVQApp  # noqa: F401\n")
    bundles = _copy_bundles(tmp, [*HYPERBOLIC, "anatomical_prior_seg", *UNSERVED])
    volumes, slices = tmp / "studies3d", tmp / "studies2d"
    geo = {"volumes": _volume_studies(volumes), "slices": _slice_studies(slices, tmp)}
    started = {
        "volumes": Server(app, volumes, bundles, tmp / "server3d.log"),
        "slices": Server(app, slices, bundles, tmp / "server2d.log"),
    }
    try:
        info = {k: s.wait() for k, s in started.items()}
        yield {
            "servers": started,
            "info": info,
            "bundles": bundles,
            "studies": {"volumes": volumes, "slices": slices},
            "tmp": tmp,
            "geo": geo,
        }
    finally:
        for s in started.values():
            s.stop()


def test_info_offers_the_segmentation_bundles_only(servers):
    for info in servers["info"].values():
        assert set(info["models"]) == {*HYPERBOLIC, "anatomical_prior_seg"}
        assert set(info["trainers"]) == {*HYPERBOLIC, "anatomical_prior_seg"}
        for name in UNSERVED:
            assert name not in info["models"]
        assert info["models"]["anatomical_prior_seg"]["labels"] == {"LV cavity": 1, "myocardium": 2, "RV cavity": 3}
        assert info["models"]["anatomical_prior_seg"]["dimension"] == 2
        assert info["models"]["hyperbolic_brats_seg"]["labels"] == {f"cluster {i}": i for i in range(1, 5)}
        assert all(
            info["models"][m]["dimension"] == 3 and info["models"][m]["type"] == "segmentation" for m in HYPERBOLIC
        )


@pytest.mark.parametrize(
    "kind, model, n_labels, val_split",
    [
        ("volumes", "hyperbolic_brats_seg", 4, 0.5),
        ("volumes", "hyperbolic_toy_seg", 8, 0.0),
        ("volumes", "hyperbolic_cryoet_seg", 5, 0.0),
        ("slices", "anatomical_prior_seg", 3, 0.2),
    ],
)
def test_infer_train_infer(servers, kind, model, n_labels, val_split):
    server, studies = servers["servers"][kind], servers["studies"][kind]
    out = servers["tmp"] / f"{model}_results"
    out.mkdir()
    images = sorted(servers["geo"][kind])
    before = {}
    for name in images[:2]:
        res = server.infer(model, name, out / f"{name}_before.nii.gz")
        before[name] = _check_geometry(res, studies / f"{name}.nii.gz", n_labels, f"{model} {name}")
    weights = servers["bundles"] / model / "models" / "model.pt"
    digest = _digest(weights)
    server.train(
        model, {"max_epochs": 2, "val_split": val_split, "device": "cpu", "pretrained": True, "multi_gpu": False}
    )
    assert _digest(weights) != digest, f"/train/{model} did not publish new weights to {weights}"
    runs = sorted((servers["bundles"] / model / "outputs" / "monai_label").iterdir())
    assert runs, "no run folder"
    after = {}
    for name in images[:2]:
        res = server.infer(model, name, out / f"{name}_after.nii.gz")
        after[name] = _check_geometry(res, studies / f"{name}.nii.gz", n_labels, f"{model} {name} after training")
    # the infer task reloaded the published weights (MONAI Label reloads a model file whose time changed)
    assert any(not np.array_equal(before[n], after[n]) for n in before), f"{model}: the same results after training"
