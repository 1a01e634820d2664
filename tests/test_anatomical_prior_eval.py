"""Anatomical prior: label-free preprocessing, evaluation in the image's own frame, evaluator-based report."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_genvq.apps.anatomical_prior import (
    AnatomicalPriorInferer,
    HungarianMatch,
    HungarianMatchd,
    ImageSegmentationVAE,
    LabelPriorVAE,
    StackSliced,
    build_supervised_reference,
    jensen_intensity_log_likelihood,
    refine_latent,
    stack_slice_index,
    train_supervised_unet,
)
from monai_genvq.metrics import (
    ClusterDiceMetric,
    IntensityKMeans,
    hungarian_dice,
    hungarian_match,
    match_clusters,
    per_label_dice,
)

CONFIGS = Path(__file__).resolve().parents[1] / "bundles" / "anatomical_prior_seg" / "configs"


def _parse(*ids, files=("train.json", "train_image.json", "evaluate.json")):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in files])
    return [parser.get_parsed_content(i) for i in ids]


def _case(seed=0):
    from monai_genvq.data.synthetic_cardiac import render_cardiac_phantom

    c = render_cardiac_phantom(np.random.default_rng(seed), shape=(120, 100), n_slices=6, n_frames=2)
    return c["image"][..., 0].astype(np.float32), c["label"][..., 0]


def _apply(transforms, d):
    for t in transforms:
        d = t(d)
    return d


def test_slice_choice_uses_no_labels():
    assert [stack_slice_index(8, o) for o in (-1, 0, 1)] == [2, 3, 4]
    assert stack_slice_index(5, 0, position=1.0) == 4 and stack_slice_index(3, -5) == 0
    with pytest.raises(ValueError, match="no slice"):
        stack_slice_index(0)
    img, lab = _case()
    t = StackSliced(("image", "label"))
    a = t({"image": img, "label": lab, "slice_offset": 1})
    b = t({"image": img, "label": np.zeros_like(lab), "slice_offset": 1})
    assert a["slice_index"] == b["slice_index"] == 3
    torch.testing.assert_close(a["image"], b["image"])
    torch.testing.assert_close(a["image"][0], torch.as_tensor(img[:, :, 3]))


@pytest.mark.parametrize("config_id", ["preprocessing", "test_preprocessing"])
def test_stage2_and_test_images_do_not_depend_on_labels(config_id):
    """The image a network sees is identical whatever the label file holds (no pose / slice / intensity from labels)."""
    (pre,) = _parse(config_id)
    img, lab = _case(1)
    rest = pre.transforms[1:]  # after the loader
    other = np.roll(np.roll(lab, 17, axis=0), -9, axis=1)  # a different, valid label map
    other[:, :, :] = other[:, :, ::-1]
    out_a = _apply(rest, {"image": img.copy(), "label": lab.copy(), "slice_offset": 0})
    out_b = _apply(rest, {"image": img.copy(), "label": other, "slice_offset": 0})
    torch.testing.assert_close(torch.as_tensor(out_a["image"]), torch.as_tensor(out_b["image"]))
    assert tuple(out_a["image"].shape) == (1, 64, 64)


def test_predictions_are_scored_in_the_image_frame():
    """A perfect prediction in the network frame, mapped back by the evaluator's post-processing, matches the native label."""
    pre, post, num_labels = _parse("test_preprocessing", "postprocessing", "num_labels")
    img, lab = _case(2)
    d = _apply(pre.transforms[1:], {"image": img, "label": lab, "slice_offset": 0})
    assert tuple(d["label"].shape) == (1, 120, 100)  # the ground truth stays in its own frame
    # the network-frame version of the label (same crop/resize, nearest), as one-hot "logits"
    from monai.transforms import Resize, ResizeWithPadOrCrop

    net_frame = Resize((64, 64), mode="nearest-exact")(ResizeWithPadOrCrop((112, 112))(d["label"]))
    logits = torch.nn.functional.one_hot(torch.as_tensor(net_frame[0]).long(), num_labels).movedim(-1, 0).float()
    out = post({"image": d["image"], "label": d["label"], "pred": logits})
    assert tuple(out["pred"].shape) == (num_labels, 120, 100)
    dice = per_label_dice(out["pred"].argmax(0)[None], out["label"].argmax(0)[None], num_labels)
    assert float(dice.min()) > 0.8  # only the 112 -> 64 -> 112 resampling is lost
    # the same prediction left in the network frame would not even have the image's shape
    assert logits.shape[1:] != out["label"].shape[1:]


