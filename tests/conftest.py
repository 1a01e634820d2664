import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Seeded learning tests compare against thresholds; a float sum's order depends on the number of
# intra-op threads, so a different thread count lands a seed elsewhere in its spread. Every test,
# and every bundle CLI it starts, runs with the same count (CI's 2 cores).
TEST_THREADS = 2
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(TEST_THREADS)


@pytest.fixture(autouse=True, scope="session")
def pinned_threads():
    import torch

    torch.set_num_threads(TEST_THREADS)
    yield


SCHEMA = REPO / "tests" / "data" / "meta_schema_20240725.json"  # source: tests/data/README.md


@pytest.fixture(autouse=True, scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One synthetic-data cache for the whole session, also handed to CLI subprocesses (autouse: no test
    writes generated data or streamline group caches under the user's ~/.cache)."""
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


def _cli_value(text: str):
    """A CLI override's value as ``python -m monai.bundle run`` (python-fire) reads it: a literal, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_bundle(configs: list[Path], bundle_root: Path, *overrides: str):
    """A ``ConfigParser`` of ``configs`` with ``bundle_root`` and ``--key value`` CLI ``overrides`` applied."""
    from monai.bundle import ConfigParser

    if len(overrides) % 2:
        raise ValueError(f"overrides come in '--key value' pairs: {overrides}")
    parser = ConfigParser()
    parser.read_config([str(c) for c in configs])
    parser["bundle_root"] = str(bundle_root)
    for key, value in zip(overrides[::2], overrides[1::2]):
        parser[key.lstrip("-")] = _cli_value(value)
    return parser


def evaluate_untrained_copy(
    configs: list[Path],
    bundle_root: Path,
    *overrides: str,
    seed: int = 1234,
    checkpoint_key: str = "checkpoint",
    run_id: str = "evaluating",
    timeout: int = 300,
) -> dict:
    """Evaluate, through the same CLI, a freshly initialised network in place of the trained one.

    ``configs``/``overrides`` are those of the test's own evaluation run. ``<bundle_root>/outputs``
    (checkpoints, normalisers) is copied to a sibling bundle root, the weights in the checkpoint that
    evaluation loads (config id ``checkpoint_key``) are replaced by ``network_def`` instantiated from
    the same configs and overrides under ``torch.manual_seed(seed)`` (a seed training did not use;
    the file keeps its format: a bare state dict or ``{"model": state dict, ...}``), ``run_id`` runs
    there, and its ``<eval_dir>/metrics.json`` is returned. The untrained model's numbers on the same
    data are the reference a trained model must beat.
    """
    import shutil

    import torch

    root = bundle_root.parent / f"{bundle_root.name}_untrained"
    shutil.copytree(bundle_root / "outputs", root / "outputs")
    parser = parse_bundle(configs, root, *overrides)
    eval_dir = Path(parser.get_parsed_content("eval_dir"))
    shutil.rmtree(eval_dir, ignore_errors=True)  # only the untrained model's numbers may land there
    checkpoint = Path(parser.get_parsed_content(checkpoint_key))
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    nested = isinstance(state, dict) and isinstance(state.get("model"), dict)
    trained = state["model"] if nested else state
    with torch.random.fork_rng():  # the test process's own random state is left as it was
        torch.manual_seed(seed)
        fresh = parser.get_parsed_content("network_def").state_dict()
    assert set(fresh) == set(trained) and all(fresh[k].shape == trained[k].shape for k in fresh), "same architecture"
    assert any(not torch.equal(fresh[k], trained[k]) for k in fresh), "the fresh weights must differ from the trained"
    if nested:
        state["model"] = fresh
    else:
        state = fresh
    torch.save(state, checkpoint)
    run_bundle(run_id, configs, root, *overrides, timeout=timeout)
    return json.loads((eval_dir / "metrics.json").read_text())
