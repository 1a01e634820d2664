"""Snapshots of every random state a training run draws from, in a form ``torch.load(weights_only=True)`` reads.

A run's randomness comes from the global generators (torch, CUDA, numpy, python ``random``) and
from the per-object generators of MONAI's random transforms (``Randomizable.R``, a numpy
``RandomState`` seeded by the data loader) and of any ``torch.Generator`` a sampler holds.
:func:`capture_random_state` stores them as tensors and plain numbers only (no pickled objects, so a
checkpoint holding them still loads with ``weights_only=True``); :func:`restore_random_state` puts
them back. :func:`find_random_generators` collects the per-object generators reachable from a data
loader's dataset, the way MONAI's ``set_rnd`` walks it to seed them.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_random_state", "check_random_state", "find_random_generators", "restore_random_state"]

_Generator = np.random.RandomState | torch.Generator


def find_random_generators(*roots: Any) -> list[_Generator]:
    """The numpy ``RandomState`` (``Randomizable.R``) and ``torch.Generator`` objects reachable from ``roots``.

    Walks object attributes, lists and tuples (as MONAI's ``set_rnd`` does), each object once, in a
    deterministic order, so two runs built from the same config list their generators alike.

    Example:
        >>> from monai.transforms import Compose, RandFlip
        >>> gens = find_random_generators(Compose([RandFlip(prob=0.5)]))
        >>> len(gens)  # Compose's own R and RandFlip's R
        2
    """
    found: list[_Generator] = []
    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, dict)):
            return
        seen.add(id(obj))
        if isinstance(obj, (np.random.RandomState, torch.Generator)):
            found.append(obj)
            return
        if isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item)
            return
        if isinstance(obj, (torch.Tensor, np.ndarray, torch.nn.Module)) or not hasattr(obj, "__dict__"):
            return
        for key, value in vars(obj).items():
            if not key.startswith("__"):
                walk(value)

    for root in roots:
        walk(root)
    return found


def _numpy_state(rs: np.random.RandomState) -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = rs.get_state(legacy=True)
    return {
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _set_numpy_state(rs: np.random.RandomState, state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    rs.set_state(("MT19937", keys, state["pos"], state["has_gauss"], state["gauss"]))


def capture_random_state(generators: list[_Generator] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """The global random states and those of ``generators``, as tensors and numbers.

    Example:
        >>> state = capture_random_state()
        >>> a = torch.rand(1)
        >>> restore_random_state(state)
        >>> bool(torch.equal(a, torch.rand(1)))
        True
    """
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(np.random.mtrand._rand),
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "objects": [
            _numpy_state(g) if isinstance(g, np.random.RandomState) else {"torch": g.get_state()} for g in generators
        ],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def check_random_state(state: dict[str, Any], generators: list[_Generator]) -> None:
    """Raise ValueError unless ``state`` was captured from as many per-object generators as ``generators``."""
    if len(state["objects"]) != len(generators):
        raise ValueError(
            f"the saved random state covers {len(state['objects'])} random transforms/generators of the training data, "
            f"this run's data pipeline has {len(generators)}: it is not the pipeline the checkpoint was written by"
        )


def restore_random_state(state: dict[str, Any], generators: list[_Generator] = ()) -> None:  # type: ignore[assignment]
    """Put back a :func:`capture_random_state` snapshot (``generators`` in the order they were captured in).

    Raises:
        ValueError: the snapshot holds a different number of per-object generators (a different data pipeline).
    """
    check_random_state(state, generators)
    torch.set_rng_state(state["torch"])
    _set_numpy_state(np.random.mtrand._rand, state["numpy"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    for gen, saved in zip(generators, state["objects"]):
        if isinstance(gen, np.random.RandomState):
            _set_numpy_state(gen, saved)
        else:
            gen.set_state(saved["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # a run resumed with fewer (or more) visible GPUs restores the devices both runs have
        for device, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, device)