def test_hungarian_matching_and_kmeans_network():
    pred = torch.tensor([[[2, 2], [0, 1]]])
    label = torch.tensor([[[1, 1], [0, 2]]])
    out = HungarianMatchd("pred", num_labels=3)({"pred": pred, "label": label})
    assert out["pred"].tolist() == label.tolist()
    assert HungarianMatch(3)(pred, label).tolist() == label.tolist()
    with pytest.raises(ValueError, match="differ in shape"):
        HungarianMatchd("pred", num_labels=3)({"pred": pred, "label": label[..., :1]})
    x = torch.tensor([0.1, 0.5, 0.9])[torch.tensor([[0, 0, 1, 1], [2, 2, 1, 0]])][None, None]
    onehot = IntensityKMeans(3)(x)
    assert onehot.shape == (1, 3, 2, 4) and torch.all(onehot.sum(1) == 1)
    ids = onehot.argmax(1)[0]
    assert ids[0, 0] == ids[0, 1] == ids[1, 3] and ids[0, 2] == ids[0, 3] == ids[1, 2] and ids[1, 0] == ids[1, 1]


def test_one_hungarian_matching_and_its_criteria():
    """Known answer where the criteria disagree. Clusters [0,0,0,0,1], labels [0,0,0,1,0]:
    overlap — keep (3 + 0 voxels) beats swap (1 + 1); Dice — keep: 6/8 + 0 = 0.75, swap: 2/5 + 2/5 = 0.8."""
    pred, label = np.array([0, 0, 0, 0, 1]), np.array([0, 0, 0, 1, 0])
    mapping, scores = match_clusters(pred, label, criterion="overlap")
    assert mapping == {0: 0, 1: 1} and scores.tolist() == [[3.0, 1.0], [1.0, 0.0]]
    mapping, scores = match_clusters(pred, label)  # "dice" (METRICS.md)
    assert mapping == {0: 1, 1: 0}
    np.testing.assert_allclose(scores, [[0.75, 0.4], [0.4, 0.0]])
    assert hungarian_match(pred, label, 2).tolist() == [0, 0, 0, 0, 1]  # overlap, the bundle's k-means row
    assert hungarian_match(pred, label, 2, "dice").tolist() == [1, 1, 1, 1, 0]
    assert HungarianMatch(2, "dice")(torch.as_tensor(pred), torch.as_tensor(label)).tolist() == [1, 1, 1, 1, 0]
    score, mapping, per_label = hungarian_dice(pred, label)  # the same matching, scored
    assert mapping == {0: 1, 1: 0} and score == pytest.approx(0.4) and per_label.tolist() == pytest.approx([0.4, 0.4])
    # an extra cluster no label gets becomes background
    assert hungarian_match(np.array([0, 1, 2, 2]), np.array([1, 0, 1, 1]), 2).tolist() == [0, 0, 1, 1]
    # fewer clusters than labels: the unmatched label counts 0 by default, or is left out (the seed's code)
    one, lab3 = np.zeros(4, int), np.array([0, 0, 0, 1])  # Dice(c0, L0) = 6/7 > Dice(c0, L1) = 2/5
    score, mapping, per_label = hungarian_dice(one, lab3)
    assert mapping == {0: 0} and score == pytest.approx(3 / 7) and per_label.tolist() == pytest.approx([6 / 7, 0.0])
    score, _, per_label = hungarian_dice(one, lab3, unmatched_value=None)
    assert score == pytest.approx(6 / 7) and np.isnan(per_label[1])
    metric = ClusterDiceMetric(unmatched_value=None)
    metric(torch.as_tensor(one)[None], torch.as_tensor(lab3)[None])
    assert float(metric.aggregate()) == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="criterion"):
        match_clusters(pred, label, criterion="iou")
    with pytest.raises(ValueError, match="criterion"):
        HungarianMatchd("pred", criterion="iou")
    with pytest.raises(ValueError, match=">= 0"):
        hungarian_match(np.array([-1, 0]), np.array([0, 1]), 2)


def _plain_unet_loop(dataset, num_labels, iterations, batch_size, lr, channels, seed):
    """The hand-written loop the SupervisedTrainer-based reference replaced (kept here as its specification)."""
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    x = torch.stack([d["image"] for d in dataset]).float()
    y = torch.stack([d["label"] for d in dataset]).long()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = UNet(2, x.shape[1], num_labels, channels=channels, strides=(2,) * (len(channels) - 1), num_res_units=1)
    loss_fn, opt = DiceCELoss(to_onehot_y=True, softmax=True), torch.optim.Adam(net.parameters(), lr)
    net.train()
    for _ in range(iterations):
        idx = torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), generator=g)
        opt.zero_grad()
        loss_fn(net(x[idx]), y[idx]).backward()
        opt.step()
    return net


