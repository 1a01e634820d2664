import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO.parent / "shared" / "schema" / "meta_schema_20240725.json"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One synthetic-data cache for the whole session, also handed to CLI subprocesses."""
    path = tmp_path_factory.mktemp("genvq_cache")
    os.environ["MONAI_GENVQ_CACHE"] = str(path)
    return path


def run_bundle(run_id: str, configs: list[Path], bundle_root: Path, *overrides: str, timeout: int = 300) -> str:
    """``python -m monai.bundle run <run_id>`` in a subprocess, as a user types it; returns its output."""
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        run_id,
        "--config_file",
        str([str(c) for c in configs]),
        "--bundle_root",
        str(bundle_root),
        *overrides,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), cwd=REPO)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc.stdout + proc.stderr
