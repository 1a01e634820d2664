"""The training run guard (``monai_genvq.utils.run_folder`` / ``errors``): one run, one folder, typed options,
no empty folders after an early failure, the root cause as the last line, outputs with the user's umask.

Unit tests in this process (and one real second process for the lock); ``tests/test_bad_inputs_cli.py``
runs the same checks through the real bundle CLI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

from monai_genvq.utils import (
    OPTION_KINDS,
    OptionError,
    RunFolderError,
    atomic_path,
    check_options,
    check_training_run,
    finish_training_run,
    start_training_run,
    write_json,
)
from monai_genvq.utils import errors as errors_mod

BUNDLES = sorted(p for p in (REPO / "bundles").iterdir() if (p / "configs" / "train.json").is_file())
OPTS = {"max_epochs": 2, "batch_size": 4, "latent_dim": 8, "seed": 0}


@pytest.fixture(autouse=True)
def _no_leftover_runs():
    yield
    finish_training_run()  # release every lock a test left (as finalize does)


def _paths(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------------------------- lock


HOLDER = """
import sys, time
from monai_genvq.utils import start_training_run
start_training_run(sys.argv[1], sys.argv[1] + "/models", options={"max_epochs": 1})
print("locked", flush=True)
time.sleep(120)
"""


def test_second_process_is_refused_then_a_dead_holders_lock_is_taken_over(tmp_path, caplog):
    out = tmp_path / "outputs" / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, cwd=REPO, env=os.environ.copy()
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock = out / ".run.lock"
        held = json.loads(lock.read_text())
        assert held["pid"] == holder.pid and held["host"] == socket.gethostname() and held["started"]
        for attempt in (check_training_run, start_training_run):  # the early check and the locking start
            with pytest.raises(RunFolderError) as err:
                attempt(out, out / "models", options={"max_epochs": 1})
            assert str(out) in str(err.value) and str(lock) in str(err.value) and f"pid {holder.pid}" in str(err.value)
        assert json.loads(lock.read_text())["pid"] == holder.pid  # a refused run leaves the lock alone
        holder.send_signal(signal.SIGKILL)  # killed: no atexit, the lock stays behind
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert json.loads(lock.read_text())["pid"] == holder.pid
    with caplog.at_level("WARNING", logger="monai_genvq.utils.run_folder"):
        start_training_run(out, out / "models", options={"max_epochs": 1})
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert any("stale lock" in r.getMessage() and str(holder.pid) in r.getMessage() for r in caplog.records)
    finish_training_run(out)
    assert not lock.exists()  # released when training completes


def test_lock_of_another_host_or_unreadable_is_never_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".run.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "x"}))
    with pytest.raises(RunFolderError, match="pid 1 on host elsewhere.example"):
        start_training_run(out, out / "models", options={})
    (out / ".run.lock").write_text("")  # being written by its holder
    with pytest.raises(RunFolderError, match="in use by another run"):
        start_training_run(out, out / "models", options={})


def test_a_lock_with_my_pid_and_host_but_another_token_is_not_mine(tmp_path):
    """Two containers with the same host name both run as pid 1: pid and host alone would make each
    take the other's live lock for its own. Only the random token of the process that wrote it counts."""
    out = tmp_path / "run"
    out.mkdir()
    lock = out / ".run.lock"
    other = {"pid": os.getpid(), "host": socket.gethostname(), "token": "0" * 32, "started": "x"}
    lock.write_text(json.dumps(other))
    for attempt in (check_training_run, start_training_run):
        with pytest.raises(RunFolderError, match=f"in use by another run.*pid {os.getpid()}"):
            attempt(out, out / "models", options={})
    finish_training_run(out)
    assert json.loads(lock.read_text()) == other  # never released by a process it does not belong to
    lock.unlink()
    start_training_run(out, out / "models", options={})
    mine = json.loads(lock.read_text())
    assert len(mine["token"]) == 32 and mine["token"] != other["token"] and mine["pid"] == os.getpid()
    start_training_run(out, out / "models", options={})  # this process's own lock: a later stage keeps it
    assert json.loads(lock.read_text()) == mine
    finish_training_run(out)
    assert not lock.exists()


