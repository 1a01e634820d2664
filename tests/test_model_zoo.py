"""The MONAI model zoo's own checks, for every bundle under ``bundles/`` (a new bundle is covered automatically).

What the zoo's CI (``ci/verify_bundle.py`` in Project-MONAI/model-zoo) runs on a bundle, called
in-process here: ``verify_metadata`` against the bundle schema (kept in ``tests/data``, no
download), ``verify_net_in_out`` with the metadata's ``network_data_format``, and ``ckpt_export``
to TorchScript, whose module must reproduce the eager network. Plus the zoo's file conventions:
``LICENSE``, ``docs/data_license.txt`` and a ``docs/README.md`` with the zoo README's sections.

The network these checks load is ``export_network_def`` of ``configs/inference.json`` (the zoo
names it per bundle in ``ci/bundle_custom_data.py``'s ``custom_net_config_dict``; its default is
``network_def``). Our ``network_def`` returns a dataclass, which ``verify_net_in_out`` (it reads
``output.shape``) and TorchScript cannot take; ``export_network_def`` is
:class:`monai_genvq.networks.TensorOutputNetwork` around ``@network_def``: the same weights and
checkpoint keys, ``forward(x)`` returning the one tensor ``network_data_format.outputs.pred``
describes.
"""

from __future__ import annotations

import configparser
import json
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import torch
from conftest import REPO, SCHEMA
from monai.bundle import ConfigParser, ckpt_export, verify_metadata, verify_net_in_out

BUNDLES = sorted(p for p in (REPO / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file())
IDS = [b.name for b in BUNDLES]
NET_ID = "export_network_def"  # model-zoo ci/bundle_custom_data.py: custom_net_config_dict[<bundle>]["net_id"]
CONFIG = "inference.json"  # ... ["config_file"]
# the sections of the zoo's bundle READMEs (e.g. spleen_ct_segmentation/docs/README.md); Input and Output
# are subsections of Training configuration there
README_SECTIONS = (
    "Model Overview",
    "Data",
    "Training configuration",
    "Input",
    "Output",
    "Performance",
    "MONAI Bundle Commands",
    "References",
    "License",
)
OTHER_VOLUME_SIZES = ((12, 11, 13), (20, 18, 22))  # a traced per-voxel embedding is not tied to the traced size


def _meta(bundle: Path) -> dict:
    return json.loads((bundle / "configs" / "metadata.json").read_text())


def _parser(bundle: Path, root: Path) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / CONFIG))
    parser.read_meta(str(bundle / "configs" / "metadata.json"))
    parser["bundle_root"] = str(root)
    parser["device"] = "$torch.device('cpu')"
    return parser


def _shape(spec: dict) -> tuple:
    """(C, *spatial) of a ``network_data_format`` tensor entry whose spatial shape is concrete."""
    spatial = spec["spatial_shape"]
    assert all(isinstance(s, int) for s in spatial), f"give the network a concrete spatial shape, got {spatial}"
    return (spec["num_channels"], *spatial)


