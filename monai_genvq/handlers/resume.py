"""Resumable training: periodic atomic checkpoints of the whole training state, and resuming from the latest.

Every bundle's training config attaches one :class:`ResumeFromLatest` to its trainer. It writes
``<ckpt_dir>/resume_checkpoint_<iteration>.pt`` (networks, optimisers, schedulers and the trainer's
own state: iteration, epoch, epoch length) every ``save_interval`` iterations and when training
completes, and keeps the last ``n_saved`` (2) of them. With ``resume=True`` it loads the newest such
file when training starts (``torch.load(weights_only=True)``: a planted file whose unpickling would
run code is refused), so the run continues at the saved iteration and ends at the same final
iteration as an uninterrupted run.

The resume is exact: the checkpoint also holds the random states (torch, CUDA, numpy, python and
every random transform of the training data) and the position in the data order (the random states
when the current pass over the data loader began, and how many batches it has drawn). A resumed run
replays the interrupted pass's order, skips the batches already trained on, and continues with the
random states of the moment of the save, so it ends with the same weights and logs the same losses
as an uninterrupted run (bit for bit on CPU with one thread; with several threads or on a GPU,
floating-point reductions may be ordered differently, to within float tolerance). A save due at the
last iteration of an epoch is written after that epoch's end-of-epoch handlers (validation, LR
schedulers), so a resumed run neither repeats nor skips them. On resume, TensorBoard is told to hide
the steps the interrupted run logged after the checkpoint (a ``SessionLog.START`` purge event in each
attached ``TensorBoardStatsHandler``'s file), so no training step is shown twice.

:class:`AtomicCheckpointSaver` is MONAI's :class:`~monai.handlers.CheckpointSaver` writing its
files (``model.pt``, ``model_final.pt``, interval checkpoints) the same way.

There is never a moment without a valid checkpoint on disk: Ignite's ``Checkpoint`` asks its saver
to delete the outdated file *before* it writes the new one (and MONAI's fixed-name ``model.pt`` is
deleted, then rewritten). Both handlers therefore save through :class:`_WriteFirstDiskSaver`, which
defers those deletions until the new file is complete: it is written to a temporary sibling
(:func:`~monai_genvq.utils.fileio.atomic_path`, created with the process umask) and moved over the
target with ``os.replace``; only then are the outdated files removed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointSaver

from monai_genvq.engines.distributed import is_rank_zero
from monai_genvq.utils.fileio import atomic_path, write_json
from monai_genvq.utils.random_state import (
    capture_random_state,
    check_random_state,
    find_random_generators,
    restore_random_state,
)

__all__ = ["AtomicCheckpointSaver", "CorruptCheckpointError", "ResumeFromLatest", "latest_checkpoint"]

logger = logging.getLogger(__name__)


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read or does not hold the expected objects."""


