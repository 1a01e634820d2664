"""Triplet sampling, the hierarchical toy set, volume/MRC IO and their errors."""

import gzip

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_genvq.apps.hyperbolic import (
    LEVEL_CLASSES,
    TripletPatchSampler,
    TripletPatchSamplerd,
    discover_cryoet,
    discover_hierarchy_toy,
    ensure_hierarchy_toy,
)
from monai_genvq.apps.hyperbolic.inferer import cluster_embedding
from monai_genvq.apps.hyperbolic.synthetic_toy import generate_hierarchy_volume, level_map
from monai_genvq.data import VolumeFileError, load_volume, read_mrc, save_segmentation, write_mrc
from monai_genvq.metrics import hungarian_dice
from monai_genvq.networks import IntensityEmbedding


def _boxes_from_marker_volume():
    """A volume whose voxel value encodes its position, so crops can be located after sampling."""
    x, y, z = np.meshgrid(np.arange(40), np.arange(40), np.arange(40), indexing="ij")
    return torch.from_numpy(np.stack([x, y, z]).astype(np.float32))


def test_triplet_child_inside_parent_negative_outside():
    vol = _boxes_from_marker_volume()
    sampler = TripletPatchSampler(patch_size=10, parent_size=(16, 24), child_fraction=(0.4, 0.7)).set_random_state(0)
    for _ in range(20):
        parent, child, negative = sampler(vol)
        assert parent.shape == child.shape == negative.shape == (3, 10, 10, 10)
        p_lo, p_hi = parent.amin((1, 2, 3)), parent.amax((1, 2, 3))
        c_lo, c_hi = child.amin((1, 2, 3)), child.amax((1, 2, 3))
        n_ctr = negative.mean((1, 2, 3))
        # resampling insets each crop by half an output voxel: allow that much
        assert (c_lo >= p_lo - 1.5).all() and (c_hi <= p_hi + 1.5).all(), "child must lie inside its parent"
        assert ((n_ctr < p_lo) | (n_ctr > p_hi)).any(), "the negative's centre must lie outside the parent"
        assert (p_hi - p_lo).min() >= 14, "the parent covers a larger region than the patch size"


def test_triplet_parents_centred_in_the_mask_computed_once_per_volume():
    vol = _boxes_from_marker_volume()
    calls = []

    def slab(v):  # only x < 6 may hold a parent's centre
        calls.append(1)
        return (v[0] < 6).numpy()

    sampler = TripletPatchSampler(patch_size=10, parent_size=(16, 24), mask_fn=slab).set_random_state(0)
    triplets = sampler.sample(vol, 20)
    assert len(triplets) == 20 and len(calls) == 1
    # a parent of side >= 16 centred at x < 6 is clipped to start at x = 0 (less half a resampled voxel)
    assert all(float(parent[0].amin()) < 1.5 for parent, _, _ in triplets)
    with pytest.raises(ValueError, match="case_3.*sampling mask is empty"):
        TripletPatchSampler(patch_size=10, parent_size=(16, 24), mask_fn=lambda v: np.zeros(v.shape[1:], bool))(
            vol, name="case_3"
        )


def test_triplet_dict_version_and_errors():
    t = TripletPatchSamplerd("image", num_samples=5, patch_size=10, parent_size=(12, 16)).set_random_state(1)
    out = t({"image": torch.rand(1, 30, 30, 30)})
    assert len(out) == 5 and set(out[0]) == {"parent", "child", "negative"}
    with pytest.raises(ValueError, match="larger than the volume"):
        TripletPatchSampler(patch_size=10, parent_size=(10, 12))(torch.rand(1, 8, 30, 30))
    bad = torch.rand(1, 20, 20, 20)
    bad[0, 3, 4, 5] = float("nan")
    with pytest.raises(ValueError, match="toy_007.*NaN"):
        TripletPatchSampler(patch_size=10, parent_size=(10, 12))(bad, name="toy_007")
    with pytest.raises(ValueError, match="channel-first"):
        TripletPatchSampler(patch_size=10, parent_size=(10, 12))(torch.rand(20, 20, 20))


def test_toy_volume_hierarchy_is_nested_and_needs_texture():
    img, lab3 = generate_hierarchy_volume(np.random.default_rng(3))
    assert img.shape == lab3.shape == (50, 50, 50)
    assert set(np.unique(lab3)) == set(range(LEVEL_CLASSES[3]))
    l1, l2 = level_map(lab3, 1), level_map(lab3, 2)
    assert set(np.unique(l1)) == {0, 1} and set(np.unique(l2)) == {0, 1, 2, 3}
    assert np.array_equal(l1, (l2 > 0).astype(np.uint8))  # levels nest
    for fine, coarse in ((4, 2), (5, 2), (6, 3), (7, 3)):
        assert np.all(l2[lab3 == fine] == coarse)
    # organelle types A and B share the mean intensity (texture, not intensity, separates them) ...
    a, b = img[lab3 == 2], img[lab3 == 3]
    assert abs(a.mean() - b.mean()) < 0.25 * min(a.std(), b.std()) + 0.05
    # ... and so do the inclusions of A and of B (context separates them)
    assert abs(img[lab3 == 4].mean() - img[lab3 == 6].mean()) < 0.1


