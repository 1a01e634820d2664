"""benchmarks/gpu_smoke.py cannot rot: its tiny CPU run trains every bundle's case through the AMP path."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_smoke.py"


def _load_script():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu_smoke
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return gpu_smoke


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU run that CI makes")
def test_tiny_cpu_run_trains_every_bundle_with_amp(tmp_path):
    out = tmp_path / "gpu_smoke.json"
    cmd = [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--amp", "true", "--threads", "1"]
    proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "no GPU used" in proc.stdout
    results = json.loads(out.read_text())
    rows = {r["case"]: r for r in results["cases"]}
    expected = {c.name for c in _load_script().CASES}
    assert set(rows) == expected and results["failed"] == []
    bundles = {p.name for p in (REPO / "bundles").iterdir() if (p / "configs" / "train.json").is_file()}
    assert {r["bundle"] for r in rows.values()} == bundles  # every bundle has a case
    for name, row in rows.items():
        assert row["device"] == "cpu" and row["amp"] is True and row["autocast_dtype"] == "bfloat16", name
        assert row["iterations"] == 3 and row["iterations_per_s"] > 0 and row["peak_memory_mib"] > 0, name
        assert row["peak_memory_kind"] == "process_peak_rss" and row["loss"] is not None, name
        assert row["channels_last"] is False and row["pin_memory"] is False, name  # CUDA-only options stay off


def test_a_failing_case_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    smoke = _load_script()
    good = next(c for c in smoke.CASES if c.name == "anatomical_prior_seg")

    def broken_batch(parser):
        raise RuntimeError("synthetic batch exploded")

    broken = smoke.Case("broken", "vq_quantizers", ("train.json",), broken_batch, tiny=smoke._VQ_TINY)
    monkeypatch.setattr(smoke, "CASES", [broken, good])
    out = tmp_path / "gpu_smoke.json"
    argv = ["--tiny", "--device", "cpu", "--iterations", "1", "--warmup", "0", "--out", str(out)]
    assert smoke.main(argv) == 1
    results = json.loads(out.read_text())
    assert results["failed"] == ["broken"]
    rows = {r["case"]: r for r in results["cases"]}
    assert "synthetic batch exploded" in rows["broken"]["error"]
    assert rows["anatomical_prior_seg"]["amp"] is False  # amp auto: off on CPU
    assert rows["anatomical_prior_seg"]["iterations_per_s"] > 0
    assert os.path.basename(results["device"]) == "cpu"
