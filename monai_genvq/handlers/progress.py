"""Progress of long evaluations: one INFO line per case and, optionally, a progress bar.

Every evaluation of the package reports through this module, so that a run that takes minutes per
test volume says what it is doing:

- :class:`CaseProgress` for plain loops (e.g. :class:`~monai_genvq.apps.hyperbolic.HyperbolicSegmentation`):
  a ``tqdm`` bar (``progress_bar=True``; not kept after the loop) and one line per case;
- :class:`EvaluationProgress`, an ignite handler for MONAI evaluators: ignite's
  :class:`~ignite.handlers.ProgressBar` (``persist=False``, as in the training configs) and one line
  per iteration (a test image at batch size 1, else a batch of slices / streamline groups).

The lines read ``<desc>: <unit> i/N '<name>': <metric> <value>, ... (<seconds> s)``, e.g.
``hyperbolic segmentation: volume 3/8 'toy_003': level1 dice 0.714 (12.4 s)``, and go to the
``monai_genvq.handlers.progress`` logger at INFO: with a bundle's ``configs/logging.conf`` (root
logger at INFO on stdout, as for the training ``StatsHandler``) they appear on the console. While a
bar is shown, the lines are written through ``tqdm.write`` so the bar is not torn.

The bundles pass their ``progress_bar`` option (``train.json``: on when stderr is a terminal) to
both, so an evaluation shows a bar exactly where training does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.utils import CommonKeys as Keys

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = [
    "CASE_METRICS",
    "CaseProgress",
    "EvaluationProgress",
    "case_dice",
    "case_mse",
    "case_names",
    "progress_bar_handlers",
]

logger = logging.getLogger(__name__)

Metrics = Mapping[str, Any] | float | str | None


def _format_value(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "nan" if math.isnan(v) else f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"


def _format_metrics(metrics: Metrics) -> str:
    if metrics is None:
        return ""
    if isinstance(metrics, str):
        return metrics
    if isinstance(metrics, Mapping):
        return ", ".join(f"{k} {_format_value(v)}" for k, v in metrics.items())
    return _format_value(metrics)


class CaseProgress:
    """One INFO line per case of a loop (name, index/total, seconds, metrics) and an optional tqdm bar.

    Args:
        total: number of cases (None: unknown, the lines show no total).
        desc: what runs (line prefix and bar label), e.g. ``"hyperbolic segmentation"``.
        unit: what a case is (``"case"``, ``"volume"``, ``"batch"``).
        progress_bar: show a ``tqdm`` bar (not kept after :meth:`close`); lines then go through ``tqdm.write``.
        log: the logger (default: ``monai_genvq.handlers.progress``).

    Example:
        >>> progress = CaseProgress(2, "toy evaluation", unit="volume")
        >>> for name in ("toy_000", "toy_001"):
        ...     progress.start(name)
        ...     seconds = progress.done({"dice": 0.71})  # logs "toy evaluation: volume 1/2 'toy_000': dice 0.710 (0.0 s)"
        >>> progress.close()
        >>> progress.count
        2
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "evaluation",
        unit: str = "case",
        progress_bar: bool = False,
        log: logging.Logger | None = None,
    ) -> None:
        self.total = None if total is None else int(total)
        self.desc, self.unit, self.progress_bar = desc, unit, bool(progress_bar)
        self.log = log or logger
        self.count = 0
        self._name: str | None = None
        self._case_start = self._run_start = time.perf_counter()
        self._bar: Any = None
        self._closed = False
        if self.progress_bar:
            try:
                from tqdm import tqdm
            except ImportError:
                self.log.warning("progress_bar is set but tqdm is not installed (pip install tqdm): no bar")
            else:
                self._bar = tqdm(total=self.total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def __enter__(self) -> CaseProgress:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(summary=exc_type is None)

    def start(self, name: Any = None) -> None:
        """Mark the start of the next case (its timer starts here)."""
        self._name = None if name is None else str(name)
        self._case_start = time.perf_counter()

    def done(self, metrics: Metrics = None, name: Any = None) -> float:
        """Log the case started last (``name`` overrides the one given to :meth:`start`); returns its seconds."""
        now = time.perf_counter()
        elapsed = now - self._case_start
        self.count += 1
        name = self._name if name is None else str(name)
        position = f"{self.count}/{self.total}" if self.total is not None else f"{self.count}"
        text = f"{self.desc}: {self.unit} {position}"
        if name:
            text += f" '{name}'"
        shown = _format_metrics(metrics)
        if shown:
            text += f": {shown}"
        self.emit(f"{text} ({elapsed:.1f} s)")
        if self._bar is not None:
            self._bar.update(1)
        self._name, self._case_start = None, now
        return elapsed

    def emit(self, message: str) -> None:
        """Log ``message`` at INFO, through ``tqdm.write`` while any tqdm bar is on screen."""
        if not self.log.isEnabledFor(logging.INFO):
            return
        with _tqdm_safe_logging():
            self.log.info(message)

    def close(self, summary: bool = True) -> None:
        """Remove the bar and, with ``summary``, log the number of cases and the total time (once)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if summary and self.count:
            plural = "" if self.count == 1 else "es" if self.unit.endswith(("s", "x", "ch", "sh")) else "s"
            self.emit(f"{self.desc}: {self.count} {self.unit}{plural} in {time.perf_counter() - self._run_start:.1f} s")


@contextlib.contextmanager
def _tqdm_safe_logging() -> Iterator[None]:
    """Route the root logger's console handlers through ``tqdm.write`` while a tqdm bar is open."""
    try:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:  # no tqdm: no bar either
        yield
        return
    if not getattr(tqdm, "_instances", None):
        yield
        return
    with logging_redirect_tqdm():
        yield


def _items(value: Any) -> list[dict]:
    """A batch or output as a list of per-item dicts (a decollated list stays as it is)."""
    if isinstance(value, Mapping):
        return [value]  # a collated batch: one dict of batched entries
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _stem(path: Any) -> str:
    name = os.path.basename(str(path))
    for suffix in (".nii.gz", ".nii", ".mrc", ".npz", ".npy", ".trk", ".tck", ".h5", ".gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _as_list(value: Any) -> list:
    if isinstance(value, torch.Tensor):
        return value.reshape(-1).tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def case_names(batch: Any, keys: Sequence[str] = ("name", "subject", "case"), image_key: str = Keys.IMAGE) -> list[str]:
    """Names of the items of a batch: the first of ``keys`` present, else the image's file name (MetaTensor meta).

    Works on a collated batch (dict of lists) and on a decollated one (list of dicts); returns ``[]``
    when the batch names nothing.

    Example:
        >>> case_names({"subject": ["patient001", "patient002"], "image": torch.zeros(2, 1, 4, 4)})
        ['patient001', 'patient002']
        >>> case_names([{"name": "AF_L"}, {"name": "CST_R"}])
        ['AF_L', 'CST_R']
    """
    names: list[str] = []
    for item in _items(batch):
        found = next((item[k] for k in keys if k in item and item[k] is not None), None)
        if found is not None:
            names.extend(str(n) for n in _as_list(found))
            continue
        meta = getattr(item.get(image_key), "meta", None) or item.get(f"{image_key}_meta_dict") or {}
        files = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
        if files is not None:
            names.extend(_stem(f) for f in _as_list(files) if f)
    return names


def _shorten(names: Sequence[str], max_names: int) -> str:
    unique = list(dict.fromkeys(names))
    if len(unique) <= max_names:
        return ", ".join(unique)
    return ", ".join(unique[:max_names]) + f" +{len(unique) - max_names} more"


def _pairs(output: Any, pred_key: str, label_key: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    pairs = []
    for item in _items(output):
        if pred_key in item and label_key in item:
            pred, label = item[pred_key], item[label_key]
            if isinstance(pred, torch.Tensor) and isinstance(label, torch.Tensor):
                pairs.append((pred.detach(), label.detach()))
    return pairs


def case_mse(output: Any, pred_key: str = Keys.PRED, label_key: str = Keys.LABEL) -> dict[str, float] | None:
    """Mean squared error of ``pred`` against ``label`` over an evaluator's output (collated or decollated).

    Example:
        >>> case_mse({"pred": torch.ones(2, 1, 4, 4), "label": torch.zeros(2, 1, 4, 4)})
        {'mse': 1.0}
    """
    pairs = [(p, q) for p, q in _pairs(output, pred_key, label_key) if p.shape == q.shape]
    if not pairs:
        return None
    total = sum(float((p.float() - q.float()).square().sum()) for p, q in pairs)
    return {"mse": total / sum(p.numel() for p, _ in pairs)}


def case_dice(output: Any, pred_key: str = Keys.PRED, label_key: str = Keys.LABEL) -> dict[str, float] | None:
    """Mean foreground Dice of one-hot ``pred`` against one-hot ``label`` ((C, *S) items or (B, C, *S) batches).

    As the bundles' ``MeanDice``: background excluded, a label absent from the ground truth of an
    image skipped; the mean is over images and labels.

    Example:
        >>> label = torch.zeros(1, 2, 4, 4); label[0, 1, :2] = 1; label[0, 0, 2:] = 1
        >>> case_dice([{"pred": label[0], "label": label[0]}])
        {'dice': 1.0}
    """
    from monai.metrics import compute_dice

    scores = []
    for pred, label in _pairs(output, pred_key, label_key):
        if pred.shape != label.shape or pred.ndim < 3:
            continue
        if not isinstance(output, Mapping):  # a decollated item: (C, *S)
            pred, label = pred[None], label[None]
        dice = compute_dice(pred.float(), label.float(), include_background=False, ignore_empty=True)
        scores.append(dice.reshape(-1).float().cpu())
    if not scores:
        return None
    values = torch.cat(scores)
    values = values[~torch.isnan(values)]
    return {"dice": float(values.mean()) if len(values) else float("nan")}


CASE_METRICS: dict[str, Callable[[Any], Any]] = {"mse": case_mse, "dice": case_dice}


def progress_bar_handlers(progress_bar: bool, desc: str | None = None) -> list:
    """``[ignite ProgressBar(persist=False)]`` when ``progress_bar``, else ``[]`` (for ``train_handlers`` / ``val_handlers``).

    Example:
        >>> progress_bar_handlers(False)
        []
    """
    if not progress_bar:
        return []
    from ignite.handlers import ProgressBar

    return [ProgressBar(persist=False, desc=desc)] if desc else [ProgressBar(persist=False)]


class EvaluationProgress:
    """Ignite handler: one INFO line per iteration of an evaluator and, with ``progress_bar``, ignite's ProgressBar.

    Each line names the items of the batch (``name`` / ``subject`` / ``case`` keys, else the image's
    file name), gives the iteration's index out of the epoch length, its seconds and, with
    ``case_metric``, a cheap per-case score of the output; the run's total time is logged when it
    completes (before handlers attached after this one write their reports).

    Args:
        progress_bar: attach ignite's :class:`~ignite.handlers.ProgressBar` (``persist=False``), as the
            training configs do when their ``progress_bar`` option is true.
        desc: line prefix and bar label (default ``"evaluation"``).
        unit: what an iteration is (``"batch"``, ``"image"``, ...).
        case_metric: None, ``"mse"`` (:func:`case_mse`), ``"dice"`` (:func:`case_dice`) or a callable
            ``engine.state.output -> {name: value}`` (a number or a string also do).
        name_keys: batch keys holding the item names, first found wins.
        max_names: names shown per line (then ``+k more``).

    Example:
        >>> EvaluationProgress(progress_bar=False, desc="neural_gas", case_metric="mse").attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        progress_bar: bool = False,
        desc: str | None = None,
        unit: str = "batch",
        case_metric: str | Callable[[Any], Any] | None = None,
        name_keys: Sequence[str] = ("name", "subject", "case"),
        max_names: int = 3,
    ) -> None:
        if isinstance(case_metric, str):
            if case_metric not in CASE_METRICS:
                raise ValueError(f"case_metric '{case_metric}' is not one of {sorted(CASE_METRICS)} (or a callable)")
            case_metric = CASE_METRICS[case_metric]
        self.progress_bar, self.desc, self.unit = bool(progress_bar), desc or "evaluation", unit
        self.case_metric, self.name_keys, self.max_names = case_metric, tuple(name_keys), int(max_names)
        self.progress: CaseProgress | None = None

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        for handler in progress_bar_handlers(self.progress_bar, self.desc):
            handler.attach(engine)
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.GET_BATCH_STARTED, self._iteration_started)  # the case's time includes loading
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _started(self, engine: Engine) -> None:
        total = engine.state.epoch_length
        # the ProgressBar is ignite's; this object only logs (through tqdm.write while that bar is shown)
        self.progress = CaseProgress(total, self.desc, self.unit, progress_bar=False)

    def _iteration_started(self, engine: Engine) -> None:
        if self.progress is not None:
            self.progress.start()

    def _iteration_completed(self, engine: Engine) -> None:
        if self.progress is None:
            return
        names = case_names(engine.state.batch, self.name_keys)
        metrics = None
        if self.case_metric is not None:
            try:
                metrics = self.case_metric(engine.state.output)
            except Exception as e:  # a progress line must never end an evaluation
                logger.warning(f"{self.desc}: per-case metric disabled, it failed on this output: {e}")
                self.case_metric = None
        self.progress.done(metrics, name=_shorten(names, self.max_names) if names else None)

    def _completed(self, engine: Engine) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
