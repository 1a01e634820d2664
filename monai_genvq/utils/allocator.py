"""glibc malloc settings for training steps with large activations, applied at run time (``mallopt``).

By default glibc serves each block over its mmap threshold (up to 32 MiB, adaptive) with its own
``mmap`` and unmaps it on ``free``: a training step at batch 256 then re-faults, and the kernel
re-zeroes, every large activation on every step (page-fault time, not compute). PyTorch's CPU
performance guides avoid this with jemalloc/tcmalloc; these two glibc settings do the same with no
new dependency: every block comes from the heap (``M_MMAP_MAX = 0``) and the heap is never trimmed
(``M_TRIM_THRESHOLD`` at its maximum), the same as the environment variables ``MALLOC_MMAP_MAX_=0``
``MALLOC_TRIM_THRESHOLD_=<large>``, but set by the running process, so that a plain
``python -m monai.bundle run training`` gets them. The cost: freed memory stays with the process
(the peak resident size is held until it exits).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

from monai_genvq.utils.errors import check_options

__all__ = ["heap_only_malloc"]

logger = logging.getLogger(__name__)

# glibc <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def heap_only_malloc(enable: bool = True) -> bool:
    """Make glibc malloc serve every block from the heap and never trim it (see the module docstring).

    A no-op (returning False, with a DEBUG log) off Linux/glibc, when ``enable`` is False, or when the
    environment already sets ``MALLOC_MMAP_MAX_`` (the user's own choice wins).

    Args:
        enable: the bundles' ``heap_only_malloc`` option (``--heap_only_malloc false`` keeps glibc's default).

    Returns:
        True when the settings were applied to this process.

    Example:
        >>> isinstance(heap_only_malloc(False), bool)
        True
    """
    if not check_options({"heap_only_malloc": enable})["heap_only_malloc"]:
        return False
    if "MALLOC_MMAP_MAX_" in os.environ:
        logger.debug("MALLOC_MMAP_MAX_ is set in the environment; malloc settings left as they are")
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        logger.debug("not glibc: malloc settings left as they are")
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    except (OSError, AttributeError) as exc:
        logger.debug(f"mallopt unavailable ({exc}); malloc settings left as they are")
        return False
    return bool(ok)