# ----------------------------------------------------------------------------------------------- overwrite / resume


@pytest.mark.parametrize("name", ["model.pt", "model_final.pt", "resume_checkpoint_6.pt"])
def test_new_run_into_a_trained_folder_is_refused_naming_both_options(tmp_path, name):
    out = tmp_path / "run"
    (out / "models").mkdir(parents=True)
    (out / "models" / name).write_bytes(b"weights")
    before = _paths(out)
    with pytest.raises(RunFolderError) as err:
        check_training_run(out, out / "models", options=OPTS)
    msg = str(err.value)
    assert str(out) in msg and name in msg and "--resume true" in msg and "--overwrite true" in msg
    with pytest.raises(RunFolderError):
        start_training_run(out, out / "models", options=OPTS, train_loader=[[0]])
    assert _paths(out) == before  # refused before anything was created or removed
    with pytest.raises(RunFolderError, match="exclude each other"):
        check_training_run(out, out / "models", resume=True, overwrite=True, options=OPTS)


@pytest.mark.parametrize("names", [["model.pt"], ["model_final.pt"], ["model.pt", "model_final.pt", "prior.pt"]])
def test_resume_with_trained_models_but_no_resume_checkpoint_is_refused(tmp_path, names):
    """Nothing to resume from: ``ResumeFromLatest`` would only warn and train from scratch over the models."""
    out = tmp_path / "run"
    models = out / "models"
    models.mkdir(parents=True)
    for name in names:
        (models / name).write_bytes(b"weights")
    before = _paths(out)
    for attempt in (check_training_run, start_training_run):
        with pytest.raises(RunFolderError) as err:
            attempt(out, models, resume=True, options=OPTS)
        msg = str(err.value)
        assert "nothing to resume from" in msg and str(models) in msg and "--overwrite true" in msg
        assert all(name in msg for name in names)
    assert _paths(out) == before
    (models / "resume_checkpoint_4.pt").write_bytes(b"state")  # with a resume checkpoint: continued
    check_training_run(out, models, resume=True, options=OPTS)


def test_resume_into_a_new_or_empty_folder_starts_the_run(tmp_path):
    out = tmp_path / "run"
    check_training_run(out, out / "models", resume=True, options=OPTS)  # new folder: trains (with a warning)
    (out / "models").mkdir(parents=True)
    (out / "models" / "notes.json").write_text("{}")
    start_training_run(out, out / "models", resume="true", options=OPTS)
    assert (out / ".run.lock").exists()


def test_overwrite_removes_the_old_checkpoints_at_start(tmp_path):
    out = tmp_path / "run"
    models = out / "models"
    models.mkdir(parents=True)
    for name in ("model.pt", "model_final.pt", "resume_checkpoint_3.pt", "resume_checkpoint_6.pt", ".x.1.ab.tmp.pt"):
        (models / name).write_bytes(b"old run")
    (models / "streamline_normalization.json").write_text("{}")
    start_training_run(out, models, overwrite="true", options=OPTS)  # a CLI 'true' string is accepted
    assert sorted(os.listdir(models)) == ["streamline_normalization.json"]
    stored = json.loads((out / "run_settings.json").read_text())["options"]
    assert stored == {**OPTS, "resume": False, "overwrite": True}


