"""Triplet sampling, the hierarchical toy set, volume/MRC IO (MONAI LoadImage / SaveImage) and their errors."""

import gzip

import mrcfile
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, LoadImage, LoadImaged, SaveImage

from monai_genvq.apps.hyperbolic import (
    LEVEL_CLASSES,
    HyperbolicSegmentation,
    TripletPatchSampler,
    TripletPatchSamplerd,
    discover_cryoet,
    discover_hierarchy_toy,
    ensure_hierarchy_toy,
)
from monai_genvq.apps.hyperbolic.inferer import cluster_embedding
from monai_genvq.apps.hyperbolic.synthetic_toy import generate_hierarchy_volume, level_map
from monai_genvq.data import MRCReader, MRCWriter, VolumeFileError, mrc_affine, write_mrc
from monai_genvq.metrics import IntensityKMeans, hungarian_dice
from monai_genvq.transforms import ForegroundNormalize, ForegroundNormalized


def _boxes_from_marker_volume():
    """A volume whose voxel value encodes its position, so crops can be located after sampling."""
    x, y, z = np.meshgrid(np.arange(40), np.arange(40), np.arange(40), indexing="ij")
    return torch.from_numpy(np.stack([x, y, z]).astype(np.float32))


def test_triplet_child_inside_parent_negative_outside():
    vol = _boxes_from_marker_volume()
    sampler = TripletPatchSampler(
        patch_size=10, parent_size=(16, 24), child_fraction=(0.4, 0.7), sampling="ours"
    ).set_random_state(0)
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

    sampler = TripletPatchSampler(patch_size=10, parent_size=(16, 24), mask_fn=slab, sampling="ours").set_random_state(
        0
    )
    triplets = sampler.sample(vol, 20)
    assert len(triplets) == 20 and len(calls) == 1
    # a parent of side >= 16 centred at x < 6 is clipped to start at x = 0 (less half a resampled voxel)
    assert all(float(parent[0].amin()) < 1.5 for parent, _, _ in triplets)
    with pytest.raises(ValueError, match="case_3.*sampling mask is empty"):
        TripletPatchSampler(
            patch_size=10, parent_size=(16, 24), mask_fn=lambda v: np.zeros(v.shape[1:], bool), sampling="ours"
        )(vol, name="case_3")


def test_triplet_dict_version_and_errors():
    t = TripletPatchSamplerd("image", num_samples=5, patch_size=10, parent_size=(12, 16)).set_random_state(1)
    out = t({"image": torch.rand(1, 30, 30, 30)})
    assert len(out) == 5 and set(out[0]) == {"parent", "child", "negative"}
    with pytest.raises(ValueError, match="larger than the volume"):
        TripletPatchSampler(patch_size=10, parent_size=(10, 12), sampling="ours")(torch.rand(1, 8, 30, 30))
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
        emb = IntensityKMeans(sigma=sigma, spatial_dims=3).embed_volume(torch.as_tensor(img)[None])
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


def _segmentation(tmp_path):
    """A 2-class intensity k-means segmentation writer (HyperbolicSegmentation with the no-learning reference)."""
    return lambda records: HyperbolicSegmentation(
        IntensityKMeans(spatial_dims=3),
        records,
        {"classes": ("label", 2, [0, 1])},
        tmp_path / "outputs" / "intensity" / "eval",
        method="intensity",
        figures=False,
        write_embeddings=True,
    )


