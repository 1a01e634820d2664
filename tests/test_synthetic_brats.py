"""Synthetic BraTS phantoms: v2 (default) is not an intensity threshold; v1 stays selectable."""

import logging

import nibabel as nib
import numpy as np
import pytest
from conftest import REPO, parse_bundle

import monai_genvq.apps.hyperbolic as hyperbolic
from monai_genvq.apps.hyperbolic import (
    BraTSRegion,
    HyperbolicSegmentation,
    discover_brats,
    ensure_synthetic_brats,
    generate_synthetic_brats,
)
from monai_genvq.metrics import IntensityKMeans

CONFIGS = REPO / "bundles" / "hyperbolic_brats_seg" / "configs"
SHAPE = (64, 64, 48)  # the calibration size (bundle docs, "Protocol"); one case takes ~1 s to score


def _intensity_dice(root, tmp_path, sigma: float, modalities=("flair",)) -> list[float]:
    """Whole-tumour Dice of the bundle's intensity baseline (``intensity.json``'s class and evaluation) per case."""
    metrics = HyperbolicSegmentation(
        IntensityKMeans(sigma=sigma, spatial_dims=3),
        discover_brats(root, modalities=list(modalities)),
        {"whole_tumour": ("label", 4, [0, 1])},
        tmp_path / f"eval_{sigma:g}",
        method="intensity",
        normalize="percentile",
        mask="nonzero",
        label_transforms={"whole_tumour": BraTSRegion("whole_tumour", "2021")},
        write_segmentations=False,
        figures=False,
    ).run()
    return [v["whole_tumour"]["per_label"][1] for v in metrics["volumes"]]


def _load(root, case: str, suffix: str, sep: str = "_") -> np.ndarray:
    return np.asarray(nib.load(root / case / f"{case}{sep}{suffix}.nii.gz").dataobj)


@pytest.fixture(scope="module")
def v2_case(tmp_path_factory):
    logging.disable(logging.INFO)  # per-case progress lines
    yield generate_synthetic_brats(tmp_path_factory.mktemp("brats_v2"), n_cases=1, shape=SHAPE, seed=0)
    logging.disable(logging.NOTSET)


def test_v2_is_the_default_and_has_every_subregion_and_modality(v2_case):
    case = "BraTS2021_00000"
    seg = _load(v2_case, case, "seg")
    assert set(np.unique(seg).tolist()) == {0, 1, 2, 4}  # necrotic / non-enhancing, oedema, enhancing
    brain = _load(v2_case, case, "flair") > 0
    normal = brain & (seg == 0)
    img = {m: _load(v2_case, case, m).astype(np.float64) for m in ("flair", "t1", "t1ce", "t2")}

    def ratio(mod, region):  # mean in a region over mean of the normal brain
        return img[mod][region].mean() / img[mod][normal].mean()

    core, oedema, enhancing = seg == 1, seg == 2, seg == 4
    assert ratio("flair", oedema) > 1.1 and ratio("t2", oedema) > 1.1  # oedema hyperintense
    assert ratio("t1ce", enhancing) > 1.15 > ratio("t1", enhancing)  # the rim enhances with contrast only
    assert ratio("t1", core) < 0.75 and ratio("t2", core) > 1.2  # fluid-like necrosis
    # overlap: most oedema voxels lie inside the normal brain's FLAIR range
    assert np.mean(img["flair"][oedema] < np.percentile(img["flair"][normal], 99)) > 0.5
    # the 2023 layout writes the same case with enhancing = 3
    root = generate_synthetic_brats(v2_case.parent / "brats_2023", n_cases=1, shape=SHAPE, layout="2023", seed=0)
    seg23 = _load(root, "BraTS-GLI-00000-000", "seg", "-")
    assert set(np.unique(seg23).tolist()) == {0, 1, 2, 3} and np.array_equal(seg23 == 3, enhancing)


@pytest.mark.parametrize("sigma", [0.0, 1.0], ids=["raw", "smoothed"])
def test_v2_whole_tumour_is_not_an_intensity_threshold(v2_case, tmp_path, sigma):
    dice = _intensity_dice(v2_case, tmp_path, sigma)
    assert max(dice) <= 0.6, dice  # calibration target (issue 20); v1 scores 0.96 raw


def test_v1_stays_selectable(tmp_path):
    logging.disable(logging.INFO)
    try:
        v1 = ensure_synthetic_brats(n_cases=1, shape=list(SHAPE), phantom="v1")
        assert v1 != ensure_synthetic_brats(n_cases=1, shape=list(SHAPE))  # its own cache folder
        case = "BraTS2021_00000"
        assert set(np.unique(_load(v1, case, "seg")).tolist()) == {0, 1, 2, 4}
        assert min(_intensity_dice(v1, tmp_path, 0.0)) > 0.8  # v1's whole tumour is a FLAIR threshold
    finally:
        logging.disable(logging.NOTSET)
    with pytest.raises(ValueError, match="phantom must be one of"):
        generate_synthetic_brats(tmp_path / "bad", n_cases=1, shape=(8, 8, 8), phantom="v3")


@pytest.mark.parametrize("phantom", ["v1", "v2", None])
def test_bundle_option_selects_the_phantom(monkeypatch, phantom):
    seen = {}
    monkeypatch.setattr(hyperbolic, "ensure_synthetic_brats", lambda **kw: seen.update(kw) or "/synthetic")
    overrides = () if phantom is None else ("--phantom", phantom)
    parser = parse_bundle([CONFIGS / "train.json"], CONFIGS.parent, *overrides)
    assert parser.get_parsed_content("data_root") == "/synthetic"
    assert seen == {"phantom": phantom or "v2"}  # v2 is the bundle default
    parser = parse_bundle([CONFIGS / "train.json", CONFIGS / "evaluate.json"], CONFIGS.parent, *overrides)
    assert (
        parser.get_parsed_content("evaluation#dataset")
        == f"synthetic BraTS-layout phantom {phantom or 'v2'} (test split)"
    )
