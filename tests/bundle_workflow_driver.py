"""Drive bundle training configs the way MONAI Label's ``BundleTrainTask`` does, several runs in one process.

Used by ``tests/test_bundle_training_workflows.py`` (one interpreter start for every bundle keeps the
suite fast). Reads a JSON list of steps from the file named by ``argv[1]``; each step is::

    {"configs": [...], "bundle_root": ..., "tiny": {...}, "n_train": 4, "n_val": 2,
     "max_epochs": 1, "resume": false, "run_id": "run", "init": false, "final": false,
     "tracking_uri": null, "experiment_name": null}

and runs ``monai.bundle.run(run_id, config_file=configs, **overrides)`` (``initialize``/``finalize`` off) with BundleTrainTask's overrides: ``bundle_root``, ``train#trainer#max_epochs``,
``train#dataset#data`` / ``validate#dataset#data`` (the first records of the bundle's own default
datalists, as a literal list of dicts), ``device`` (a ``torch.device``) and ``train#handlers`` (the
config's literal handler list), plus the ``tiny`` size overrides. After each step it appends one
JSON line to ``<argv[1]>.rank<RANK>.jsonl`` (one file per process: stdout interleaves) with the
step's checkpoint directory, its newest resume checkpoint and the trainer iteration stored there.
A step ``{"check": "ddp_replicas"}`` trains Soft-Intro under DDP and reports whether the replicas agree. Under ``torchrun`` every rank runs the steps (``multi_gpu_train.json`` in the
configs); ``init``/``final`` switch the config's ``initialize``/``finalize`` on. A ``tracking_uri`` adds
MONAI's own MLflow tracking (``tracking="mlflow"``, as ``--tracking mlflow`` on the command line).
"""

from __future__ import annotations

import copy
import json
import os
import sys

import torch


def _records(parser, key: str, n: int) -> list | None:
    if parser.get(key) is None:
        return None
    data = parser.get_parsed_content(key)
    return [dict(r) for r in list(data)[:n]]


def ddp_replica_check() -> dict:
    """Soft-Intro (two optimisers, ``encode``/``decode`` called outside DDP's ``forward``) under DDP with
    different data per rank: the replicas must stay identical (gradients averaged by ``sync_gradients``)."""
    import torch.distributed as dist

    from monai_genvq.engines import SoftIntroTrainer, init_distributed, unwrap_module, wrap_ddp
    from monai_genvq.networks import SoftIntroResNetVAE

    device = init_distributed()
    torch.manual_seed(0)
    net = wrap_ddp(SoftIntroResNetVAE(image_size=16, channels=(4, 8), latent_dim=4), device)
    base = unwrap_module(net)
    before = torch.cat([p.detach().flatten() for p in base.parameters()]).clone()
    torch.manual_seed(1 + dist.get_rank())
    data = [{"image": torch.rand(2, 1, 16, 16)} for _ in range(2)]
    opt_e = torch.optim.Adam(base.encoder.parameters(), 1e-2)
    opt_d = torch.optim.Adam(base.decoder.parameters(), 1e-2)
    SoftIntroTrainer(device, 1, data, net, opt_e, opt_d).run()
    flat = torch.cat([p.detach().flatten() for p in base.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return {
        "check": "ddp_replicas",
        "replicas_equal": all(torch.equal(gathered[0], g) for g in gathered),
        "trained": not torch.equal(before, flat),
        "rank": dist.get_rank(),
    }


def run_step(step: dict) -> dict:
    if step.get("check") == "ddp_replicas":
        return ddp_replica_check()
    import monai.bundle
    from monai.bundle import ConfigParser

    from monai_genvq.handlers import latest_checkpoint

    configs = [str(c) for c in step["configs"]]
    tiny = dict(step.get("tiny", {}))
    parser = ConfigParser()
    parser.read_config(configs)
    parser["bundle_root"] = step["bundle_root"]
    for k, v in tiny.items():
        parser[k] = v
    train_data = _records(parser, "train#dataset#data", step.get("n_train", 4))
    val_data = _records(parser, "validate#dataset#data", step.get("n_val", 2))
    ckpt_dir = parser.get_parsed_content("ckpt_dir")
    overrides = {
        "bundle_root": step["bundle_root"],
        "train#trainer#max_epochs": step.get("max_epochs", 1),
        "train#dataset#data": train_data,
        "device": torch.device("cpu"),
        "train#handlers": copy.deepcopy(parser.get("train#handlers")),
        "resume": step.get("resume", False),
        **tiny,
    }
    if val_data is not None:
        overrides["validate#dataset#data"] = val_data
    tracking = None
    if step.get("tracking_uri"):
        tracking = "mlflow"
        overrides.update(tracking_uri=step["tracking_uri"], experiment_name=step.get("experiment_name", "genvq"))
        # MONAI's tracking saves the executed config as a JSON artifact, which a torch.device and the in-memory
        # records (numpy arrays) here cannot be; the CLI test (file-based data) covers that artifact
        overrides.update(device="$torch.device('cpu')", save_execute_config=False)
    if "WORLD_SIZE" in os.environ:
        overrides.pop("device")  # the multi-GPU config picks cuda:LOCAL_RANK / cpu itself
    monai.bundle.run(
        run_id=step.get("run_id", "run"),
        # monai.bundle.run ignores None (it would run the defaults): name an id that does not exist to skip
        init_id="initialize" if step.get("init") else "no_initialize",
        final_id="finalize" if step.get("final") else "no_finalize",
        config_file=configs,
        logging_file=step.get("logging_file"),
        tracking=tracking,
        **overrides,
    )
    latest = latest_checkpoint(ckpt_dir)
    iteration = epoch_length = None
    if latest is not None:
        trainer = torch.load(latest, map_location="cpu", weights_only=False)["trainer"]
        iteration, epoch_length = int(trainer["iteration"]), int(trainer["epoch_length"])
    return {
        "configs": configs,
        "ckpt_dir": ckpt_dir,
        "latest": None if latest is None else str(latest),
        "iteration": iteration,
        "epoch_length": epoch_length,
        "files": sorted(os.listdir(ckpt_dir)) if os.path.isdir(ckpt_dir) else [],
        "n_train": len(train_data or []),
        "rank": int(os.environ.get("RANK", 0)),
    }


def main() -> None:
    if os.environ.get("GENVQ_DRIVER_TIMEOUT"):  # debugging a hang: dump every thread's stack, then exit
        import faulthandler

        faulthandler.dump_traceback_later(float(os.environ["GENVQ_DRIVER_TIMEOUT"]), exit=True)
    with open(sys.argv[1]) as f:
        steps = json.load(f)
    out = f"{sys.argv[1]}.rank{os.environ.get('RANK', 0)}.jsonl"  # one file per process: stdout interleaves
    for step in steps:
        result = json.dumps(run_step(step))
        with open(out, "a") as f:
            f.write(result + "\n")
    from monai_genvq.engines import destroy_distributed

    destroy_distributed()
    # every result is on disk; skip the interpreter's C++ teardown, where a gloo rank intermittently aborts
    # ("terminate called without an active exception", SIGABRT) after all steps have finished
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
