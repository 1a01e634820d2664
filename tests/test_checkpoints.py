"""Checkpoints and resume: a valid checkpoint is always on disk, files get the umask, loads are weights-only."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import pathlib
import stat

import pytest
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from monai_genvq.apps.anatomical_prior.report import load_module_checkpoint
from monai_genvq.handlers import AtomicCheckpointSaver, CorruptCheckpointError, ResumeFromLatest
from monai_genvq.networks.priors.base import load_model_weights

_real_save = torch.save


def _trainer(ckpt_dir, resume=False, save_interval=1, **kwargs):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

    def step(engine, batch):
        opt.zero_grad()
        (net(batch) ** 2).mean().backward()
        opt.step()

    engine = Engine(step)
    handler = ResumeFromLatest(
        ckpt_dir, {"model": net, "optimizer": opt}, resume=resume, save_interval=save_interval, **kwargs
    )
    handler.attach(engine)
    return engine, handler


def _data(n):
    return [torch.full((2, 3), float(i)) for i in range(n)]


def _resume_files(ckpt_dir):
    return sorted(f for f in os.listdir(ckpt_dir) if f.startswith("resume_checkpoint_"))


def _save_half_then_fail(monkeypatch, should_fail):
    """Make ``torch.save`` write half of the file, then raise, whenever ``should_fail()`` is true."""

    def save(obj, f, *args, **kwargs):
        if not should_fail():
            return _real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        _real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if isinstance(f, (str, os.PathLike)):
            pathlib.Path(f).write_bytes(data)
        else:
            f.write(data)
            f.flush()
        raise OSError("simulated: disk full / process killed during torch.save")

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("n_saved", [1, 2])
def test_resume_checkpoint_is_kept_while_the_next_one_fails_midway(tmp_path, monkeypatch, n_saved):
    """While checkpoint N+1 is being written (and fails halfway), checkpoint N is still on disk and resumes."""
    engine, _ = _trainer(tmp_path, n_saved=n_saved)
    _save_half_then_fail(monkeypatch, lambda: engine.state.iteration == 3)
    with pytest.raises(OSError, match="simulated"):
        engine.run(_data(4), max_epochs=1)
    monkeypatch.setattr(torch, "save", _real_save)

    expected = ["resume_checkpoint_2.pt"] if n_saved == 1 else ["resume_checkpoint_1.pt", "resume_checkpoint_2.pt"]
    assert sorted(os.listdir(tmp_path)) == expected, "no temporary or half-written file, previous ones intact"
    assert torch.load(tmp_path / "resume_checkpoint_2.pt", weights_only=True)["trainer"]["iteration"] == 2

    engine, handler = _trainer(tmp_path, resume=True, n_saved=n_saved)
    seen = []
    engine.add_event_handler(Events.ITERATION_STARTED, lambda e: seen.append(e.state.iteration))
    engine.run(_data(4), max_epochs=1)
    assert handler.loaded_from.name == "resume_checkpoint_2.pt" and seen == [3, 4]  # iterations 3 and 4 run again


def test_best_model_file_is_kept_while_the_new_best_fails_midway(tmp_path, monkeypatch):
    """MONAI's fixed-name ``model.pt`` (key metric, n_saved=1) is replaced only once the new one is complete."""
    net = torch.nn.Linear(2, 1)
    engine = Engine(lambda e, b: net.weight.data.add_(1.0))

    @engine.on(Events.EPOCH_COMPLETED)
    def _metric(e):
        e.state.metrics["acc"] = float(e.state.epoch)  # improves every epoch: a new best each time

    saver = AtomicCheckpointSaver(
        str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="acc", key_metric_filename="model.pt"
    )
    saver.attach(engine)
    _save_half_then_fail(monkeypatch, lambda: engine.state.epoch == 2)
    with pytest.raises(OSError, match="simulated"):
        engine.run([0], max_epochs=3)
    monkeypatch.setattr(torch, "save", _real_save)
    assert sorted(os.listdir(tmp_path)) == ["model.pt", "model.pt.score.json"]
    assert json.loads((tmp_path / "model.pt.score.json").read_text())["saved"][0][0] == 1.0, "the epoch-1 score"
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    torch.testing.assert_close(saved["weight"], net.weight.detach() - 1.0)  # the epoch-1 weights

    engine = Engine(lambda e, b: net.weight.data.add_(1.0))
    engine.add_event_handler(Events.EPOCH_COMPLETED, _metric)
    saver.attach(engine)
    engine.run([0], max_epochs=3)  # the pending removal of model.pt must not delete the file just written
    assert sorted(os.listdir(tmp_path)) == ["model.pt", "model.pt.score.json"]
    torch.testing.assert_close(torch.load(tmp_path / "model.pt", weights_only=True)["weight"], net.weight.detach())


