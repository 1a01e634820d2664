"""Checkpoints and resume: a valid checkpoint is always on disk, files get the umask, loads are weights-only."""

from __future__ import annotations

import io
import logging
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
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    torch.testing.assert_close(saved["weight"], net.weight.detach() - 1.0)  # the epoch-1 weights

    engine = Engine(lambda e, b: net.weight.data.add_(1.0))
    engine.add_event_handler(Events.EPOCH_COMPLETED, _metric)
    saver.attach(engine)
    engine.run([0], max_epochs=3)  # the pending removal of model.pt must not delete the file just written
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
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
