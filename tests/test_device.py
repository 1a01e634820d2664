"""``--device``/``--amp``/``--pin_memory``/``--channels_last`` as the command line gives them, and their wiring into
every bundle's engines and data loaders."""

import json
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from torch import nn

from monai_genvq.utils import OptionError, cuda_option, resolve_device, root_cause, to_device

REPO = Path(__file__).resolve().parents[1]
BUNDLES = sorted(p for p in (REPO / "bundles").iterdir() if (p / "configs" / "train.json").is_file())
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
CPU = torch.device("cpu")

# engines and loaders that stay float32 / unpinned on purpose (bundle, config file, id) -> why
FLOAT32_ENGINES = {
    **{
        (h, "train.json", "validate#evaluator"): "Poincaré-ball clustering of whole volumes"
        for h in ("hyperbolic_toy_seg", "hyperbolic_brats_seg", "hyperbolic_cryoet_seg")
    },
    ("anatomical_prior_seg", "evaluate.json", "kmeans_evaluator"): "intensity k-means reference, no network",
    ("anatomical_prior_seg", "evaluate.json", "unet_evaluator"): "supervised reference UNet, trained in float32",
}
UNPINNED_LOADERS = {
    (h, "train.json", "validate#dataloader")
    for h in ("hyperbolic_toy_seg", "hyperbolic_brats_seg", "hyperbolic_cryoet_seg")
}


def test_resolve_device_takes_command_line_strings_and_devices():
    assert resolve_device("cpu") == resolve_device(" CPU ") == resolve_device(CPU) == CPU
    assert (
        resolve_device("auto") == resolve_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    with pytest.raises(OptionError, match="must be auto, cpu, cuda or cuda:N, got 'gpu'"):
        resolve_device("gpu")


@NO_GPU
@pytest.mark.parametrize("value", ["cuda", "cuda:1", torch.device("cuda", 0)], ids=str)
def test_asking_for_a_gpu_without_one_says_so(value):
    with pytest.raises(OptionError, match=r"asks for a GPU, but torch .* sees none; use --device cpu"):
        resolve_device(value)


def test_cuda_options_are_auto_or_booleans_in_any_spelling():
    on = torch.cuda.is_available()
    assert cuda_option("auto", "auto") is on and cuda_option(None, CPU) is False
    assert cuda_option("auto", "cpu") is False and cuda_option("true", "cpu") is True  # forced on CPU
    assert cuda_option("false", CPU) is False and cuda_option(True, CPU) is True and cuda_option("False", CPU) is False
    with pytest.raises(OptionError, match="option --pin_memory must be auto, true or false, got 'yes'"):
        cuda_option("yes", CPU, "pin_memory")


def test_to_device_stores_only_2d_convolutions_channels_last():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 2), nn.Conv3d(1, 2, 3), nn.Linear(3, 3))
    assert to_device(net, "cpu") is net and all(p.is_contiguous() for p in net.parameters())
    to_device(net, "cpu", channels_last=True)
    for conv in net[:2]:
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert net[2].weight.is_contiguous() and net[3].weight.is_contiguous()
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(net[1](net[0](x)), net[1](net[0](x.contiguous(memory_format=torch.channels_last))))


def _parser(bundle: Path, *files: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / f) for f in files])
    return parser


@pytest.mark.parametrize("config", ["train.json", "inference.json"])
@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_command_line_device_and_amp_strings_resolve(bundle, config):
    parser = _parser(bundle, config)
    assert parser["device"] == "$monai_genvq.utils.resolve_device('auto')"
    if "runtime" not in parser:  # hyperbolic inference: float32 end to end (see the bundle's docs)
        return
    for key in ("amp", "pin_memory"):
        assert parser[key] == "auto"
    parser.update({"device": "cpu", "amp": "false"})  # `--device cpu --amp false` as python-fire passes them
    assert parser.get_parsed_content("runtime")["amp"] is False
    assert parser.get_parsed_content("runtime")["pin_memory"] is False
    parser["amp"] = "true"
    assert parser.get_parsed_content("runtime")["amp"] is True
    if not torch.cuda.is_available():
        parser["device"] = "cuda"
        with pytest.raises(RuntimeError) as err:
            parser.get_parsed_content("runtime")
        assert "use --device cpu" in str(root_cause(err.value))


def _engines_and_loaders(node, path=""):
    """(id, dict) of every engine (``*Trainer``/``*Evaluator``) and every ``DataLoader`` in a config."""
    if isinstance(node, dict):
        target = node.get("_target_", "")
        if isinstance(target, str) and (target.endswith(("Trainer", "Evaluator")) or target == "DataLoader"):
            yield path, node
        for key, value in node.items():
            yield from _engines_and_loaders(value, f"{path}#{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _engines_and_loaders(value, f"{path}#{i}")


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_every_engine_gets_amp_and_every_loader_pins_memory(bundle):
    seen = 0
    for config in sorted((bundle / "configs").glob("*.json")):
        for ident, node in _engines_and_loaders(json.loads(config.read_text())):
            key = (bundle.name, config.name, ident)
            if node["_target_"] == "DataLoader":
                expected = {} if key in UNPINNED_LOADERS else {"pin_memory": "@runtime#pin_memory"}
            elif key in FLOAT32_ENGINES:
                expected = {}
            else:
                expected = {"amp": "@runtime#amp", "non_blocking": "@runtime#pin_memory"}
            assert {k: node.get(k) for k in expected} == expected, f"{config.name}: {ident}"
            seen += 1
    assert seen >= 3