def test_exactly_the_last_two_resume_checkpoints_remain(tmp_path):
    engine, _ = _trainer(tmp_path, save_interval=2)  # default n_saved
    engine.run(_data(7), max_epochs=1)  # saves at 2, 4, 6 and 7 (completion)
    assert _resume_files(tmp_path) == ["resume_checkpoint_6.pt", "resume_checkpoint_7.pt"]

    engine, handler = _trainer(tmp_path, resume=True, save_interval=2)
    engine.run(_data(7), max_epochs=2)  # resumes at 7, saves at 8, 10, 12, 14
    assert handler.loaded_from.name == "resume_checkpoint_7.pt"
    assert _resume_files(tmp_path) == ["resume_checkpoint_12.pt", "resume_checkpoint_14.pt"]
    assert sorted(os.listdir(tmp_path)) == _resume_files(tmp_path), "no temporary file left behind"


def test_temporary_file_of_a_save_killed_midway_is_cleaned_up(tmp_path):
    """A SIGKILL during ``torch.save`` leaves only a hidden temporary sibling, removed by the next save."""
    tmp_path.mkdir(exist_ok=True)
    leftover = tmp_path / ".resume_checkpoint_5.pt.4242.0123abcd.tmp.pt"
    leftover.write_bytes(b"half a checkpoint")
    other = tmp_path / ".notes.txt"
    other.write_text("not ours")
    engine, _ = _trainer(tmp_path, save_interval=2)
    engine.run(_data(2), max_epochs=1)
    assert not leftover.exists() and other.exists()
    assert _resume_files(tmp_path) == ["resume_checkpoint_2.pt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027], ids=["022", "002", "027"])
def test_checkpoint_files_get_the_process_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        engine, _ = _trainer(tmp_path / "resume", save_interval=2)
        net = torch.nn.Linear(2, 1)
        saver = AtomicCheckpointSaver(
            str(tmp_path / "models"), {"model": net}, save_final=True, final_filename="model_final.pt"
        )
        saver.attach(engine)
        engine.run(_data(3), max_epochs=1)
    finally:
        os.umask(old)
    files = [tmp_path / "resume" / "resume_checkpoint_3.pt", tmp_path / "models" / "model_final.pt"]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f


class _Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _plant(path, marker):
    _real_save({"model": _Payload(marker), "optimizer": _Payload(marker), "trainer": _Payload(marker)}, path)


def test_planted_payload_would_run_code_when_unpickled(tmp_path):
    """Sanity check of the payload used below: a full (unsafe) unpickle does create the marker."""
    marker = tmp_path / "pwned"
    _plant(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_resume_refuses_a_checkpoint_whose_unpickling_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    _plant(tmp_path / "resume_checkpoint_5.pt", marker)
    engine, _ = _trainer(tmp_path, resume=True)
    with pytest.raises(CorruptCheckpointError, match=r"resume_checkpoint_5\.pt.*weights_only"):
        engine.run(_data(2), max_epochs=1)
    assert not marker.exists(), "the planted code ran"


def _monai_checkpoint_loader(path):
    engine = Engine(lambda e, b: None)
    CheckpointLoader(str(path), {"model": torch.nn.Linear(2, 1)}).attach(engine)
    engine.run([0], max_epochs=1)


@pytest.mark.parametrize(
    "load",
    [
        lambda p: load_module_checkpoint(torch.nn.Linear(2, 1), p),
        lambda p: load_model_weights(torch.nn.Linear(2, 1), p),
        _monai_checkpoint_loader,
    ],
    ids=["load_module_checkpoint", "load_model_weights", "monai_CheckpointLoader"],
)
def test_inference_loaders_refuse_a_checkpoint_whose_unpickling_would_run_code(tmp_path, load):
    marker = tmp_path / "pwned"
    _plant(tmp_path / "model.pt", marker)
    with pytest.raises(Exception, match=r"(?i)weights.only|model\.pt"):
        load(tmp_path / "model.pt")
    assert not marker.exists(), "the planted code ran"


def test_resume_without_checkpoint_warns_naming_the_folder(tmp_path, caplog):
    ckpt_dir = tmp_path / "no_checkpoints_here"
    engine, handler = _trainer(ckpt_dir, resume=True, save_interval=0)
    with caplog.at_level(logging.INFO, logger="monai_genvq.handlers.resume"):
        engine.run(_data(1), max_epochs=1)
    assert handler.loaded_from is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "no_checkpoints_here" in r.getMessage()]
    assert warnings, [(r.levelname, r.getMessage()) for r in caplog.records]
    assert "from scratch" in warnings[0].getMessage()


# --------------------------------------------------------------------------------------------- exact resume
class _Interrupted(Exception):
    """Stands for a kill right after a checkpoint was written."""


def _random_run(ckpt_dir, resume=False, save_interval=1, max_epochs=3, stop_before=None):
    """A run drawing on every source of randomness a bundle has: a shuffled MONAI DataLoader, a random
    transform (its own ``RandomState``), torch/numpy/python global RNGs in the step, and a validation at
    every epoch end that consumes the global torch RNG. Returns the loss of every iteration and the weights."""
    import random

    import numpy as np
    from monai.data import DataLoader, Dataset
    from monai.transforms import RandGaussianNoise
    from monai.utils import set_determinism

    set_determinism(seed=0)
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)  # stepped per epoch
    data = Dataset([torch.full((4,), float(i)) for i in range(5)], transform=RandGaussianNoise(prob=1.0, std=0.5))
    loader = DataLoader(data, batch_size=2, shuffle=True, num_workers=0)  # epochs of 3 batches (2, 2, 1)
    losses = {}

    def step(engine, batch):
        opt.zero_grad()
        noise = torch.randn(1) + float(np.random.rand()) + random.random()
        loss = ((net(batch) - noise) ** 2).mean()
        loss.backward()
        opt.step()
        losses[engine.state.iteration] = loss.item()
        return loss.item()

    engine = Engine(step)
    ResumeFromLatest(
        ckpt_dir, {"model": net, "optimizer": opt, "scheduler": sched}, resume=resume, save_interval=save_interval
    ).attach(engine)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: torch.rand(7))  # a validation drawing random numbers
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: sched.step())
    if stop_before is not None:

        @engine.on(Events.ITERATION_STARTED)
        def _kill(e):
            if e.state.iteration == stop_before:
                raise _Interrupted

    try:
        engine.run(loader, max_epochs=max_epochs)
    except _Interrupted:
        pass
    return losses, torch.cat([p.detach().flatten() for p in net.parameters()]), opt.param_groups[0]["lr"]