def test_toy_levels_need_pooled_features_not_an_intensity_threshold():
    """k-means on raw voxel intensities must not recover even level 1; pooling a neighbourhood must."""
    img, lab3 = generate_hierarchy_volume(np.random.default_rng(5))
    level1 = level_map(lab3, 1)
    dice = {}
    for sigma in (0.0, 1.0):
        emb = IntensityEmbedding(sigma=sigma).embed_volume(torch.as_tensor(img)[None])
        dice[sigma] = hungarian_dice(cluster_embedding(emb, 2, 0.0), level1, [0, 1])[0]
    assert dice[0.0] < 0.9 < 0.95 < dice[1.0], dice


def test_toy_dataset_layout_and_discovery(tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_GENVQ_CACHE", str(tmp_path))
    root = ensure_hierarchy_toy(n_train=2, n_test=1, size=24)
    assert ensure_hierarchy_toy(n_train=2, n_test=1, size=24) == root  # reused, not regenerated
    train, test = discover_hierarchy_toy(root, "train"), discover_hierarchy_toy(root, "test")
    assert len(train) == 2 and len(test) == 1
    img = nib.load(train[0]["image"])
    assert img.shape == (24, 24, 24)
    for level in (1, 2, 3):
        lab = np.asarray(nib.load(train[0][f"label_level{level}"]).dataobj)
        assert lab.max() < LEVEL_CLASSES[level]
    (root / "labelsTs" / f"{test[0]['name']}_level2.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="level2"):
        discover_hierarchy_toy(root, "test")
    with pytest.raises(FileNotFoundError, match="imagesTr"):
        discover_hierarchy_toy(tmp_path / "empty", "train")


def test_nifti_roundtrip_keeps_geometry_and_errors(tmp_path):
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    affine[:3, 3] = [10, -5, 3]
    nib.save(nib.Nifti1Image(np.random.rand(6, 7, 8).astype(np.float32), affine), tmp_path / "a.nii.gz")
    vol, meta = load_volume(tmp_path / "a.nii.gz")
    assert vol.shape == (1, 6, 7, 8)
    out = save_segmentation(np.ones((6, 7, 8), np.int64), meta, tmp_path / "seg" / "a_seg.nii.gz")
    assert np.allclose(nib.load(out).affine, affine)
    data = (tmp_path / "a.nii.gz").read_bytes()
    (tmp_path / "trunc.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(VolumeFileError, match="trunc.nii.gz"):
        load_volume(tmp_path / "trunc.nii.gz")
    nan = np.zeros((4, 4, 4), np.float32)
    nan[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(VolumeFileError, match="nan.nii.gz.*NaN"):
        load_volume(tmp_path / "nan.nii.gz")
    with pytest.raises(VolumeFileError, match="does not exist"):
        load_volume(tmp_path / "missing.nii.gz")


def test_mrc_roundtrip_memmap_compressed_and_unreadable(tmp_path):
    data = np.random.rand(5, 6, 7).astype(np.float32)
    write_mrc(tmp_path / "t.mrc", data, voxel_size=(10.0, 8.0, 8.0), origin=(1.0, 2.0, 3.0))
    back, meta = read_mrc(tmp_path / "t.mrc")
    assert np.allclose(back, data) and meta["voxel_size"] == (10.0, 8.0, 8.0) and meta["origin"] == (1.0, 2.0, 3.0)
    with gzip.open(tmp_path / "t.mrc.gz", "wb") as f:
        f.write((tmp_path / "t.mrc").read_bytes())
    assert np.allclose(load_volume(tmp_path / "t.mrc.gz")[0][0], data)
    out = save_segmentation(np.ones((5, 6, 7), np.int64), meta, tmp_path / "seg.mrc")
    seg, seg_meta = read_mrc(out)
    assert seg.shape == (5, 6, 7) and seg_meta["voxel_size"] == meta["voxel_size"]
    (tmp_path / "bad.mrc").write_bytes(b"not an mrc file at all" * 20)
    with pytest.raises(VolumeFileError, match="bad.mrc"):
        read_mrc(tmp_path / "bad.mrc")
    raw = (tmp_path / "t.mrc").read_bytes()
    (tmp_path / "trunc.mrc").write_bytes(raw[: len(raw) - 200])
    with pytest.raises(VolumeFileError, match="trunc.mrc"):
        load_volume(tmp_path / "trunc.mrc")
    with pytest.raises(FileNotFoundError, match="model_"):
        discover_cryoet(tmp_path)