def test_segmentation_is_written_in_the_input_geometry_nifti_and_mrc(tmp_path):
    """Read -> segment -> write: a 2 mm NIfTI gives a NIfTI with its shape and affine, an MRC with a known
    voxel size and origin an MRC with the same; the written labels sit on the input's voxels."""
    rng = np.random.default_rng(0)
    label = np.zeros((12, 10, 8), np.uint8)
    label[3:9, 2:8, 2:6] = 1
    image = label + 0.05 * rng.random(label.shape, dtype=np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90.0, 126.0, -72.0]
    nib.save(nib.Nifti1Image(image, affine), tmp_path / "brain.nii.gz")
    nib.save(nib.Nifti1Image(label, affine), tmp_path / "brain_label.nii.gz")
    voxel_size, origin = (10.0, 8.0, 6.0), (30.0, -20.0, 5.0)  # (z, y, x), Å
    write_mrc(tmp_path / "tomo.mrc", image, voxel_size=voxel_size, origin=origin)
    write_mrc(tmp_path / "tomo_label.mrc", label.astype(np.int16), voxel_size=voxel_size, origin=origin)
    records = [
        {"image": str(tmp_path / "brain.nii.gz"), "label": str(tmp_path / "brain_label.nii.gz"), "name": "brain"},
        {"image": str(tmp_path / "tomo.mrc"), "label": str(tmp_path / "tomo_label.mrc"), "name": "tomo"},
    ]
    metrics = _segmentation(tmp_path)(records).run()
    assert metrics["levels"]["classes"]["mean"] == pytest.approx(1.0)
    out = tmp_path / "outputs" / "intensity" / "eval"
    seg = nib.load(out / "segmentations" / "brain_classes.nii.gz")
    assert seg.shape == label.shape and np.allclose(seg.affine, affine) and seg.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(seg.dataobj), label)
    with mrcfile.open(out / "segmentations" / "tomo_classes.mrc") as mrc:
        assert mrc.data.shape == label.shape and mrc.data.dtype == np.int16
        assert (float(mrc.voxel_size.z), float(mrc.voxel_size.y), float(mrc.voxel_size.x)) == voxel_size
        assert (float(mrc.header.origin.z), float(mrc.header.origin.y), float(mrc.header.origin.x)) == origin
        assert np.array_equal(mrc.data, label)
    # the embeddings: 4-D NIfTI (X, Y, Z, d) at the input's place in space (MRC: the affine of its axes)
    assert np.allclose(nib.load(out / "embeddings" / "brain_embedding.nii.gz").affine, affine)
    emb = nib.load(out / "embeddings" / "tomo_embedding.nii.gz")
    assert emb.shape == label.shape + (1,) and np.allclose(emb.affine, mrc_affine(voxel_size, origin))


def test_mrc_reader_geometry_memmap_and_compressed(tmp_path):
    data = np.random.rand(5, 6, 7).astype(np.float32)
    write_mrc(tmp_path / "t.mrc", data, voxel_size=(10.0, 8.0, 6.0), origin=(1.0, 2.0, 3.0))
    img = LoadImage(reader=MRCReader(), ensure_channel_first=True)(tmp_path / "t.mrc")
    assert isinstance(img, MetaTensor) and img.shape == (1, 5, 6, 7) and torch.equal(img[0], torch.as_tensor(data))
    # voxel (i, j, k) of the (z, y, x) array sits at (x, y, z) = origin + (6k, 8j, 10i)
    assert np.allclose(img.affine.numpy() @ [1, 2, 3, 1], [3.0 + 18, 2.0 + 16, 1.0 + 10, 1])
    assert np.allclose(img.meta["voxel_size"], (10.0, 8.0, 6.0)) and np.allclose(img.meta["origin"], (1.0, 2.0, 3.0))
    assert img.meta["filename_or_obj"] == str(tmp_path / "t.mrc")
    with gzip.open(tmp_path / "t.mrc.gz", "wb") as f:
        f.write((tmp_path / "t.mrc").read_bytes())
    assert torch.equal(LoadImage(reader=MRCReader(mmap=False))(tmp_path / "t.mrc"), img[0].as_tensor())
    assert torch.equal(LoadImage(reader=MRCReader())(tmp_path / "t.mrc.gz").as_tensor(), img[0].as_tensor())
    opened = []
    real_mmap = mrcfile.mmap
    mrcfile.mmap = lambda *a, **k: opened.append(a[0]) or real_mmap(*a, **k)
    try:
        LoadImage(reader=MRCReader())(tmp_path / "t.mrc")
    finally:
        mrcfile.mmap = real_mmap
    assert opened == [str(tmp_path / "t.mrc")], "uncompressed files are read through a memory map"
    # several files are channels; their geometry must agree
    two = LoadImage(reader=MRCReader(), ensure_channel_first=True)([tmp_path / "t.mrc", tmp_path / "t.mrc.gz"])
    assert two.shape == (2, 5, 6, 7)
    write_mrc(tmp_path / "other.mrc", data, voxel_size=5.0)
    with pytest.raises(VolumeFileError, match="other.mrc.*t.mrc.*geometry"):
        LoadImage(reader=MRCReader())([tmp_path / "t.mrc", tmp_path / "other.mrc"])