def test_supervised_reference_is_a_supervised_trainer_reproducing_the_plain_loop():
    from monai.engines import SupervisedTrainer

    g = torch.Generator().manual_seed(1)
    data = [
        {"image": torch.rand(1, 16, 16, generator=g), "label": torch.randint(0, 3, (1, 16, 16), generator=g)}
        for _ in range(6)
    ]
    trainer = build_supervised_reference(data, 3, iterations=5, batch_size=4, channels=(4, 8), seed=3)
    assert isinstance(trainer, SupervisedTrainer)
    trainer.run()
    assert trainer.state.iteration == 5 and trainer.state.epoch == 1
    net = train_supervised_unet(data, 3, iterations=5, batch_size=4, channels=(4, 8), seed=3)
    assert not net.training
    reference = _plain_unet_loop(data, 3, 5, 4, 1e-3, (4, 8), seed=3)
    for (k, a), b in zip(net.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)  # same network, loss, optimiser, batches, seed
    for (k, a), b in zip(trainer.network.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    other = train_supervised_unet(data, 3, iterations=5, batch_size=4, channels=(4, 8), seed=4)
    assert any(not torch.equal(a, b) for a, b in zip(other.state_dict().values(), net.state_dict().values()))
    bad = [{"image": torch.full((1, 16, 16), float("nan")), "label": torch.zeros(1, 16, 16, dtype=torch.long)}]
    with pytest.raises(FloatingPointError, match="supervised UNet reference: non-finite loss at iteration 1"):
        train_supervised_unet(bad, 3, iterations=2, channels=(4, 8))


def test_inferer_modes():
    torch.manual_seed(0)
    net = ImageSegmentationVAE(LabelPriorVAE(2, 3, 16, (4,), 2)).eval()
    x = torch.rand(3, 1, 16, 16)
    logits = AnatomicalPriorInferer()(x, net)
    assert torch.equal(logits.argmax(1), net.segment(x))
    mean_shape = AnatomicalPriorInferer("prior_mean")(x, net)
    torch.testing.assert_close(mean_shape, net.decode(torch.zeros(3, 2)))
    with pytest.raises(ValueError, match="mode"):
        AnatomicalPriorInferer("median")


def test_report_collects_evaluators_into_metrics_table_and_figure(tmp_path):
    """Known answers: a perfect segmenter scores Dice 1, the all-background one 0; files are written."""
    from monai.engines import SupervisedEvaluator
    from monai.handlers import MeanDice, from_engine
    from monai.transforms import AsDiscreted

    from monai_genvq.apps.anatomical_prior import SegmentationReport
    from monai_genvq.handlers import ClusterDice

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (4, 1, 12, 12), generator=g)
    from monai.data import DataLoader

    items = [
        {"image": torch.nn.functional.one_hot(labels[i, 0], 4).movedim(-1, 0).float(), "label": labels[i]}
        for i in range(4)
    ]
    data = DataLoader(items, batch_size=2)
    report = SegmentationReport(tmp_path, ["LV", "MYO", "RV"], n_figure=2, figure_size=8)

    class Zero(torch.nn.Module):
        def forward(self, x):
            out = torch.zeros_like(x)
            out[:, 0] = 1
            return out

    for name, net in (("perfect", torch.nn.Identity()), ("background", Zero())):
        SupervisedEvaluator(
            "cpu",
            data,
            net,
            postprocessing=AsDiscreted(keys=["pred", "label"], argmax=[True, False], to_onehot=[4, 4]),
            key_val_metric={
                "dice": MeanDice(include_background=False, output_transform=from_engine(["pred", "label"]))
            },
            additional_metrics={
                "matched_dice": ClusterDice([1, 2, 3], output_transform=from_engine(["pred", "label"]))
            },
            val_handlers=[report.handler(name)],
        ).run()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dice"]["perfect"]["mean"]["mean"] == pytest.approx(1.0)
    assert metrics["dice"]["background"]["mean"]["mean"] == pytest.approx(0.0)
    assert metrics["other_metrics"]["perfect"]["matched_dice"]["mean"] == pytest.approx(1.0)
    assert metrics["n_test_images"] == 4 and metrics["dice"]["perfect"]["LV"]["n"] == 4
    assert [Path(f).name for f in metrics["figures"]] == ["overlays.png"] and Path(metrics["figures"][0]).is_file()
    assert "| perfect | 1.000 ± 0.000 |" in (tmp_path / "results.md").read_text()


def test_latent_refinement_raises_the_map_objective():
    torch.manual_seed(0)
    net = ImageSegmentationVAE(LabelPriorVAE(2, 3, 16, (4,), 2)).eval()
    x = torch.rand(3, 1, 16, 16)

    def objective(z):
        with torch.no_grad():
            return jensen_intensity_log_likelihood(net.decode(z), x, net.means, net.logvars) - 0.5 * z.square().sum(1)

    z0 = net.encode(x)[0].detach()
    assert torch.equal(refine_latent(net, x, z0, steps=0), z0)
    z1 = refine_latent(net, x, z0, steps=20)
    assert torch.all(objective(z1) > objective(z0))
    z2 = refine_latent(net, x, z0, steps=20, restarts=3)
    assert torch.all(objective(z2) >= objective(z1) - 1e-3)  # the z0 start is among the candidates
    assert all(not p.requires_grad for p in net.prior.parameters())
    refined = AnatomicalPriorInferer(refine_steps=5)(x, net)
    assert refined.shape == (3, 3, 16, 16)
