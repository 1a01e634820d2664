"""Bad inputs through the real ``python -m monai.bundle run`` CLI: the run fails at once, the LAST lines of the
output name the option or file and the problem, and no empty output folder is left behind.

Tiny sizes (2 toy volumes of 32^3, 4-triplet batches): each case is one short subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

TOY = REPO / "bundles" / "hyperbolic_toy_seg" / "configs"
CARDIAC = REPO / "bundles" / "cardiac_attri_sivae" / "configs"
TOY_TINY = ("--triplets_per_volume", "4", "--channels", "[4, 8, 8, 8]", "--gyro_channels", "4", "--max_epochs", "1")
TINY_ACDC = {"n_train": 4, "n_test": 1, "shape": [96, 96], "n_slices": 6, "n_frames": 3}


def run_cli(run_id: str, configs: list[Path], bundle_root: Path, *overrides: str, timeout: int = 300):
    """``python -m monai.bundle run`` as a user types it; returns (return code, stdout and stderr interleaved)."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", str([str(c) for c in configs])]
    cmd += ["--bundle_root", str(bundle_root), *overrides]
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        cwd=REPO,
    )
    return proc.returncode, proc.stdout


def last_lines(output: str, n: int = 3) -> str:
    return "\n".join(output.strip().splitlines()[-n:])


@pytest.fixture(scope="module")
def tiny_toy(cache_dir):
    from monai_genvq.apps.hyperbolic import ensure_hierarchy_toy

    return str(ensure_hierarchy_toy(n_train=2, n_test=1, size=32))


def test_option_of_the_wrong_type_is_named_in_the_last_line(tiny_toy, tmp_path):
    rc, out = run_cli(
        "training", [TOY / "train.json"], tmp_path, "--dataset_dir", tiny_toy, *TOY_TINY[:-2], "--max_epochs", "abc"
    )
    assert rc != 0
    assert "option --max_epochs must be an integer, got 'abc' (str)" in last_lines(out), out[-3000:]
    assert not (tmp_path / "outputs").exists()  # failed before anything was created


def test_second_run_into_a_folder_in_use_fails_at_once(tiny_toy, tmp_path):
    out_dir = tmp_path / "outputs" / "hyperbolic"
    out_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a live run's pid
    lock = out_dir / ".run.lock"
    try:
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "2026-01-01T00:00"}))
        rc, out = run_cli("training", [TOY / "train.json"], tmp_path, "--dataset_dir", tiny_toy, *TOY_TINY)
    finally:
        holder.kill()
        holder.wait()
    tail = last_lines(out)
    assert rc != 0 and str(out_dir) in tail and str(lock) in tail and f"pid {holder.pid}" in tail, out[-3000:]
    assert os.listdir(out_dir) == [".run.lock"]  # nothing touched


def test_trained_folder_needs_resume_or_overwrite_and_a_resume_must_be_the_same_run(tiny_toy, tmp_path):
    common = [TOY / "train.json"], tmp_path, "--dataset_dir", tiny_toy, *TOY_TINY
    rc, out = run_cli("training", *common)
    assert rc == 0, out[-3000:]
    models = tmp_path / "outputs" / "hyperbolic" / "models"
    trained = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}
    assert "model.pt" in trained and not (models.parent / ".run.lock").exists()  # released at the end

    rc, out = run_cli("training", *common)  # a new run into the trained folder
    tail = last_lines(out)
    assert rc != 0 and str(models.parent) in tail and "--resume true" in tail and "--overwrite true" in tail, out[
        -3000:
    ]

    rc, out = run_cli("training", *common, "--resume", "true", "--kl_weight", "0.5")  # a different run
    assert rc != 0 and "differ in kl_weight: 0.1 -> 0.5" in last_lines(out), out[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == trained  # the trained run is untouched


def test_training_set_smaller_than_one_batch_is_refused(cache_dir, tmp_path):
    rc, out = run_cli(
        "training",
        [CARDIAC / "train.json"],
        tmp_path,
        "--synthetic_acdc",
        json.dumps(TINY_ACDC),
        "--batch_size",
        "100000",
        "--max_epochs",
        "1",
    )
    tail = last_lines(out)
    assert rc != 0 and "fewer than one batch of 100000 (--batch_size 100000)" in tail, out[-3000:]
    assert "sample(s)" in tail and "--dataset_dir not set" in tail
    assert not (tmp_path / "outputs").exists()


def test_bad_data_file_is_named_in_the_last_lines(cache_dir, tmp_path):
    from monai_genvq.data.synthetic_cardiac import generate_synthetic_acdc

    data = generate_synthetic_acdc(tmp_path / "acdc", n_train=4, n_test=1, shape=(96, 96), n_slices=6, n_frames=3)
    info = sorted(data.glob("database/training/*/Info.cfg"))[0]
    text = info.read_text()
    info.write_text("".join("ED: 1.5\n" if line.startswith("ED:") else line + "\n" for line in text.splitlines()))
    root = tmp_path / "bundle"
    rc, out = run_cli("training", [CARDIAC / "train.json"], root, "--dataset_dir", str(data), "--max_epochs", "1")
    tail = last_lines(out)
    assert rc != 0 and str(info) in tail and "ED" in tail and "1.5" in tail, out[-3000:]
    assert tail.splitlines()[-1].startswith("monai-genvq error: CardiacDataError:")
    assert not root.exists() or not (root / "outputs").exists()
    shutil.rmtree(data, ignore_errors=True)