@pytest.mark.parametrize(
    "save_interval,killed_before,resumes_at",
    [(1, 2, 1), (1, 3, 2), (1, 4, 3), (1, 5, 4), (1, 7, 6), (2, 6, 4), (2, 8, 6)],
    ids=["first-batch", "mid-epoch", "epoch-end", "second-epoch", "epoch-end-2", "interval-2", "interval-2-end"],
)
def test_resumed_run_matches_the_uninterrupted_run_exactly(tmp_path, save_interval, killed_before, resumes_at):
    """Killed after the checkpoint of iteration ``resumes_at``, resumed with fresh objects: the same losses from
    there on and the same final weights and LR as one uninterrupted run, bit for bit (one thread, CPU). Epoch ends
    (iterations 3, 6) also check that the validation's random draws and the LR step at the epoch end are neither
    repeated nor skipped."""
    expected_losses, expected_weights, expected_lr = _random_run(tmp_path / "reference", save_interval=save_interval)
    assert len(expected_losses) == 9
    _random_run(tmp_path / "run", save_interval=save_interval, stop_before=killed_before)
    assert (
        torch.load(max((tmp_path / "run").glob("resume_checkpoint_*.pt"), key=os.path.getmtime), weights_only=True)[
            "trainer"
        ]["iteration"]
        == resumes_at
    )
    losses, weights, lr = _random_run(tmp_path / "run", resume=True, save_interval=save_interval)
    assert sorted(losses) == list(range(resumes_at + 1, 10)), "resumed at the saved iteration, nothing run twice"
    assert losses == {i: expected_losses[i] for i in losses}
    assert torch.equal(weights, expected_weights) and lr == expected_lr


