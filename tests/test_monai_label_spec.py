"""The ``monai_label`` section of every bundle's metadata: what MONAI Label serves, and that it matches the configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_genvq.apps.monai_label import MonaiLabelSpec, read_monai_label_spec

BUNDLES = sorted(p for p in (Path(__file__).resolve().parents[1] / "bundles").iterdir() if (p / "configs").is_dir())
SERVED = {"anatomical_prior_seg", "hyperbolic_toy_seg", "hyperbolic_brats_seg", "hyperbolic_cryoet_seg"}


def test_segmentation_bundles_are_served_the_others_say_why():
    specs = {b.name: read_monai_label_spec(b) for b in BUNDLES}
    assert {n for n, s in specs.items() if s.served} == SERVED
    for name, spec in specs.items():
        if not spec.served:
            assert f"bundles/{name}/configs/inference.json" in spec["why"], name  # how to use it instead


@pytest.mark.parametrize("bundle", [b for b in BUNDLES if b.name in SERVED], ids=lambda b: b.name)
def test_served_labels_and_training_stages_match_the_configs(bundle):
    spec = read_monai_label_spec(bundle)
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    if "label_names" in parser.config:  # a named label map: ids 1.. in the config's order
        names = parser.get_parsed_content("label_names")
        assert list(spec["labels"].values()) == list(range(1, len(names) + 1))
        meta = json.loads((bundle / "configs" / "metadata.json").read_text())
        for name in spec["labels"]:
            assert name in meta["pred_classes"], name
    else:  # clusters: as many as the served inferer makes
        assert len(spec["labels"]) == parser.get_parsed_content("n_clusters")
    for stage in spec["train_configs"]:
        for f in stage:
            assert (bundle / "configs" / f).is_file(), f
        train = ConfigParser()
        train.read_config([str(bundle / "configs" / f) for f in stage])
        # MONAI Label's BundleTrainTask overrides these ids: they must exist (validate too, for val_split >= 0)
        for key in ("train#dataset#data", "validate#dataset#data", "train#handlers", "network", "device"):
            assert key in train, (stage, key)
        assert train["validate#dataset#data"] == [], "the CLI default: no validation unless MONAI Label passes a split"


def test_malformed_sections_are_refused_naming_the_bundle():
    with pytest.raises(ValueError, match="bundles/x.*served_as"):
        MonaiLabelSpec.parse({}, "bundles/x")
    with pytest.raises(ValueError, match="say why"):
        MonaiLabelSpec.parse({"served_as": None}, "bundles/x")
    with pytest.raises(ValueError, match="labels"):
        MonaiLabelSpec.parse({"served_as": "segmentation", "labels": {"a": 0}}, "bundles/x")
    good = {"served_as": "segmentation", "labels": {"a": 1}, "trains_from": "images", "train_configs": [["train.json"]]}
    with pytest.raises(ValueError, match="trained_model"):
        MonaiLabelSpec.parse(good, "bundles/x")
    assert MonaiLabelSpec.parse({**good, "trained_model": "models/model.pt"}, "bundles/x").served
