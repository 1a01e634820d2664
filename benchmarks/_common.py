"""Shared helpers of the benchmark scripts: timing, peak memory, machine matmul throughput, JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

# glibc's malloc environment variables: the benchmarks unset them in their child processes, so that a row
# measures either glibc's default or what a bundle sets at run time (monai_genvq.utils.heap_only_malloc)
HEAP_ONLY_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB since the last :func:`reset_peak_rss`."""
    return _proc_status_mib("VmHWM")


def rss_mib() -> float:
    """Resident memory of this process now, in MiB."""
    return _proc_status_mib("VmRSS")


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The machine's fp32 matmul throughput (GFLOP/s) on n×n matrices, measured now."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = time_call(lambda: a @ b, repeats, warmup=2)
    return 2 * n**3 / seconds / 1e9


def machine_info() -> dict:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(),
        "malloc": {k: os.environ.get(k) for k in HEAP_ONLY_MALLOC},
    }


def write_results(path: str | os.PathLike, results: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