def test_resume_into_a_different_data_pipeline_is_refused(tmp_path):
    """A checkpoint's random states cover its run's random transforms; a pipeline with another count is refused."""
    _random_run(tmp_path, stop_before=3)
    from monai.data import DataLoader, Dataset

    net = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(net.parameters())
    engine = Engine(lambda e, b: None)
    ResumeFromLatest(tmp_path, {"model": net, "optimizer": opt}, resume=True, strict=False).attach(engine)
    loader = DataLoader(Dataset([torch.zeros(4)] * 4), batch_size=2)  # no random transform
    with pytest.raises(CorruptCheckpointError, match=r"resume_checkpoint_2\.pt.*random transforms"):
        engine.run(loader, max_epochs=1)


def test_tensorboard_shows_no_step_twice_after_a_resume(tmp_path):
    """The interrupted run logged steps past its checkpoint; after the resume TensorBoard shows each step once,
    with the resumed (= uninterrupted) values."""
    from monai.handlers import TensorBoardStatsHandler
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def run(root, **kwargs):
        orig_attach = ResumeFromLatest.attach

        def attach(self, engine):
            orig_attach(self, engine)
            TensorBoardStatsHandler(log_dir=str(root / "logs"), output_transform=lambda loss: loss).attach(engine)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ResumeFromLatest, "attach", attach)
            _random_run(root / "models", **kwargs)
        acc = EventAccumulator(str(root / "logs"))
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars("Loss")]

    reference = run(tmp_path / "reference")
    interrupted = run(tmp_path / "run", save_interval=2, stop_before=6)  # logged 1..5, checkpoint at 4
    assert [s for s, _ in interrupted] == [1, 2, 3, 4, 5]
    resumed = run(tmp_path / "run", resume=True, save_interval=2)
    assert [s for s, _ in resumed] == list(range(1, 10)), "step 5 logged by the killed run is shown once"
    assert [s for s, _ in reference] == list(range(1, 10))
    assert [v for _, v in resumed] == pytest.approx([v for _, v in reference])  # float32 in the event file


