"""Errors a user can act on: typed checks of command-line options, and the root cause as the last line of output.

MONAI's bundle runner wraps every exception raised while it evaluates a config expression in
``RuntimeError: Failed to evaluate ConfigExpression ...`` / ``Failed to instantiate ...``, so the real
message (a bad data file, an option of the wrong type) sits dozens of lines above the end of the output.
:func:`install_excepthook` adds, after the usual traceback, the root cause of the exception chain as the
last line(s): ``monai-genvq error: <Type>: <message>``. :func:`check_options` refuses a command-line
override of the wrong type (``--max_epochs abc``) with a message naming the option, before anything
else reads it.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any

__all__ = [
    "OPTION_KINDS",
    "OptionError",
    "check_option",
    "check_options",
    "format_root_cause",
    "install_excepthook",
    "root_cause",
]

ERROR_PREFIX = "monai-genvq error:"


class OptionError(ValueError):
    """A bundle option (a ``--key value`` override or a config value) has the wrong type or range."""


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of ``exc``'s chain: follows ``__cause__``, else ``__context__``.

    Example:
        >>> try:
        ...     try:
        ...         raise ValueError("bad file")
        ...     except ValueError as e:
        ...         raise RuntimeError("Failed to evaluate ConfigExpression") from e
        ... except RuntimeError as e:
        ...     root_cause(e)
        ValueError('bad file')
    """
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ if exc.__cause__ is not None else exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def format_root_cause(exc: BaseException) -> str:
    """``monai-genvq error: <Type>: <message>`` for the root cause of ``exc`` (one line per message line)."""
    cause = root_cause(exc)
    text = str(cause).strip() or repr(cause)
    return f"{ERROR_PREFIX} {type(cause).__name__}: {text}"


def _genvq_excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, previous: Any = None
) -> None:
    previous = previous or _PREVIOUS_HOOK or sys.__excepthook__
    try:
        previous(exc_type, exc, tb)
    finally:
        try:
            sys.stdout.flush()
        except Exception:  # a closed stdout must not hide the message
            pass
        print(format_root_cause(exc), file=sys.stderr, flush=True)


_PREVIOUS_HOOK: Any = None


def install_excepthook() -> None:
    """Print the root cause of an uncaught exception as the last line(s) of the output.

    The previous ``sys.excepthook`` still prints the usual traceback first. Installing twice is a no-op.
    Every bundle config calls this first in ``initialize``.

    Example:
        >>> install_excepthook()
        >>> install_excepthook()  # installed once
        >>> sys.excepthook.__name__
        '_genvq_excepthook'
    """
    global _PREVIOUS_HOOK
    if sys.excepthook is _genvq_excepthook:
        return
    _PREVIOUS_HOOK = sys.excepthook
    sys.excepthook = _genvq_excepthook


# ------------------------------------------------------------------------------------------------ option types

#: Expected kind of every numeric/boolean top-level option of the bundles' training configs. A kind is
#: ``bool``, ``int``, ``float`` or ``str`` with an optional bound ``>0``, ``>=0`` or ``0..1`` (float in
#: [0, 1]), and a trailing ``?`` when ``null`` is allowed; ``any`` is not checked (an option that is only
#: part of the run's settings, such as a list of channels).
OPTION_KINDS: dict[str, str] = {
    "resume": "bool",
    "overwrite": "bool",
    "heap_only_malloc": "bool",
    "max_epochs": "int>0",
    "epoch_length": "int>0?",
    "batch_size": "int>0",
    "volumes_per_batch": "int>0",
    "seed": "int>=0",
    "learning_rate": "float>0",
    "val_interval": "int>0",
    "checkpoint_interval": "int>=0",
    "log_every": "int>0",
    "n_test": "int>=0",
    "max_subjects": "int>0?",
    "max_train_subjects": "int>0?",
    "val_fraction": "0..1",
    "prior_fraction": "0..1",
    "slice_position": "0..1",
    "prior_augment_prob": "0..1",
    "crop_size": "int>0",
    "image_size": "int>0",
    "patch_size": "int>0",
    "latent_dim": "int>0",
    "latent_channels": "int>0",
    "num_embeddings": "int>0",
    "num_res_blocks": "int>0",
    "gyro_channels": "int>0",
    "posterior_samples": "int>0",
    "toy_version": "int>0",
    "triplet_sampling": "str",
    "phantom": "str",
    "data_init": "bool",
    "min_streamlines": "int>=0",
    "bundle_names": "any",
    "triplet_voxel_scale": "float>0",
    "kl_balance": "float>=0",
    "parent_size": "any",
    "child_size": "any",
    "triplets_per_volume": "int>0",
    "n_points": "int>0",
    "group_size": "int>0",
    "dead_code_steps": "int>=0",
    "pretrain_iterations": "int>=0",
    "use_location_prior": "bool",
    "squared_triplet": "bool",
    "prior_rotate_range": "float>=0",
    "prior_translate_range": "float>=0",
    "prior_scale_range": "float>=0",
    "beta": "float>=0",
    "gamma": "float>=0",
    "delta": "float>=0",
    "beta_kl": "float>=0",
    "beta_rec": "float>=0",
    "beta_neg": "float>=0",
    "gamma_r": "float>=0",
    "perceptual_delta": "float>=0",
    "perceptual_mse_weight": "float>=0",
    "perceptual_weights": "str",
    "perceptual_network": "str",
    "perceptual_distance": "str",
    "zoom": "float>0",
    "curvature": "float>=0",
    "max_radius": "float>0",
    "kl_weight": "float>=0",
    "triplet_weight": "float>=0",
    "margin": "float>=0",
    "likelihood_scale": "float>0",
    "buan_threshold": "float>=0",
    "commitment_cost": "float>=0",
    "collapse_threshold": "float>=0",
    "prior_learning_rate": "float>0",
    "prior_max_epochs": "int>0",
    "num_samples": "int>0",
    "sample_temperature": "float>0",
    "variant": "str",
    "prior_type": "str",
    "sample_statistics": "str",
    "stage": "str",
    "dataset": "str",
    "distribution": "str",
    "decoder_head": "str",
    "normalize": "str",
    "reconstruction": "str",
    "layout": "str",
    "label_map": "str",
    "label_convention": "str?",
    "replacement": "str",
    "channels": "any",
}