def test_bad_mrc_files_name_the_file(tmp_path):
    load = LoadImage(reader=MRCReader())
    with pytest.raises(VolumeFileError, match="missing.mrc.*does not exist"):
        load(tmp_path / "missing.mrc")
    (tmp_path / "bad.mrc").write_bytes(b"not an mrc file at all" * 20)
    with pytest.raises(VolumeFileError, match="cannot read MRC file.*bad.mrc"):
        load(tmp_path / "bad.mrc")
    write_mrc(tmp_path / "t.mrc", np.random.rand(5, 6, 7).astype(np.float32))
    raw = (tmp_path / "t.mrc").read_bytes()
    (tmp_path / "trunc.mrc").write_bytes(raw[: len(raw) - 200])
    with pytest.raises(VolumeFileError, match="trunc.mrc"):
        load(tmp_path / "trunc.mrc")
    write_mrc(tmp_path / "flat.mrc", np.zeros((6, 7), np.float32))
    with pytest.raises(VolumeFileError, match="flat.mrc.*3-D"):
        load(tmp_path / "flat.mrc")
    nan = np.zeros((4, 4, 4), np.float32)
    nan[1, 2, 3] = np.nan
    write_mrc(tmp_path / "nan.mrc", nan)
    with pytest.raises(VolumeFileError, match="nan.mrc.*1 NaN"):
        load(tmp_path / "nan.mrc")
    # through a bundle's loader (a reader list: the file is not taken for another format) and the evaluation's
    bundle_loader = LoadImaged("image", reader=["monai_genvq.data.MRCReader", "NibabelReader"])
    with pytest.raises(VolumeFileError, match="trunc.mrc"):
        bundle_loader({"image": str(tmp_path / "trunc.mrc")})
    with pytest.raises(VolumeFileError, match="flat.mrc"):
        _segmentation(tmp_path)([{"image": "x"}]).load(tmp_path / "flat.mrc")
    with pytest.raises(FileNotFoundError, match="model_"):
        discover_cryoet(tmp_path)