def test_resume_refuses_a_run_with_different_settings(tmp_path):
    out = tmp_path / "run"
    start_training_run(out, out / "models", options=OPTS)
    finish_training_run(out)
    (out / "models").mkdir()
    (out / "models" / "resume_checkpoint_2.pt").write_bytes(b"state")
    changed = {**OPTS, "latent_dim": 16, "max_epochs": 10}
    with pytest.raises(RunFolderError) as err:
        check_training_run(out, out / "models", resume=True, options=changed)
    msg = str(err.value)
    assert "latent_dim: 8 -> 16" in msg and "max_epochs" not in msg and str(out / "run_settings.json") in msg
    with pytest.raises(RunFolderError, match=r"seed: 0 -> <not set>"):
        check_training_run(out, out / "models", resume=True, options={k: v for k, v in OPTS.items() if k != "seed"})
    # a longer run with another checkpoint/logging interval is the same run
    more = {**OPTS, "max_epochs": 10, "checkpoint_interval": 5, "log_every": 1, "val_interval": 3}
    start_training_run(out, out / "models", resume=True, options=more)
    assert json.loads((out / "run_settings.json").read_text())["options"]["max_epochs"] == 10
    assert (out / "models" / "resume_checkpoint_2.pt").exists()


# ----------------------------------------------------------------------------------------------- option types


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("max_epochs", "abc", "option --max_epochs must be an integer, got 'abc' (str)"),
        ("max_epochs", 2.5, "option --max_epochs must be an integer, got 2.5 (float)"),
        ("max_epochs", 0, "option --max_epochs must be positive, got 0"),
        ("batch_size", True, "option --batch_size must be an integer, got True (bool)"),
        ("resume", "yes", "option --resume must be true or false, got 'yes' (str)"),
        ("resume", 1, "option --resume must be true or false, got 1 (int)"),
        ("learning_rate", "fast", "option --learning_rate must be a number, got 'fast' (str)"),
        ("learning_rate", float("nan"), "option --learning_rate must be a number"),
        ("val_fraction", 1.5, "option --val_fraction must be between 0 and 1, got 1.5"),
        ("seed", -1, "option --seed must be zero or positive, got -1"),
        ("epoch_length", "x", "option --epoch_length must be an integer"),
        ("variant", [3], "option --variant must be a string, got [3] (list)"),
    ],
)
def test_options_of_the_wrong_type_are_refused_by_name(tmp_path, name, value, message):
    kwargs = {name: value} if name in ("resume", "overwrite") else {"options": {**OPTS, name: value}}
    with pytest.raises(OptionError) as err:
        check_training_run(tmp_path / "run", tmp_path / "run" / "models", **kwargs)
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()


def test_options_of_the_right_type_pass():
    good = {"max_epochs": 3.0, "resume": "false", "overwrite": True, "epoch_length": None, "learning_rate": 1}
    assert check_options(good) == {
        "max_epochs": 3,
        "resume": False,
        "overwrite": True,
        "epoch_length": None,
        "learning_rate": 1,
    }
    with pytest.raises(KeyError, match="no_such_option"):
        check_options({"no_such_option": 1})


def _train_configs() -> list[Path]:
    return [p for b in BUNDLES for p in (b / "configs" / "train.json", b / "configs" / "prior.json") if p.is_file()]