class _WriteFirstDiskSaver(DiskSaver):
    """Ignite ``DiskSaver`` that writes the new file atomically *before* deleting the outdated ones.

    ``remove`` (called by ``Checkpoint`` before it saves) only records the file; the next ``__call__``
    writes the new checkpoint to a temporary sibling (created by ``torch.save`` itself, so it gets the
    process umask, unlike Ignite's ``tempfile``-based 0600 files), moves it over the target with
    ``os.replace``, and then deletes the recorded files (except the one just written, when the name
    is fixed). If the write fails, the recorded files are kept: the previous checkpoints stay valid.

    Args:
        dirname: folder of the checkpoints.
        filename: fixed file name for every save (MONAI's ``model.pt`` / ``model_final.pt``), or None
            to use the name Ignite chooses.
        save_on_rank: the rank that writes.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None, save_on_rank: int = 0) -> None:
        super().__init__(dirname, atomic=True, create_dir=True, require_empty=False, save_on_rank=save_on_rank)
        self.filename = filename
        self._pending_removal: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        filename = self.filename or filename
        pending, self._pending_removal = self._pending_removal, []
        if idist.get_rank() != self.save_on_rank:
            return
        with atomic_path(self.dirname / filename) as tmp:
            torch.save(checkpoint, tmp, **self.kwargs)
        for old in dict.fromkeys(pending):
            if old != filename:
                (self.dirname / old).unlink(missing_ok=True)

    def remove(self, filename: str) -> None:
        self._pending_removal.append(self.filename or filename)


class _DataOrderTracker:
    """Stands in for the trainer's data loader to record, and on resume replay, where the run is in the data order.

    Each ``iter()`` records the random states at the moment the pass begins (the sampler draws its
    permutation, and random transforms their parameters, from them) and counts the batches drawn.
    After :meth:`resume_from`, the next ``iter()`` restores the recorded states, draws and discards
    the batches the interrupted run had already trained on, and then restores the states of the
    moment of the save, so the following batches and training steps match the interrupted run's.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.generators = find_random_generators(
            getattr(loader, "dataset", None), getattr(loader, "sampler", None), getattr(loader, "generator", None)
        )
        self.state_at_pass_start: dict | None = None
        self.drawn = 0
        self._pending: tuple[dict, int, dict] | None = None

    def __len__(self) -> int:
        return len(self.loader)

    def capture(self) -> dict:
        return capture_random_state(self.generators)

    def restore(self, state: dict) -> None:
        restore_random_state(state, self.generators)

    def resume_from(self, state_at_pass_start: dict, drawn: int, state_at_save: dict) -> None:
        for state in (state_at_pass_start, state_at_save):
            check_random_state(state, self.generators)
        self._pending = (state_at_pass_start, int(drawn), state_at_save)

    def __iter__(self) -> Iterator:
        pending, self._pending = self._pending, None
        if pending is None:
            self.state_at_pass_start, self.drawn = self.capture(), 0
            return self._count(iter(self.loader))
        at_start, drawn, at_save = pending
        length = len(self.loader) if hasattr(self.loader, "__len__") else None
        if length is not None and drawn >= length:  # the pass had ended: the next one starts from the saved states
            self.restore(at_save)
            self.state_at_pass_start, self.drawn = self.capture(), 0
            return self._count(iter(self.loader))
        self.restore(at_start)
        iterator = iter(self.loader)
        for _ in range(drawn):
            next(iterator)
        self.state_at_pass_start, self.drawn = at_start, drawn
        self.restore(at_save)
        return self._count(iterator)

    def _count(self, iterator: Iterator) -> Iterator:
        for batch in iterator:
            self.drawn += 1
            yield batch


def _tensorboard_writers(engine: Engine) -> list:
    """The ``SummaryWriter`` of every MONAI ``TensorBoardStatsHandler`` attached to ``engine``."""
    from monai.handlers import TensorBoardStatsHandler

    writers = []
    for handlers in engine._event_handlers.values():
        for func, *_ in handlers:
            owner = getattr(func, "__self__", None)
            if isinstance(owner, TensorBoardStatsHandler) and getattr(owner, "_writer", None) is not None:
                if all(owner._writer is not w for w in writers):
                    writers.append(owner._writer)
    return writers


def _purge_tensorboard_after(engine: Engine, step: int) -> None:
    """Make TensorBoard hide the events with ``global_step >= step`` logged before now (by the interrupted run)."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    except ImportError:  # no tensorboard: nothing was logged there
        return
    for writer in _tensorboard_writers(engine):
        writer._get_file_writer().add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))
        writer.flush()


_SCHEDULE_PROGRESS = frozenset(
    {"last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial", "base_lrs", "verbose"}
)


def _schedule_shapes(objects: Mapping[str, Any]) -> list[tuple[Any, dict]]:
    """The LR schedulers among ``objects`` with their configured shape (``T_max``, ``step_size``, ``gamma`` ...):
    every entry of their ``state_dict`` except the progress through the schedule. A resume with a larger
    ``--max_epochs`` then continues on the longer schedule the config builds (as an uninterrupted run with
    that ``max_epochs`` would), instead of the interrupted run's shorter one."""
    shapes = []
    for obj in objects.values():
        if isinstance(obj, torch.optim.lr_scheduler.LRScheduler):
            shape = {k: v for k, v in obj.state_dict().items() if k not in _SCHEDULE_PROGRESS}
            shapes.append((obj, shape))
    return shapes


def _reshape_schedule(scheduler: Any, shape: dict) -> None:
    """Give a loaded scheduler the configured ``shape``; when it differs from the loaded one (a resume with a larger
    ``--max_epochs``), set the learning rates to the new schedule's value at the current step: chainable schedulers
    (cosine) update the previous rate recursively, so the old schedule's end value would otherwise carry on."""
    loaded = {k: scheduler.__dict__.get(k) for k in shape}
    if loaded == shape:
        return
    scheduler.__dict__.update(shape)
    if hasattr(scheduler, "_get_closed_form_lr"):  # torch's closed form of the schedule at ``last_epoch``
        for group, lr in zip(scheduler.optimizer.param_groups, scheduler._get_closed_form_lr()):
            group["lr"] = lr
        scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
    else:
        logger.warning(f"{type(scheduler).__name__}: schedule changed on resume; its learning rate continues as saved")