def _install_requirements() -> tuple[str, dict, str]:
    """What installing the package gives: its version and install_requires (setup.cfg), the torch pin (constraints)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    requires = {}
    for line in cfg["options"]["install_requires"].splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            requires[canonicalize_name(req.name)] = req.specifier
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    )
    return cfg["metadata"]["version"], requires, pins["torch"].strip()


@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_metadata_verifies_and_names_installable_versions(bundle):
    meta_file = bundle / "configs" / "metadata.json"
    verify_metadata(str(meta_file), filepath=str(SCHEMA))  # the schema file exists, so nothing is downloaded
    meta = _meta(bundle)
    assert meta["version"] in meta["changelog"]
    assert meta["schema"].endswith("/" + SCHEMA.name), "the schema URL names the schema kept in tests/data"
    from packaging.utils import canonicalize_name

    package_version, requires, torch_pin = _install_requirements()
    assert meta["pytorch_version"] == torch_pin, "pytorch_version is the torch that constraints.txt pins"
    assert meta["monai_version"] in requires["monai"] and meta["numpy_version"] in requires["numpy"]
    # the plugin itself is a requirement, as the zoo's generative bundles listed monai-generative: every _target_
    # of the configs lives in it, and installing it pulls the rest (setup.cfg install_requires)
    packages = dict(meta["required_packages_version"])
    assert packages.pop("monai-genvq", None) == package_version, "monai-genvq at setup.cfg's version"
    for name, wanted in packages.items():
        try:
            version(name)  # a distribution name (what pip installs), not an import name
        except PackageNotFoundError:
            pytest.fail(f"{bundle.name}: required package {name!r} is not an installed distribution")
        spec = requires.get(canonicalize_name(name))
        assert spec is not None, f"{bundle.name}: {name} is not in setup.cfg install_requires"
        assert wanted in spec, f"{bundle.name}: {name} {wanted} does not satisfy setup.cfg's {name}{spec}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_configs_are_json(bundle):
    for f in sorted((bundle / "configs").glob("*.json")):
        json.loads(f.read_text())


@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_verify_net_in_out(bundle, tmp_path):
    verify_net_in_out(
        net_id=NET_ID,
        meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=str(bundle / "configs" / CONFIG),
        device="cpu",
        bundle_root=str(tmp_path),
    )


@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_ckpt_export_reproduces_eager_network(bundle, tmp_path):
    """``ckpt_export`` (traced, example input from the metadata) of freshly initialised weights saved as training
    saves them; the TorchScript module equals the eager network, with autograd on (no ``torch.no_grad()``)."""
    data_format = _meta(bundle)["network_data_format"]
    in_shape, out_shape = _shape(data_format["inputs"]["image"]), _shape(data_format["outputs"]["pred"])
    parser = _parser(bundle, tmp_path)
    assert tuple(parser.get_parsed_content("export_input_shape")) == (1, *in_shape), "export_input_shape = metadata"
    torch.manual_seed(0)
    net = parser.get_parsed_content(NET_ID)
    (tmp_path / "models").mkdir()
    torch.save({"model": net.state_dict()}, tmp_path / "models" / "model.pt")  # CheckpointSaver's format
    filepath = tmp_path / "models" / "model.ts"
    ckpt_export(
        net_id=NET_ID,
        filepath=str(filepath),
        ckpt_file=str(tmp_path / "models" / "model.pt"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=str(bundle / "configs" / CONFIG),
        key_in_ckpt="model",
        use_trace=True,  # input_shape not given: ckpt_export makes it from network_data_format
        bundle_root=str(tmp_path),
    )
    exported = torch.jit.load(str(filepath))
    net.eval()
    x = torch.rand(1, *in_shape, generator=torch.Generator().manual_seed(1))
    expected, got = net(x), exported(x)
    assert tuple(got.shape) == tuple(expected.shape) == (1, *out_shape), "output shape = metadata"
    assert got.dtype == expected.dtype == getattr(torch, data_format["outputs"]["pred"]["dtype"])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    if len(in_shape) == 4:  # volumes: the per-voxel embedding of other sizes than the traced one
        with torch.no_grad():
            for size in OTHER_VOLUME_SIZES:
                x = torch.rand(1, in_shape[0], *size, generator=torch.Generator().manual_seed(2))
                torch.testing.assert_close(exported(x), net(x), atol=1e-5, rtol=1e-4, msg=str(size))
    else:  # the bundle's own inferer takes the exported module in place of the eager network (model.ts)
        eager = net.network  # the network_def inside the wrapper, with the exported weights
        inferer = parser.get_parsed_content("inferer")
        with torch.no_grad():
            torch.testing.assert_close(inferer(x, exported).float(), inferer(x, eager).float(), atol=1e-5, rtol=0)


def _headings(markdown: str) -> list[str]:
    """The text of every Markdown heading outside fenced code blocks, without '#' and emphasis."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6}\s", line):
            out.append(line.lstrip("#").strip().strip("*").strip())
    return out


@pytest.mark.parametrize("bundle", BUNDLES, ids=IDS)
def test_license_data_license_and_readme_sections(bundle):
    assert (bundle / "LICENSE").is_file()
    data_license = bundle / "docs" / "data_license.txt"
    assert data_license.is_file() and data_license.read_text().strip(), "docs/data_license.txt states the data terms"
    headings = [h.lower() for h in _headings((bundle / "docs" / "README.md").read_text())]
    missing = [s for s in README_SECTIONS if not any(re.match(re.escape(s.lower()) + r"\b", h) for h in headings)]
    assert not missing, f"{bundle.name}/docs/README.md lacks the model-zoo sections {missing}"