@pytest.mark.parametrize("config", _train_configs(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_training_config_runs_the_guard_in_order(config):
    cfg = json.loads(config.read_text())
    init = cfg["initialize"]
    assert init[0] == "$monai_genvq.utils.install_excepthook()"
    names = [
        next((n for n in ("check_training_run", "set_determinism", "start_training_run") if n in e), e) for e in init
    ]
    assert names[1:4] == ["check_training_run", "set_determinism", "start_training_run"], init
    assert "train_loader=@train#dataloader" in init[3] and "@run_options" in init[1] and "@run_options" in init[3]
    assert all(k in OPTION_KINDS for k in cfg["run_options"]), set(cfg["run_options"]) - set(OPTION_KINDS)
    assert all(v == f"@{k}" for k, v in cfg["run_options"].items())
    if config.name == "train.json":
        assert cfg["overwrite"] is False and cfg["finalize"][0] == "$monai_genvq.utils.finish_training_run()"
        mgpu = json.loads((config.parent / "multi_gpu_train.json").read_text())
        assert "$monai_genvq.utils.finish_training_run()" in mgpu["finalize"]
        for value in cfg["run_options"]:  # every literal default passes its own check
            default = cfg[value]
            if not (isinstance(default, str) and default.startswith(("$", "@"))):  # expressions, references
                check_options({value: default})


def test_every_other_config_with_initialize_installs_the_hook_first():
    for bundle in BUNDLES:
        for path in (bundle / "configs").glob("*.json"):
            cfg = json.loads(path.read_text())
            if isinstance(cfg, dict) and "initialize" in cfg:
                assert cfg["initialize"][0] == "$monai_genvq.utils.install_excepthook()", path
    # evaluation stacked on train.json must not run the training guard
    for bundle in BUNDLES:
        evaluate = bundle / "configs" / "evaluate.json"
        if evaluate.is_file():
            assert not any("training_run" in e for e in json.loads(evaluate.read_text())["initialize"]), evaluate


# ----------------------------------------------------------------------------------------------- training set


def test_training_set_smaller_than_one_batch_is_refused_before_the_folder_exists(tmp_path):
    from monai.data import DataLoader

    out = tmp_path / "outputs" / "run"
    loader = DataLoader(list(range(3)), batch_size=4, drop_last=True)
    with pytest.raises(ValueError) as err:
        start_training_run(out, out / "models", options={"batch_size": 4}, train_loader=loader, data_dir="/data/acdc")
    msg = str(err.value)
    assert "3 sample(s)" in msg and "one batch of 4 (--batch_size 4)" in msg and "--dataset_dir /data/acdc" in msg
    assert not (tmp_path / "outputs").exists()
    empty = DataLoader([], batch_size=1)
    with pytest.raises(ValueError, match="0 sample"):
        start_training_run(out, out / "models", options={}, train_loader=empty)
    start_training_run(
        out, out / "models", options={}, train_loader=DataLoader(list(range(4)), batch_size=4, drop_last=True)
    )


# ----------------------------------------------------------------------------------------------- no empty folders


def test_a_run_that_fails_before_training_leaves_nothing_behind(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path / "bundle"
    out = root / "outputs" / "run"
    start_training_run(out, out / "models", options=OPTS)
    # what the trainer's handlers create when instantiated: an empty checkpoint folder, a TensorBoard file
    (out / "models").mkdir()
    SummaryWriter(str(out / "logs")).close()
    assert (out / ".run.lock").exists() and list((out / "logs").iterdir())
    finish_training_run(out, completed=False)  # as at exit, when finalize was not reached
    assert not (root / "outputs").exists() and root.exists() is False


def test_a_run_that_trained_keeps_its_folder_and_a_failed_one_keeps_older_files(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    out = tmp_path / "outputs" / "run"
    start_training_run(out, out / "models", options=OPTS)
    with SummaryWriter(str(out / "logs")) as writer:
        writer.add_scalar("train_loss", 1.0, 1)  # it trained at least one iteration
    finish_training_run(out, completed=False)
    assert not (out / ".run.lock").exists() and (out / "run_settings.json").exists() and (out / "logs").exists()

    old = _paths(out)  # a later run into this folder that fails early removes only what it created
    start_training_run(out, out / "models", resume=True, options=OPTS)
    (out / "prior_x" / "logs").mkdir(parents=True)
    SummaryWriter(str(out / "logs")).close()
    finish_training_run(out, completed=False)
    assert _paths(out) == old

    start_training_run(out, out / "models", resume=True, options=OPTS)  # a checkpoint was written: kept
    (out / "models").mkdir()
    torch.save({"w": 1}, out / "models" / "resume_checkpoint_1.pt")
    finish_training_run(out, completed=False)
    assert (out / "models" / "resume_checkpoint_1.pt").exists()


def test_cleanup_at_exit_keeps_the_files_another_process_wrote_meanwhile(tmp_path):
    """An evaluation takes no lock: its report, written into the folder while a training run failed, stays;
    the run's own lock, settings, empty TensorBoard file and empty folders go."""
    from torch.utils.tensorboard import SummaryWriter

    out = tmp_path / "outputs" / "run"
    start_training_run(out, out / "models", options=OPTS)
    (out / "models").mkdir()
    SummaryWriter(str(out / "logs")).close()
    (out / "eval" / "per_case").mkdir(parents=True)  # a concurrent evaluation run
    (out / "eval" / "metrics.json").write_text('{"dice": 0.9}')
    (out / "eval" / "per_case" / "case1.csv").write_text("dice\n0.9\n")
    (out / "notes.txt").write_text("another process's file")
    finish_training_run(out, completed=False)
    assert _paths(out) == ["eval", "eval/metrics.json", "eval/per_case", "eval/per_case/case1.csv", "notes.txt"]


# ----------------------------------------------------------------------------------------------- the last line


def test_excepthook_prints_the_root_cause_last_and_installs_once(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(sys, "excepthook", lambda *a: calls.append(a))
    monkeypatch.setattr(errors_mod, "_PREVIOUS_HOOK", None)
    errors_mod.install_excepthook()
    errors_mod.install_excepthook()
    assert sys.excepthook is errors_mod._genvq_excepthook
    try:
        try:
            try:
                raise ValueError("/data/acdc/patient001/Info.cfg: ED is 1.5, must be an integer frame index")
            except ValueError as e:
                raise RuntimeError("Failed to instantiate {'_target_': 'CacheDataset'}") from e
        except RuntimeError:
            raise RuntimeError("Failed to evaluate ConfigExpression '$@train#dataloader'")  # noqa: B904 (implicit __context__)
    except RuntimeError as e:
        sys.excepthook(type(e), e, e.__traceback__)
    assert len(calls) == 1  # the previous hook (the usual traceback) ran once, before
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "monai-genvq error: ValueError: /data/acdc/patient001/Info.cfg: ED is 1.5, must be an integer frame index"
    )


# ----------------------------------------------------------------------------------------------- umask


def test_outputs_are_written_with_the_users_umask(tmp_path):
    import nibabel as nib
    import numpy as np

    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "metrics.json", {"dice": 1.0})
        with atomic_path(tmp_path / "seg.nii.gz") as tmp:
            nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), str(tmp))
        with atomic_path(tmp_path / "model.pt") as tmp:
            torch.save({"w": 1}, tmp)
        start_training_run(tmp_path / "run", tmp_path / "run" / "models", options=OPTS)
        files = ["metrics.json", "seg.nii.gz", "model.pt", "run/run_settings.json", "run/.run.lock"]
        modes = {f: oct((tmp_path / f).stat().st_mode & 0o777) for f in files}
    finally:
        os.umask(previous)
    assert set(modes.values()) == {oct(0o644)}, modes


def test_checkpoints_are_written_with_the_users_umask(tmp_path):
    """Ignite's ``DiskSaver`` (behind MONAI's ``CheckpointSaver``) writes through ``tempfile``: 0600 files. Every
    bundle saves through ``AtomicCheckpointSaver`` / ``ResumeFromLatest`` instead."""
    from ignite.engine import Engine

    from monai_genvq.handlers import AtomicCheckpointSaver

    for config in (REPO / "bundles").glob("*/configs/*.json"):
        text = config.read_text()
        assert '"_target_": "CheckpointSaver"' not in text and "ModelCheckpoint" not in text, config
    previous = os.umask(0o022)
    try:
        engine = Engine(lambda e, b: None)
        net = torch.nn.Linear(2, 1)
        AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_final=True, final_filename="model.pt").attach(engine)
        engine.run([0], max_epochs=1)
        mode = (tmp_path / "model.pt").stat().st_mode & 0o777
    finally:
        os.umask(previous)
    assert mode == 0o644, oct(mode)