class _RandomStateRecord:
    """The random states and data-order position saved with a resume checkpoint (under ``"random_state"``)."""

    def __init__(self, record: dict | None = None) -> None:
        self.record = record or {}

    def state_dict(self) -> dict:
        return self.record

    def load_state_dict(self, state_dict: dict) -> None:
        self.record = dict(state_dict)


def latest_checkpoint(ckpt_dir: str | os.PathLike, prefix: str = "resume") -> Path | None:
    """The ``<prefix>_checkpoint_<iteration>.pt`` file with the highest iteration in ``ckpt_dir`` (None if none).

    Example:
        >>> latest_checkpoint("/nonexistent") is None
        True
    """
    pattern = re.compile(rf"^{re.escape(prefix)}_checkpoint_(\d+)\.pt$")
    found = []
    if os.path.isdir(ckpt_dir):
        for name in os.listdir(ckpt_dir):
            match = pattern.match(name)
            if match:
                found.append((int(match.group(1)), Path(ckpt_dir) / name))
    return max(found)[1] if found else None


class ResumeFromLatest:
    """Save the full training state periodically and (optionally) resume from the newest save.

    A no-op for loading when ``resume`` is False or ``ckpt_dir`` holds no checkpoint yet (a fresh
    run); a checkpoint that cannot be loaded raises :class:`CorruptCheckpointError` naming the
    file. The trainer itself is added to the saved/loaded objects under ``"trainer"`` when the
    handler is attached (so configs need not reference the trainer, which would be circular).
    The trainer's ``max_epochs`` is kept from the config, so a resumed run can train longer than
    the interrupted one. Only rank 0 writes (Ignite's ``DiskSaver``); every rank loads.

    Args:
        ckpt_dir: directory of the checkpoints.
        save_dict: name -> object with ``state_dict``/``load_state_dict`` (networks, optimisers,
            LR schedulers); DDP-wrapped networks are saved unwrapped.
        resume: whether to load the newest checkpoint when training starts.
        save_interval: save every this many iterations (0: only when training completes).
        n_saved: how many checkpoints to keep (the newest is written before the oldest is removed).
        file_prefix: file names are ``<file_prefix>_checkpoint_<iteration>.pt``.
        strict: strict ``load_state_dict``.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(net.parameters(), 0.1)
        >>> handler = ResumeFromLatest("/tmp/ckpts", {"model": net, "optimizer": opt}, resume=True, save_interval=100)
        >>> handler.attach(trainer)  # doctest: +SKIP
    """

    def __init__(
        self,
        ckpt_dir: str | os.PathLike,
        save_dict: Mapping[str, Any],
        resume: bool = False,
        save_interval: int = 0,
        n_saved: int = 2,
        file_prefix: str = "resume",
        strict: bool = True,
    ) -> None:
        if not save_dict:
            raise ValueError("ResumeFromLatest needs a non-empty save_dict (network, optimizer, ...)")
        if save_interval < 0 or n_saved < 1:
            raise ValueError(f"need save_interval >= 0 and n_saved >= 1, got {save_interval}, {n_saved}")
        self.ckpt_dir, self.save_dict, self.resume = str(ckpt_dir), dict(save_dict), bool(resume)
        self.save_interval, self.n_saved, self.file_prefix, self.strict = (
            int(save_interval),
            int(n_saved),
            file_prefix,
            strict,
        )
        self.loaded_from: Path | None = None

    def attach(self, engine: Engine) -> None:
        """Register loading (``STARTED``), interval saving, saving at ``COMPLETED`` and the data-order tracking."""
        objects = {**self.save_dict, "trainer": engine}
        self._objects = objects
        saver = _WriteFirstDiskSaver(self.ckpt_dir)
        self._checkpoint = Checkpoint(
            objects,
            saver,
            filename_prefix=self.file_prefix,
            n_saved=self.n_saved,
            global_step_transform=lambda e, _: e.state.iteration,
        )
        self._tracker: _DataOrderTracker | None = None
        self._save_at_epoch_end = False
        engine.add_event_handler(Events.STARTED, self._track_data_order)
        engine.add_event_handler(Events.STARTED, self._load)
        engine.add_event_handler(Events.STARTED, self._attach_saving)
        engine.add_event_handler(Events.COMPLETED, self._save)
        self._saving_attached = False

    def _track_data_order(self, engine: Engine) -> None:
        if engine.state.dataloader is None:
            return
        if self._tracker is None or self._tracker.loader is not engine.state.dataloader:
            if isinstance(engine.state.dataloader, _DataOrderTracker):
                self._tracker = engine.state.dataloader
            else:
                self._tracker = _DataOrderTracker(engine.state.dataloader)
        engine.state.dataloader = self._tracker

    def _attach_saving(self, engine: Engine) -> None:
        """Register the interval save when the run starts, i.e. after every other handler: the saved state
        then includes this iteration's end-of-iteration updates, and an epoch's last iteration is saved after
        the epoch's end-of-epoch handlers (validation, LR schedulers)."""
        if self.save_interval > 0 and not self._saving_attached:
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._interval_save)
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._deferred_save)
            self._saving_attached = True

    def _interval_save(self, engine: Engine) -> None:
        if engine.state.iteration % self.save_interval:
            return
        length = engine.state.epoch_length
        if length and engine.state.iteration % length == 0:
            self._save_at_epoch_end = True  # after this epoch's EPOCH_COMPLETED handlers
        else:
            self._save(engine)

    def _deferred_save(self, engine: Engine) -> None:
        if self._save_at_epoch_end:
            self._save_at_epoch_end = False
            self._save(engine)

    def _save(self, engine: Engine) -> None:
        if self._checkpoint.last_checkpoint is not None and engine.state.iteration == self._last_iteration():
            return  # already saved at this iteration (interval and completion coincide)
        self._objects["random_state"] = self._random_state_record()
        try:
            self._checkpoint(engine)
        finally:
            del self._objects["random_state"]
        self._remove_stale(engine.state.iteration)

    def _random_state_record(self) -> _RandomStateRecord:
        tracker = self._tracker
        record = {"at_save": capture_random_state(tracker.generators if tracker else [])}
        if tracker is not None and tracker.state_at_pass_start is not None:
            record["at_pass_start"], record["drawn"] = tracker.state_at_pass_start, tracker.drawn
        return _RandomStateRecord(record)

    def _last_iteration(self) -> int:
        match = re.search(r"_(\d+)\.pt$", str(self._checkpoint.last_checkpoint))
        return int(match.group(1)) if match else -1

    def _remove_stale(self, iteration: int) -> None:
        """Delete this prefix's older checkpoints beyond ``n_saved`` (those of an interrupted earlier run too),
        and the temporary files of saves that were killed midway (``.<name>.<pid>.<token>.tmp.pt``)."""
        if not is_rank_zero():
            return
        names = os.listdir(self.ckpt_dir)
        partial = re.compile(rf"^\.{re.escape(self.file_prefix)}_checkpoint_\d+\.pt\.\d+\.[0-9a-f]+\.tmp\.pt$")
        for name in filter(partial.match, names):  # this process is not writing now: leftovers of a killed run
            try:
                os.remove(os.path.join(self.ckpt_dir, name))
            except FileNotFoundError:
                pass
        pattern = re.compile(rf"^{re.escape(self.file_prefix)}_checkpoint_(\d+)\.pt$")
        steps = sorted((int(m.group(1)), name) for name in names if (m := pattern.match(name)))
        for step, name in steps[: max(0, len(steps) - self.n_saved)]:
            if step < iteration:
                try:
                    os.remove(os.path.join(self.ckpt_dir, name))
                except FileNotFoundError:
                    pass

    def _load(self, engine: Engine) -> None:
        if not self.resume:
            return
        path = latest_checkpoint(self.ckpt_dir, self.file_prefix)
        if path is None:
            logger.warning(
                f"--resume requested but {os.path.abspath(self.ckpt_dir)} holds no "
                f"{self.file_prefix}_checkpoint_*.pt: training starts from scratch"
            )
            return
        try:  # weights_only: tensors and plain containers only, never code run by unpickling
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated / not a torch file / holds objects other than weights
            raise CorruptCheckpointError(
                f"cannot read checkpoint {path} (loaded with weights_only=True): {type(e).__name__}: {e}"
            ) from e
        missing = [k for k in self._objects if not isinstance(checkpoint, Mapping) or k not in checkpoint]
        if missing:
            raise CorruptCheckpointError(
                f"checkpoint {path} lacks {missing} (holds {sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__})"
            )
        max_epochs = engine.state.max_epochs
        schedule_shapes = _schedule_shapes(self._objects)
        try:
            Checkpoint.load_objects(to_load=self._objects, checkpoint=checkpoint, strict=self.strict)
        except Exception as e:
            raise CorruptCheckpointError(f"checkpoint {path} does not match this training config: {e}") from e
        engine.state.max_epochs = max_epochs
        for scheduler, shape in schedule_shapes:  # the config decides the schedule, the checkpoint where we are in it
            _reshape_schedule(scheduler, shape)
        record = checkpoint.get("random_state")
        if isinstance(record, Mapping) and "at_save" in record:
            tracker = self._tracker
            try:
                if tracker is not None and "at_pass_start" in record:
                    tracker.resume_from(record["at_pass_start"], record["drawn"], record["at_save"])
                else:
                    restore_random_state(record["at_save"], tracker.generators if tracker else [])
            except (ValueError, KeyError, IndexError, RuntimeError, TypeError) as e:
                raise CorruptCheckpointError(f"checkpoint {path} does not match this training config: {e}") from e
        else:
            logger.warning(f"{path} holds no random state (an older checkpoint): the resumed run's data order differs")
        _purge_tensorboard_after(engine, engine.state.iteration + 1)
        self.loaded_from = path
        logger.info(f"resumed from {path} at iteration {engine.state.iteration} (epoch {engine.state.epoch})")