def test_bad_nifti_files_name_the_file(tmp_path):
    seg = _segmentation(tmp_path)([{"image": "x"}])
    nib.save(nib.Nifti1Image(np.random.rand(6, 7, 8).astype(np.float32), np.eye(4)), tmp_path / "a.nii.gz")
    data = (tmp_path / "a.nii.gz").read_bytes()
    (tmp_path / "trunc.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(VolumeFileError, match="trunc.nii.gz"):
        seg.load(tmp_path / "trunc.nii.gz")
    nan = np.zeros((4, 4, 4), np.float32)
    nan[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(VolumeFileError, match="nan.nii.gz.*NaN"):
        seg.load(tmp_path / "nan.nii.gz")
    with pytest.raises(VolumeFileError, match="missing.nii.gz"):
        seg.load(tmp_path / "missing.nii.gz")


@pytest.mark.parametrize("flip", [False, True])
def test_mrc_writer_stores_any_axis_aligned_affine(tmp_path, flip):
    """A (x, y, z) NIfTI-style volume (permuted, possibly flipped axes) written as MRC keeps every voxel's place."""
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # every value marks one voxel
    affine = np.diag([-1.5 if flip else 1.5, 2.0, 3.0, 1.0])
    affine[:3, 3] = [10.0, -5.0, 7.0]
    SaveImage(output_ext=".mrc", writer=MRCWriter, separate_folder=False, print_log=False)(
        MetaTensor(torch.as_tensor(data)[None], affine=torch.as_tensor(affine)), filename=str(tmp_path / "v")
    )
    back = LoadImage(reader=MRCReader())(tmp_path / "v.mrc")
    assert back.shape == (6, 5, 4)  # file order (z, y, x)
    idx = np.stack(np.unravel_index(np.argsort(data.ravel()), data.shape))
    idx_back = np.stack(np.unravel_index(np.argsort(back.numpy().ravel()), back.shape))
    world = affine[:3, :3] @ idx + affine[:3, 3:]
    world_back = back.affine.numpy()[:3, :3] @ idx_back + back.affine.numpy()[:3, 3:]
    assert np.allclose(world, world_back)
    oblique = np.eye(4)
    oblique[0, 1] = 0.5
    writer = MRCWriter()
    writer.set_data_array(torch.as_tensor(data)[None])
    writer.set_metadata({"affine": oblique})
    with pytest.raises(ValueError, match="oblique"):
        writer.write(tmp_path / "o.mrc")


def test_foreground_normalize_uses_the_foreground_statistics():
    rng = np.random.default_rng(0)
    vol = np.zeros((2, 10, 10, 10), np.float32)
    vol[:, 2:8, 2:8, 2:8] = rng.normal(5.0, 2.0, (2, 6, 6, 6))
    vol[1, 3, 3, 3] = 0.0  # a zero inside the foreground of channel 0 still counts for channel 1
    fg = (vol != 0).any(0)
    z = ForegroundNormalize("zscore")(MetaTensor(torch.as_tensor(vol), meta={"filename_or_obj": "v.nii.gz"}))
    assert isinstance(z, MetaTensor) and z.meta["filename_or_obj"] == "v.nii.gz" and z.dtype == torch.float32
    for ch in range(2):
        ref = vol[ch][fg]
        assert np.allclose(z[ch].numpy(), (vol[ch] - ref.mean()) / ref.std(), atol=1e-5)
        assert abs(float(z[ch].numpy()[fg].mean())) < 1e-5 and float(z[ch].numpy()[fg].std()) == pytest.approx(1.0)
    p = ForegroundNormalized("image", mode="percentile")({"image": vol})["image"]
    lo, hi = np.percentile(vol[0][fg], [1, 99])
    assert np.allclose(p[0], np.clip((vol[0] - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert p.min() == 0.0 and p.max() == 1.0 and float(p[0, 0, 0, 0]) == 0.0  # background below the 1st percentile
    assert ForegroundNormalize("none")(vol) is vol
    with pytest.raises(ValueError, match="normalisation"):
        ForegroundNormalize("minmax")


def test_bundle_loader_reads_nifti_channels_and_mrc_like_the_evaluation(tmp_path):
    """The bundles' preprocessing (LoadImaged + ForegroundNormalized) and HyperbolicSegmentation.load agree."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    a, b = np.random.rand(2, 6, 7, 8).astype(np.float32)
    nib.save(nib.Nifti1Image(a, affine), tmp_path / "t1.nii.gz")
    nib.save(nib.Nifti1Image(b, affine), tmp_path / "flair.nii.gz")
    write_mrc(tmp_path / "tomo.mrc", a, voxel_size=10.0)
    pre = Compose(
        [
            LoadImaged("image", reader=["monai_genvq.data.MRCReader", "NibabelReader"], ensure_channel_first=True),
            ForegroundNormalized("image", mode="zscore"),
        ]
    )
    seg = HyperbolicSegmentation(
        IntensityKMeans(), [{"image": "x"}], {}, tmp_path / "o" / "x" / "eval", normalize="zscore"
    )
    for image in ([str(tmp_path / "t1.nii.gz"), str(tmp_path / "flair.nii.gz")], str(tmp_path / "tomo.mrc")):
        via_bundle, via_eval = pre({"image": image})["image"], seg.load(image)
        assert via_bundle.shape == via_eval.shape == ((2, 6, 7, 8) if isinstance(image, list) else (1, 6, 7, 8))
        assert torch.allclose(via_bundle.as_tensor(), via_eval.as_tensor()) and torch.equal(
            via_bundle.affine, via_eval.affine
        )