_BOOL_TEXT = {"true": True, "false": False}


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_option(name: str, value: Any, kind: str) -> Any:
    """Check one option against ``kind`` (see :data:`OPTION_KINDS`); returns the value (``"true"`` -> True).

    Raises:
        OptionError: ``option --<name> must be <kind>, got <value> (<type>)``.

    Example:
        >>> check_option("max_epochs", 3, "int>0")
        3
        >>> check_option("max_epochs", "abc", "int>0")
        Traceback (most recent call last):
        ...
        monai_genvq.utils.errors.OptionError: option --max_epochs must be an integer, got 'abc' (str)
    """
    if kind == "any":
        return value
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if value is None:
        if optional:
            return None
        raise OptionError(f"option --{name} must be set (got null)")
    if base == "bool":
        if isinstance(value, str) and value.lower() in _BOOL_TEXT:
            return _BOOL_TEXT[value.lower()]
        if not isinstance(value, bool):
            raise OptionError(f"option --{name} must be true or false, got {_describe(value)}")
        return value
    if base == "str":
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return str(value)  # the command line reads ``--label_map 2023`` as a number
        if not isinstance(value, str):
            raise OptionError(f"option --{name} must be a string, got {_describe(value)}")
        return value
    if base.startswith("int"):
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not ok and isinstance(value, float) and value.is_integer():
            ok, value = True, int(value)
        if not ok:
            raise OptionError(f"option --{name} must be an integer, got {_describe(value)}")
        bound = base[3:]
    else:  # float kinds
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise OptionError(f"option --{name} must be a number, got {_describe(value)}")
        bound = base[5:] if base.startswith("float") else base
    if bound == ">0" and not value > 0:
        raise OptionError(f"option --{name} must be positive, got {value!r}")
    if bound == ">=0" and not value >= 0:
        raise OptionError(f"option --{name} must be zero or positive, got {value!r}")
    if bound == "0..1" and not 0 <= value <= 1:
        raise OptionError(f"option --{name} must be between 0 and 1, got {value!r}")
    return value


def check_options(options: Mapping[str, Any], kinds: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check every option's type (``kinds`` extends/overrides :data:`OPTION_KINDS`); returns the checked values.

    Args:
        options: option name -> value as the config resolved it (a CLI override arrives as python-fire
            parsed it: ``--max_epochs abc`` is the string ``'abc'``).
        kinds: extra or different kinds, by option name.

    Raises:
        OptionError: the first option of the wrong type or range, named as on the command line.
        KeyError: an option with no known kind (a config error, not a user error).

    Example:
        >>> check_options({"max_epochs": 2, "resume": "true"})
        {'max_epochs': 2, 'resume': True}
    """
    table = {**OPTION_KINDS, **(kinds or {})}
    unknown = [k for k in options if k not in table]
    if unknown:
        raise KeyError(f"no kind known for option(s) {unknown}; add them to OPTION_KINDS or pass kinds=")
    return {name: check_option(name, value, table[name]) for name, value in options.items()}