class AtomicCheckpointSaver(CheckpointSaver):
    """:class:`monai.handlers.CheckpointSaver` whose files are written atomically (temporary file + ``os.replace``).

    Same arguments as MONAI's saver, plus ``resume_key_metric``. A process killed while saving leaves
    the previous file (or none), never a truncated one; an outdated file (the previous best
    ``model.pt``, an interval checkpoint beyond ``n_saved``) is removed only after its replacement
    is complete.

    The best score of the key-metric file is written beside it (``model.pt.score.json``; MONAI's
    ``key_metric_save_state`` would instead change ``model.pt`` into a dict that strict loaders of
    the bare weights refuse). With ``resume_key_metric=True`` (the bundles pass ``@resume``) that
    score is read back, so a resumed run replaces the best model only with a better one (MONAI's
    saver starts with an empty history: the first validation after a resume would overwrite the
    best model whatever its score).

    Example:
        >>> saver = AtomicCheckpointSaver("/tmp/ckpts", {"model": torch.nn.Linear(2, 1)}, save_final=True)
    """

    def __init__(self, *args: Any, resume_key_metric: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None and isinstance(checkpoint.save_handler, DiskSaver):
                old = checkpoint.save_handler
                checkpoint.save_handler = _WriteFirstDiskSaver(
                    old.dirname, filename=getattr(old, "filename", None), save_on_rank=old.save_on_rank
                )
        if resume_key_metric and self._key_metric_checkpoint is not None:
            self._load_best_score()

    def _score_file(self) -> Path | None:
        filename = getattr(self._key_metric_checkpoint.save_handler, "filename", None)
        return Path(self.save_dir) / f"{filename}.score.json" if filename else None

    def metrics_completed(self, engine: Engine) -> None:
        super().metrics_completed(engine)
        score_file = self._score_file()
        if score_file is not None and is_rank_zero() and self._key_metric_checkpoint._saved:
            saved = [[float(item.priority), item.filename] for item in self._key_metric_checkpoint._saved]
            write_json(score_file, {"file": score_file.name[: -len(".score.json")], "saved": saved})

    def _load_best_score(self) -> None:
        score_file = self._score_file()
        if score_file is None or not score_file.is_file():
            return
        try:
            record = json.loads(score_file.read_text())
            saved = [(float(priority), str(name)) for priority, name in record["saved"]]
            best = Path(self.save_dir) / record["file"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CorruptCheckpointError(f"cannot read the best model's score {score_file}: {e}") from e
        if best.is_file():  # the score of a model that is still there (not of one removed by --overwrite)
            self.load_state_dict({"_saved": saved})
            logger.info(f"resumed the best-model tracking from {score_file}: best score {max(p for p, _ in saved)}")
