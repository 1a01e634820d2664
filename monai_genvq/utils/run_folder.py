"""One run, one folder: the guard every bundle's training config runs in ``initialize``.

A training run writes into ``<output_dir>`` (checkpoints in ``<ckpt_dir>``). The guard makes sure that

* a second run into a folder in use fails at once, naming the folder, the lock file
  (``<output_dir>/.run.lock``) and the pid holding it; a lock left by a dead process of this host is
  taken over with a warning;
* a new run (``resume`` false) never mixes with a trained one: a checkpoint folder that already holds
  checkpoints (``model.pt``, ``model_final.pt``, ``resume_checkpoint_*.pt``) is refused unless the user
  says ``--resume true`` (continue) or ``--overwrite true`` (start again: the old checkpoints are removed);
  ``--resume true`` on a folder with trained models but no ``resume_checkpoint_*.pt`` is refused too (there
  is nothing to resume from; it would train from scratch over the models);
* a resume never continues a different run: the run's options are stored in ``run_settings.json`` and
  ``--resume true`` with different options (except those a resume may change, :data:`RESUME_MAY_CHANGE`)
  is refused, listing the differences;
* options have the right types (:func:`~monai_genvq.utils.errors.check_options`), and the training set
  fills at least one batch;
* a run that fails before training leaves no folders behind: everything is checked before anything is
  created, and at exit, when the run produced no checkpoint and no TensorBoard data, what it created
  (the folder, the lock, the settings, empty folders and empty TensorBoard files of handlers) is removed;
  no other file is deleted (an evaluation, which takes no lock, may write into the folder meanwhile).

Every config calls it twice: :func:`check_training_run` before anything is built (a wrong option or a
locked or trained folder fails in a second), and :func:`start_training_run` after the training data
loader is built (``@train#dataloader``; MONAI's config parser keeps the instance, so the trainer uses the
same one), which creates the folder and takes the lock. ``finalize`` calls :func:`finish_training_run`.
Under ``torchrun`` only rank 0 takes the lock and writes; every rank checks options and its data loader.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import socket
import struct
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_genvq.utils.errors import check_options
from monai_genvq.utils.fileio import write_json

__all__ = [
    "LOCK_NAME",
    "RESUME_MAY_CHANGE",
    "SETTINGS_NAME",
    "RunFolderError",
    "check_training_run",
    "finish_training_run",
    "start_training_run",
    "trained_checkpoints",
]

logger = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"
SETTINGS_NAME = "run_settings.json"
#: the checkpoints a resume continues from (``ResumeFromLatest``: ``<file_prefix>_checkpoint_<iteration>.pt``,
#: ``resume_checkpoint_<iteration>.pt`` by default)
_RESUME_CHECKPOINT = re.compile(r"^.+_checkpoint_\d+\.pt$")
#: options a resumed run may change without becoming a different run
RESUME_MAY_CHANGE = frozenset(
    {
        "max_epochs",
        "resume",
        "overwrite",
        "device",
        "progress_bar",
        "log_every",
        "val_interval",
        "checkpoint_interval",
    }
)


class RunFolderError(RuntimeError):
    """The output folder cannot be used for this run (in use, already trained, or from a different run)."""


# ----------------------------------------------------------------------------------------------- helpers


def _is_rank_zero() -> bool:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return int(os.environ.get("RANK", 0)) == 0


def trained_checkpoints(ckpt_dir: str | os.PathLike) -> list[Path]:
    """The checkpoint files (``*.pt``, not hidden) in ``ckpt_dir``, sorted; empty if there is none.

    Example:
        >>> trained_checkpoints("/no/such/folder")
        []
    """
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".pt" and not p.name.startswith(".") and p.is_file())


_TOKEN: tuple[int, str] = (-1, "")


def _process_token() -> str:
    """A random token, one per process (a forked child gets its own), that marks this process's locks.

    Pid and host name alone do not identify a process: two containers with the same host name can both
    run the training as pid 1 and would each take the other's live lock for its own.
    """
    global _TOKEN
    if _TOKEN[0] != os.getpid():
        _TOKEN = (os.getpid(), uuid.uuid4().hex)
    return _TOKEN[1]


def _read_lock(lock: Path) -> dict:
    try:
        holder = json.loads(lock.read_text())
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}  # being written by its holder, or not ours: held by an unknown process


def _holder_state(holder: Mapping) -> str:
    """``self`` (this process), ``alive``, ``dead`` (a process of this host that is gone) or ``unknown``.

    Only the lock's token says ``self``; a lock with this process's pid and host but another token (or none)
    belongs to another process (another container with the same host name and pid): it counts as alive.
    """
    if holder.get("token") == _process_token():
        return "self"
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return "unknown"
    if pid == os.getpid():
        return "alive"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:  # another user's live process
        return "alive"
    return "alive"


def _lock_error(output_dir: Path, lock: Path, holder: Mapping) -> RunFolderError:
    pid = holder.get("pid", "unknown")
    where = f" on host {holder['host']}" if holder.get("host") else ""
    since = f", started {holder['started']}" if holder.get("started") else ""
    return RunFolderError(
        f"output folder {output_dir} is in use by another run: lock file {lock} is held by pid {pid}{where}{since}. "
        f"Wait for that run to finish or choose another output folder; if no run is using it, delete {lock}."
    )


def _check_lock(output_dir: Path) -> None:
    lock = output_dir / LOCK_NAME
    if lock.exists():
        holder = _read_lock(lock)
        if _holder_state(holder) in ("alive", "unknown"):
            raise _lock_error(output_dir, lock, holder)


def _acquire_lock(output_dir: Path) -> Path:
    """Create ``<output_dir>/.run.lock`` (``O_CREAT | O_EXCL``) with this process's pid, host, token and start time."""
    lock = output_dir / LOCK_NAME
    payload = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "token": _process_token(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            holder = _read_lock(lock)
            state = _holder_state(holder)
            if state == "self":
                return lock
            if state != "dead":
                raise _lock_error(output_dir, lock, holder) from None
            logger.warning(
                f"taking over the stale lock {lock}: its holder, pid {holder.get('pid')} on this host "
                f"(started {holder.get('started', '?')}), is no longer running"
            )
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        return lock
    raise _lock_error(output_dir, lock, _read_lock(lock))


def _release_lock(output_dir: Path) -> None:
    lock = output_dir / LOCK_NAME
    if lock.exists() and _holder_state(_read_lock(lock)) == "self":
        lock.unlink(missing_ok=True)


def _settings_path(output_dir: Path, settings_file: str | os.PathLike | None) -> Path:
    return Path(settings_file) if settings_file else output_dir / SETTINGS_NAME


def _differences(stored: Mapping, current: Mapping) -> list[str]:
    missing = object()
    diffs = []
    for key in sorted(set(stored) | set(current)):
        if key in RESUME_MAY_CHANGE:
            continue
        old, new = stored.get(key, missing), current.get(key, missing)
        if old != new:
            old_s = "<not set>" if old is missing else json.dumps(old)
            new_s = "<not set>" if new is missing else json.dumps(new)
            diffs.append(f"{key}: {old_s} -> {new_s}")
    return diffs


def _jsonable(options: Mapping[str, Any]) -> dict:
    return json.loads(json.dumps(dict(options), default=str))


def _has_event_data(path: Path) -> bool:
    """True when a TensorBoard event file holds more than its header record (``file_version``)."""
    try:
        with open(path, "rb") as f:
            records = 0
            while True:
                header = f.read(12)
                if len(header) < 12:
                    return records > 1
                (length,) = struct.unpack("<Q", header[:8])
                f.seek(length + 4, os.SEEK_CUR)
                records += 1
                if records > 1:
                    return True
    except OSError:
        return True  # unreadable: keep it


# ----------------------------------------------------------------------------------------------- the guard


def check_training_run(
    output_dir: str | os.PathLike,
    ckpt_dir: str | os.PathLike,
    resume: Any = False,
    overwrite: Any = False,
    options: Mapping[str, Any] | None = None,
    kinds: Mapping[str, str] | None = None,
    settings_file: str | os.PathLike | None = None,
    device: Any = None,
) -> dict[str, Any]:
    """Check a training run before anything is built or created; creates nothing.

    In order: the options' types (``resume``/``overwrite`` included), the lock (a live holder is refused),
    then, for a new run, that ``ckpt_dir`` holds no checkpoint (unless ``overwrite``), and for a resume,
    that the stored settings match ``options`` (except :data:`RESUME_MAY_CHANGE`). On ranks other than 0
    only the options are checked.

    Args:
        output_dir: the run's output folder (lock and settings live there).
        ckpt_dir: the run's checkpoint folder.
        resume: continue the run in ``output_dir`` (``--resume true``).
        overwrite: start again in a trained ``output_dir``; its checkpoints are removed at start.
        options: the config's options (name -> value) to type-check and store as the run's settings.
        kinds: option kinds beyond :data:`~monai_genvq.utils.errors.OPTION_KINDS`.
        settings_file: where the settings are stored (default ``<output_dir>/run_settings.json``).
        device: not used; the configs pass ``@device`` so that it is resolved first: under ``torchrun``
            (``multi_gpu_train.json``, ``device`` is ``init_distributed()``) the process group then exists
            before the training data loader's ``DistributedSampler`` is built, and the rank is known.

    Returns:
        the checked options (``"true"`` -> True ...), with ``resume`` and ``overwrite``.

    Raises:
        OptionError: an option of the wrong type or range.
        RunFolderError: the folder is in use, already trained, or holds a different run.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "run"
        >>> check_training_run(out, out / "models", options={"max_epochs": 2})
        {'max_epochs': 2, 'resume': False, 'overwrite': False}
        >>> out.exists()
        False
    """
    checked = check_options({**dict(options or {}), "resume": resume, "overwrite": overwrite}, kinds)
    resume, overwrite = checked["resume"], checked["overwrite"]
    if resume and overwrite:
        raise RunFolderError("--resume true and --overwrite true exclude each other: choose one")
    if not _is_rank_zero():
        return checked
    output_dir, ckpt_dir = Path(output_dir), Path(ckpt_dir)
    _check_lock(output_dir)
    found = trained_checkpoints(ckpt_dir)
    if not resume and not overwrite and found:
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise RunFolderError(
            f"output folder {output_dir} already holds a trained run ({ckpt_dir}: {names}). "
            f"Use --resume true to continue it, or --overwrite true to start again (its checkpoints are removed)."
        )
    if resume and found and not any(_RESUME_CHECKPOINT.match(p.name) for p in found):
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise RunFolderError(
            f"--resume true: there is nothing to resume from in {ckpt_dir}: it holds trained models ({names}) but "
            f"no resume checkpoint (resume_checkpoint_*.pt), and resuming would train from scratch over them. "
            f"Use --overwrite true to start again (its checkpoints are removed), or another output folder."
        )
    stored_path = _settings_path(output_dir, settings_file)
    if resume and stored_path.is_file():
        try:
            stored = json.loads(stored_path.read_text()).get("options", {})
        except (OSError, ValueError, AttributeError) as e:
            raise RunFolderError(f"cannot read the stored settings {stored_path}: {e}") from e
        diffs = _differences(stored, _jsonable(checked))
        if diffs:
            raise RunFolderError(
                f"--resume true would continue a different run: the settings of the run in {output_dir} "
                f"({stored_path}) differ in " + "; ".join(diffs) + ". Resume with the same options, "
                "or use --overwrite true to start again, or another output folder."
            )
    return checked


@dataclass
class _Run:
    output_dir: Path
    ckpt_dir: Path
    settings: Path
    created_root: Path | None  # the topmost folder this run created (output_dir or one of its parents)
    before: dict[str, int] = field(default_factory=dict)  # paths under output_dir before the run -> mtime_ns


_RUNS: dict[Path, _Run] = {}
_ATEXIT_REGISTERED = False


def _snapshot(folder: Path) -> dict[str, int]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def _training_set_error(train_loader: Any, options: Mapping[str, Any], data_dir: Any) -> str | None:
    try:
        n_batches = len(train_loader)
    except TypeError:
        return None  # an iterable of unknown length: nothing to check
    if n_batches > 0:
        return None
    dataset = getattr(train_loader, "dataset", None)
    try:
        n_samples: Any = len(dataset) if dataset is not None else "?"
    except TypeError:
        n_samples = "?"
    batch = getattr(train_loader, "batch_size", None)
    option = next((k for k in ("batch_size", "volumes_per_batch") if k in options and options[k] == batch), None)
    batch_text = f"one batch of {batch}" + (f" (--{option} {batch})" if option else "") if batch else "one batch"
    drop = " and incomplete batches are dropped" if getattr(train_loader, "drop_last", False) else ""
    data = f"--dataset_dir {data_dir}" if data_dir else "the default synthetic dataset (--dataset_dir not set)"
    return (
        f"the training set has {n_samples} sample(s), fewer than {batch_text}{drop}: no training iteration would run. "
        f"Data: {data}. Add training data or lower the batch size."
    )


def start_training_run(
    output_dir: str | os.PathLike,
    ckpt_dir: str | os.PathLike,
    resume: Any = False,
    overwrite: Any = False,
    options: Mapping[str, Any] | None = None,
    kinds: Mapping[str, str] | None = None,
    settings_file: str | os.PathLike | None = None,
    train_loader: Any = None,
    data_dir: str | os.PathLike | None = None,
) -> Path:
    """Check the run again, check the training data loader, then create the folder, lock it and store the settings.

    Runs :func:`check_training_run`, refuses a ``train_loader`` with no batch (a training set smaller
    than one batch with ``drop_last``, or empty), and only then (rank 0 only) creates ``output_dir``,
    takes ``<output_dir>/.run.lock``, removes the old checkpoints when ``overwrite`` and writes the
    settings. The lock is released by :func:`finish_training_run` or at process exit; at exit a run that
    produced no checkpoint and no TensorBoard data removes what it created.

    Args:
        output_dir, ckpt_dir, resume, overwrite, options, kinds, settings_file: as :func:`check_training_run`.
        train_loader: the training data loader (``@train#dataloader``), or None to skip its check.
        data_dir: the data folder option (``@dataset_dir``), named in the message of a too-small training set.

    Returns:
        ``output_dir``.

    Raises:
        OptionError, RunFolderError: as :func:`check_training_run`.
        ValueError: the training data loader yields no batch.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "run"
        >>> _ = start_training_run(out, out / "models", options={"max_epochs": 2}, train_loader=[[0.0]])
        >>> sorted(p.name for p in out.iterdir())
        ['.run.lock', 'run_settings.json']
        >>> finish_training_run(out)
        >>> sorted(p.name for p in out.iterdir())
        ['run_settings.json']
    """
    checked = check_training_run(output_dir, ckpt_dir, resume, overwrite, options, kinds, settings_file)
    if train_loader is not None:
        problem = _training_set_error(train_loader, checked, data_dir)
        if problem:
            raise ValueError(problem)
    output_dir, ckpt_dir = Path(output_dir), Path(ckpt_dir)
    if not _is_rank_zero():
        return output_dir
    key = output_dir.resolve()
    # a run this process started earlier in this folder and did not finish (a previous stage in one process)
    # keeps its lock; this run's record (settings, what existed before) replaces it
    created_root = None
    for folder in [output_dir, *output_dir.parents]:
        if folder.exists():
            break
        created_root = folder
    run = _Run(output_dir, ckpt_dir, _settings_path(output_dir, settings_file), created_root, _snapshot(output_dir))
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        _acquire_lock(output_dir)
    except RunFolderError:  # another run took the folder since the check: leave no empty folder of ours behind
        _remove_empty_created_folders(run)
        raise
    _RUNS[key] = run
    _register_atexit()
    if checked["overwrite"]:
        for old in trained_checkpoints(ckpt_dir) + sorted(ckpt_dir.glob(".*.pt")):
            old.unlink(missing_ok=True)
        if any(trained_checkpoints(ckpt_dir)):
            raise RunFolderError(f"could not remove the old checkpoints in {ckpt_dir}")
        logger.info(f"--overwrite true: removed the previous checkpoints of {ckpt_dir}")
    settings = {"options": _jsonable(checked), "output_dir": str(output_dir), "ckpt_dir": str(ckpt_dir)}
    write_json(run.settings, settings)
    return output_dir


def _produced_results(run: _Run) -> bool:
    """Whether the run wrote anything worth keeping: a checkpoint or TensorBoard data."""
    for path in run.output_dir.rglob("*"):
        rel = str(path.relative_to(run.output_dir))
        if not path.is_file():
            continue
        if path.suffix == ".pt" and not path.name.startswith("."):
            if rel not in run.before or path.stat().st_mtime_ns != run.before[rel]:
                return True
        elif path.name.startswith("events.out.tfevents") and rel not in run.before and _has_event_data(path):
            return True
    return False


def _remove_created(run: _Run) -> None:
    """Remove what this run itself created under ``output_dir``, then ``output_dir`` and its parents if empty.

    Only these files go, and only when they did not exist before the run: the lock (if still there and
    this process's), the run's settings file and TensorBoard event files without data (written by the
    handlers when instantiated). Then the folders created during the run that are now empty, deepest
    first. Any other file stays, whoever wrote it: another process (an evaluation, which takes no lock)
    may write under ``output_dir`` meanwhile.
    """

    def new(path: Path) -> bool:
        try:
            return str(path.relative_to(run.output_dir)) not in run.before
        except ValueError:  # a settings file outside output_dir: left alone
            return False

    _release_lock(run.output_dir)
    if run.settings.is_file() and not run.settings.is_symlink() and new(run.settings):
        run.settings.unlink(missing_ok=True)
    paths = sorted(run.output_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True)
    for path in paths:
        if not new(path) or path.is_symlink():
            continue
        if path.is_file() and path.name.startswith("events.out.tfevents") and not _has_event_data(path):
            path.unlink(missing_ok=True)
    for path in paths:  # deepest first: a folder emptied above goes before its parent is tried
        if new(path) and path.is_dir() and not path.is_symlink():
            try:
                path.rmdir()
            except OSError:  # not empty: it holds someone's files
                pass
    _remove_empty_created_folders(run)


def _remove_empty_created_folders(run: _Run) -> None:
    """Remove ``output_dir`` and the parents this run created, as long as they are empty."""
    if run.created_root is None:
        return
    folder = run.output_dir
    while True:
        try:
            folder.rmdir()
        except OSError:
            return
        if folder == run.created_root:
            return
        folder = folder.parent


def finish_training_run(output_dir: str | os.PathLike | None = None, completed: bool = True) -> None:
    """Release the lock of the run in ``output_dir`` (``finalize`` of every training config; also at exit).

    Args:
        output_dir: the folder given to :func:`start_training_run`; None: every run this process started.
        completed: False at exit of a run that did not reach ``finalize``: when it produced no checkpoint
            and no TensorBoard data, what it created under ``output_dir`` (its lock and settings, TensorBoard
            files without data, then the folders it created, ``output_dir`` and its parents included, once
            empty) is removed; other files stay.

    Example:
        >>> finish_training_run("/no/such/run")  # nothing started there: nothing to do
    """
    if output_dir is None:
        for key in list(_RUNS):
            finish_training_run(key, completed)
        return
    run = _RUNS.pop(Path(output_dir).resolve(), None)
    if run is None:
        return
    _release_lock(run.output_dir)
    if not completed and run.output_dir.is_dir() and not _produced_results(run):
        _remove_created(run)


def _finish_all_at_exit() -> None:
    for key in list(_RUNS):
        try:
            finish_training_run(key, completed=False)
        except Exception:  # never mask the run's own error at exit
            pass


def _register_atexit() -> None:
    global _ATEXIT_REGISTERED
    if not _ATEXIT_REGISTERED:
        atexit.register(_finish_all_at_exit)
        _ATEXIT_REGISTERED = True