_SLOW_SAVE = """
import io, os, runpy, sys, time
import torch

_save = torch.save

def slow_save(obj, f, *args, **kwargs):
    if "resume_checkpoint_{killed_at}." in os.path.basename(str(f)):  # the temporary file of that save
        buffer = io.BytesIO()
        _save(obj, buffer, *args, **kwargs)
        with open(f, "wb") as fh:
            fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        open({marker!r}, "w").close()
        time.sleep(600)  # killed here, half-way through the write
    return _save(obj, f, *args, **kwargs)

torch.save = slow_save
sys.argv = ["monai.bundle"] + sys.argv[1:]
runpy.run_module("monai.bundle", run_name="__main__")
"""


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_save_loses_nothing_and_the_resume_is_exact(tmp_path, cache_dir):
    """The toy hyperbolic bundle through the real CLI (random triplet sampling, shuffled volumes, sampled latents),
    one thread: SIGKILL while resume checkpoint 4 is half written; checkpoint 2 stays valid, and ``--resume true``
    ends with the weights of an uninterrupted run, bit for bit. ``PYTORCH_JIT=0``: geoopt's math is TorchScript,
    whose profiling executor re-optimises a function after its first calls and then rounds its gradients
    differently (~1e-7 relative), so a resumed process (cold JIT) would match only to float tolerance."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO, run_bundle

    from monai_genvq.apps.hyperbolic import ensure_hierarchy_toy

    data = ensure_hierarchy_toy(n_train=3, n_test=1, size=32)  # 3 volumes, batch 1: epochs of 3 iterations
    config = REPO / "bundles" / "hyperbolic_toy_seg" / "configs" / "train.json"
    args = ["--dataset_dir", str(data), "--max_epochs", "3", "--checkpoint_interval", "2", "--triplets_per_volume", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTORCH_JIT": "0"}

    def cli(root, *extra):
        return ["run", "training", "--config_file", str(config), "--bundle_root", str(root), *args, *extra]

    def final_weights(root):
        ckpt = max((root / "outputs" / "hyperbolic" / "models").glob("resume_checkpoint_*.pt"), key=os.path.getmtime)
        saved = torch.load(ckpt, weights_only=True)
        assert saved["trainer"]["iteration"] == 9
        return saved["model"]

    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        run_bundle("training", [config], tmp_path / "reference", *args)
    marker = tmp_path / "saving"
    script = _SLOW_SAVE.format(killed_at=4, marker=str(marker))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *cli(tmp_path / "run")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the run never reached the save of checkpoint 4"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    models = tmp_path / "run" / "outputs" / "hyperbolic" / "models"
    kept = sorted(p.name for p in models.glob("resume_checkpoint_*.pt"))
    assert kept == ["resume_checkpoint_2.pt"], sorted(os.listdir(models))
    assert torch.load(models / kept[0], weights_only=True)["trainer"]["iteration"] == 2
    assert any(p.name.startswith(".resume_checkpoint_4.pt.") for p in models.iterdir()), "the half-written file"

    resumed = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *cli(tmp_path / "run", "--resume", "true")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert not any(p.name.endswith(".tmp.pt") for p in models.iterdir()), "the half-written file was cleaned up"
    expected, got = final_weights(tmp_path / "reference"), final_weights(tmp_path / "run")
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), "resumed weights differ from the uninterrupted run"


def test_resume_with_more_epochs_continues_on_the_longer_schedule(tmp_path):
    """``--max_epochs`` may grow on resume: the cosine schedule the config builds (T_max = epochs x iterations) is
    kept and the checkpoint only says where the run is in it. Loading the old T_max would restart the cosine's
    next period, raising the learning rate back to its base value."""

    def run(max_epochs, resume):
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(net.parameters(), lr=1.0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs * 4)
        lrs = []

        def step(engine, batch):
            opt.zero_grad()
            (net(batch) ** 2).mean().backward()
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])

        engine = Engine(step)
        ResumeFromLatest(tmp_path, {"model": net, "optimizer": opt, "scheduler": sched}, resume=resume).attach(engine)
        engine.run(_data(4), max_epochs=max_epochs)
        return sched, lrs

    run(2, resume=False)
    sched, lrs = run(4, resume=True)
    assert sched.T_max == 16 and sched.last_epoch == 16
    expected = [0.5 * (1 + math.cos(math.pi * i / 16)) for i in range(9, 17)]
    assert lrs == pytest.approx(expected, abs=1e-6), "continues on the 16-step cosine from step 8"


def test_best_model_is_replaced_only_by_a_better_one_after_a_resume(tmp_path):
    """The key-metric saver's best score is stored in ``model.pt`` and read back on resume: a worse first validation
    after the resume keeps the better model (MONAI's saver alone starts with an empty history)."""

    def run(scores, resume):
        net = torch.nn.Linear(2, 1)
        engine = Engine(lambda e, b: net.weight.data.fill_(float(e.state.epoch)))

        @engine.on(Events.EPOCH_COMPLETED)
        def _metric(e):
            e.state.metrics["acc"] = scores[e.state.epoch - 1]

        AtomicCheckpointSaver(
            str(tmp_path),
            {"model": net},
            save_key_metric=True,
            key_metric_name="acc",
            key_metric_filename="model.pt",
            resume_key_metric=resume,
        ).attach(engine)
        engine.run([0], max_epochs=len(scores))

    run([0.5, 0.9], resume=False)  # best: epoch 2 (weight 2.0), score 0.9
    run([0.7], resume=True)  # worse than 0.9: model.pt stays
    assert float(torch.load(tmp_path / "model.pt", weights_only=True)["weight"].flatten()[0]) == 2.0
    run([0.95], resume=True)  # better: replaced
    assert float(torch.load(tmp_path / "model.pt", weights_only=True)["weight"].flatten()[0]) == 1.0
    assert sorted(os.listdir(tmp_path)) == ["model.pt", "model.pt.score.json"], "model.pt stays the bare weights"
