"""``heap_only_malloc``: the glibc settings the benchmarks measured, applied by a running bundle (no env vars)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from monai_genvq.utils import OptionError, heap_only_malloc

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc only"
)

# allocate and touch a 64 MiB block; print the bytes glibc holds in mmap'd chunks (mallinfo2().hblkhd)
PROBE = """
import ctypes, sys
import numpy as np
from monai_genvq.utils import heap_only_malloc
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
applied = heap_only_malloc(sys.argv[1] == "on")
block = np.ones(64 * 2**20, np.uint8)
print(applied, libc.mallinfo2().hblkhd)
"""


def _probe(mode: str, env: dict | None = None) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**clean, **(env or {}), "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    ).stdout.split()
    return out[0] == "True", int(out[1])


def test_large_blocks_come_from_the_heap_once_applied():
    applied, mmapped = _probe("off")
    assert not applied and mmapped >= 64 * 2**20  # glibc's default: the 64 MiB block is its own mmap
    applied, mmapped = _probe("on")
    assert applied and mmapped < 64 * 2**20  # from the heap (kept after free: no re-faulting next step)


def test_the_users_environment_wins_and_the_option_is_checked():
    applied, _ = _probe("on", {"MALLOC_MMAP_MAX_": "65536"})
    assert not applied
    with pytest.raises(OptionError, match="heap_only_malloc"):
        heap_only_malloc("maybe")


def test_every_training_config_applies_it_after_the_run_guard():
    """What the benchmarks call the bundle default is what `python -m monai.bundle run training` does."""
    import json

    configs = sorted((Path(__file__).resolve().parents[1] / "bundles").glob("*/configs/*.json"))
    loaded = {c: json.loads(c.read_text()) for c in configs}
    training = {c: v for c, v in loaded.items() if "check_training_run" in json.dumps(v.get("initialize", ""))}
    assert len(training) == 9  # 7 train.json, 2 prior.json
    for path, config in training.items():
        assert config["heap_only_malloc"] is True, path
        init = config["initialize"]
        after_guard = next(i for i, e in enumerate(init) if "start_training_run" in e) + 1
        assert init[after_guard] == "$monai_genvq.utils.heap_only_malloc(@heap_only_malloc)", path
