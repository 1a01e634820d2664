"""Production training workflows of EVERY bundle in ``bundles/``: MONAI Label ``BundleTrainTask`` overrides,
resume, multi-process (torchrun, gloo) training, MLflow tracking, atomic checkpoints.

The bundles are discovered from ``bundles/``; a new bundle must add its tiny-size overrides to ``TINY``
(and ``STAGES`` when it trains in several stages stacked on ``configs/train.json``) or these tests fail.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_bundle

BUNDLES = sorted(p for p in (REPO / "bundles").iterdir() if (p / "configs").is_dir())
DRIVER = REPO / "tests" / "bundle_workflow_driver.py"
ACDC = {"n_train": 3, "n_test": 1, "shape": [96, 96], "n_slices": 6, "n_frames": 2}
MNMS = {"n_train": 3, "n_val": 1, "n_test": 2, "n_unlabeled": 1, "shape": [96, 96], "n_slices": 6, "n_frames": 2}
HYPER = {"triplets_per_volume": 4, "channels": [4, 8, 8, 8], "gyro_channels": 4}

# smallest sizes that still run each bundle's real pipeline; "n_train" records make 2 iterations per epoch
TINY = {
    "streamlines_vqdiff": (
        {
            "batch_size": 4,
            "latent_channels": 8,
            "num_embeddings": 16,
            "network_def#channels": [8, 16],
            "network_def#num_res_blocks": 1,
            "val_interval": 1,
        },
        8,
    ),
    "vq_quantizers": (
        {
            "channels": [8, 16],
            "latent_channels": 8,
            "num_embeddings": 16,
            "num_res_blocks": 1,
            "batch_size": 4,
            "val_interval": 1,
            "synthetic_acdc": ACDC,
        },
        8,
    ),
    "cardiac_attri_sivae": (
        {
            "channels": [4, 8, 8, 8],
            "latent_dim": 8,
            "batch_size": 2,
            "val_interval": 1,
            "synthetic_acdc": ACDC,
            "synthetic_mnms": MNMS,
        },
        4,
    ),
    "hyperbolic_toy_seg": ({**HYPER, "dataset_dir": "{toy}"}, 2),
    "hyperbolic_brats_seg": ({**HYPER, "dataset_dir": "{brats}", "n_test": 1}, 2),
    "hyperbolic_cryoet_seg": ({**HYPER, "dataset_dir": "{cryoet}", "n_test": 1}, 2),
    "anatomical_prior_seg": (
        {"synthetic_acdc": ACDC, "batch_size": 2, "channels": [4, 8, 8], "latent_dim": 4, "pretrain_iterations": 1},
        4,
    ),
}
# training stages (config stacks) of bundles that train in several runs; each must start from configs/train.json
STAGES = {"anatomical_prior_seg": [["train.json"], ["train.json", "train_image.json"]]}
STANDARD_IDS = (
    "bundle_root",
    "device",
    "network_def",
    "network",
    "train#dataset#data",
    "train#trainer",
    "train#trainer#max_epochs",
    "train#handlers",
    "train#dataloader#num_workers",
    "output_dir",
    "ckpt_dir",
    "log_dir",
    "initialize",
    "run",
    "finalize",
    "training",
    "resume",
    "checkpoint_interval",
    "progress_bar",
    "resume_dict",
)


def stages(bundle: Path) -> list[list[Path]]:
    configs = bundle / "configs"
    assert (configs / "train.json").is_file(), (
        f"{bundle.name} has no configs/train.json (MONAI Label's BundleTrainTask needs it)"
    )
    return [[configs / c for c in stack] for stack in STAGES.get(bundle.name, [["train.json"]])]


def _parser(stack):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(c) for c in stack])
    return parser


@pytest.fixture(scope="module")
def tiny_data(cache_dir, tmp_path_factory) -> dict:
    from monai_genvq.apps.hyperbolic import ensure_hierarchy_toy, generate_synthetic_brats, generate_synthetic_cryoet

    root = tmp_path_factory.mktemp("tiny_volumes")
    return {
        "toy": str(ensure_hierarchy_toy(n_train=2, n_test=1, size=32)),
        "brats": str(generate_synthetic_brats(root / "brats", n_cases=3, shape=(32, 32, 24), seed=1)),
        "cryoet": str(generate_synthetic_cryoet(root / "tomo", n_tomograms=3, shape=(24, 32, 32))),
    }


def _tiny(name: str, data: dict) -> tuple[dict, int]:
    assert name in TINY, f"bundle {name} has no tiny-size overrides registered in TINY"
    overrides, n = TINY[name]
    return {k: (v.format(**data) if isinstance(v, str) else v) for k, v in overrides.items()}, n


def _drive(steps: list[dict], tmp_path: Path, torchrun: int = 0, timeout: int = 400) -> list[dict]:
    spec = tmp_path / f"steps_{time.monotonic_ns()}.json"
    spec.write_text(json.dumps(steps, default=str))
    if torchrun:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={torchrun}",
            str(DRIVER),
            str(spec),
        ]
    else:
        cmd = [sys.executable, str(DRIVER), str(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-8000:]}"
    return [
        json.loads(line)
        for rank in range(max(torchrun, 1))
        for line in Path(f"{spec}.rank{rank}.jsonl").read_text().splitlines()
    ]


# ----------------------------------------------------------------------------- static: every bundle has the ids


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_training_configs_have_production_ids(bundle):
    assert (bundle / "configs" / "multi_gpu_train.json").is_file(), (
        f"{bundle.name}: configs/multi_gpu_train.json missing"
    )
    multi = json.loads((bundle / "configs" / "multi_gpu_train.json").read_text())
    for key in (
        "device",
        "network",
        "train#sampler",
        "train#dataloader#sampler",
        "train#trainer#train_handlers",
        "finalize",
    ):
        assert key in multi, f"{bundle.name}/multi_gpu_train.json lacks {key}"
    for stack in stages(bundle):
        parser = _parser(stack)
        for key in STANDARD_IDS:
            assert parser.get(key) is not None, f"{[c.name for c in stack]}: id {key!r} missing"
        assert parser["train"]["trainer"]["max_epochs"] == "@max_epochs"
        handlers = parser.get("train#handlers")
        assert isinstance(handlers, list) and all(isinstance(h, dict) for h in handlers), (
            "train#handlers must be a literal list"
        )
        targets = [h.get("_target_", "") for h in handlers]
        assert "monai_genvq.handlers.ResumeFromLatest" in targets
        assert "ignite.handlers.ProgressBar" in targets
        assert any(
            t.endswith("TensorBoardStatsHandler") and h.get("log_dir") == "@log_dir" for t, h in zip(targets, handlers)
        )
        all_targets = json.dumps(parser.get())
        assert '"CheckpointSaver"' not in all_targets, "use monai_genvq.handlers.AtomicCheckpointSaver (atomic writes)"


# ----------------------------------------------------------------------------- MONAI Label overrides + resume wiring


@pytest.mark.slow
def test_every_bundle_trains_with_bundle_train_task_overrides_and_resumes(tiny_data, tmp_path):
    """BundleTrainTask's overrides (data lists, max_epochs, device, literal handlers) on every training stage,
    2 iterations, then ``resume=True`` with one more epoch continues at iteration 2 and ends at 4. The first run
    of each stage is tracked with MONAI's own MLflow settings (``--tracking mlflow``): a finished run logging a
    finite train loss at every iteration."""
    from mlflow.tracking import MlflowClient

    uri = "sqlite:///" + str(tmp_path / "mlruns.db")
    steps = []
    for bundle in BUNDLES:
        tiny, n = _tiny(bundle.name, tiny_data)
        root = tmp_path / bundle.name
        for i, stack in enumerate(stages(bundle)):
            base = {
                "configs": [str(c) for c in stack],
                "bundle_root": str(root),
                "tiny": tiny,
                "n_train": n,
                "n_val": 2,
            }
            tracked = {"tracking_uri": uri, "experiment_name": f"{bundle.name}_{i}"}
            steps += [{**base, **tracked, "max_epochs": 1}, {**base, "max_epochs": 2, "resume": True}]
    results = _drive(steps, tmp_path)
    assert len(results) == len(steps)
    client = MlflowClient(tracking_uri=uri)
    for step, first in zip(steps[::2], results[::2]):
        runs = client.search_runs([client.get_experiment_by_name(step["experiment_name"]).experiment_id])
        assert len(runs) == 1 and runs[0].info.status == "FINISHED", (first["configs"], runs)
        history = client.get_metric_history(runs[0].info.run_id, "train_loss")
        assert len(history) == first["epoch_length"] and all(math.isfinite(m.value) for m in history), (
            first["configs"],
            history,
        )
    for first, resumed in zip(results[::2], results[1::2]):
        where = first["configs"]
        n_iter = first["epoch_length"]  # iterations per epoch of the user's data list (1 or 2 at these sizes)
        assert first["n_train"] > 0 and n_iter >= 1, where
        assert first["iteration"] == n_iter, (where, first)  # 1 epoch; the resume checkpoint at its end
        assert resumed["iteration"] == 2 * n_iter, (where, resumed)  # continued, not restarted (that would save n_iter)
        assert sorted(f for f in resumed["files"] if f.startswith("resume_checkpoint_")) == sorted(
            [f"resume_checkpoint_{n_iter}.pt", f"resume_checkpoint_{2 * n_iter}.pt"]  # the last two are kept
        )
        state = torch.load(resumed["latest"], map_location="cpu", weights_only=True)  # as the resume loads it
        assert {"model", "trainer"} <= set(state)
        for name in resumed["files"]:  # every checkpoint written (atomically) loads, weights only
            if name.endswith(".pt"):
                torch.load(Path(resumed["ckpt_dir"]) / name, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- multi-process (torchrun, gloo)


@pytest.mark.slow
def test_every_bundle_trains_under_torchrun_with_two_cpu_processes(tiny_data, tmp_path):
    steps = []
    for bundle in BUNDLES:
        tiny, n = _tiny(bundle.name, tiny_data)
        for stack in stages(bundle):
            configs = [str(c) for c in stack] + [str(bundle / "configs" / "multi_gpu_train.json")]
            # 2 processes x 2 records per batch... each rank sees half of 2n records: 2 iterations
            steps.append(
                {
                    "configs": configs,
                    "bundle_root": str(tmp_path / bundle.name),
                    "tiny": tiny,
                    "n_train": 2 * n,
                    "n_val": 2,
                    "max_epochs": 1,
                    "init": True,
                }
            )
    results = _drive(steps + [{"check": "ddp_replicas"}], tmp_path, torchrun=2)
    checks = [x for x in results if x.get("check") == "ddp_replicas"]
    assert len(checks) == 2 and all(c["replicas_equal"] and c["trained"] for c in checks), checks
    results = [x for x in results if "check" not in x]
    by_rank = {r: [x for x in results if x["rank"] == r] for r in (0, 1)}
    assert len(by_rank[0]) == len(by_rank[1]) == len(steps)
    for res in by_rank[0]:
        # DistributedSampler: each rank trains on half of the records, so an epoch is half as long
        assert res["iteration"] == res["epoch_length"] >= 1 and res["n_train"] > 0, res
        assert "model_final.pt" in res["files"] or "model.pt" in res["files"], res
    for stack_res in by_rank[0]:
        logs = Path(stack_res["ckpt_dir"]).parent / "logs"
        events = list(logs.glob("events.out.tfevents.*"))  # events.out.tfevents.<time>.<host>.<pid>.<n>
        assert events and len({e.name.split(".")[-2] for e in events}) == 1, f"only rank 0 writes TensorBoard: {events}"


# ----------------------------------------------------------------------------- resume after SIGKILL (in depth)


def _cli(configs, root, *args):
    return [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        str([str(c) for c in configs]),
        "--bundle_root",
        str(root),
        *args,
    ]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_reaches_the_same_final_iteration_tracked_by_mlflow(cache_dir, tmp_path):
    """Kill -9 after a checkpoint exists; ``--resume true`` continues from it to max_epochs * epoch_length
    iterations. The resumed run is tracked with MONAI's own MLflow settings (``--tracking mlflow``): a finished
    run with one finite train-loss value per iteration it trained."""
    from monai_genvq.handlers import latest_checkpoint

    configs = [REPO / "bundles" / "vq_quantizers" / "configs" / "train.json"]
    tiny = TINY["vq_quantizers"][0]
    args = [
        "--max_epochs",
        "2",
        "--train#trainer#epoch_length",
        "15",
        "--checkpoint_interval",
        "3",
        "--val_interval",
        "10",
    ]
    for k, v in tiny.items():
        if k != "val_interval":
            args += [f"--{k}", json.dumps(v)]
    ckpt_dir = tmp_path / "outputs" / "vanilla" / "models"
    proc = subprocess.Popen(
        _cli(configs, tmp_path, *args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            latest = latest_checkpoint(ckpt_dir)
            if latest is not None and int(latest.stem.rsplit("_", 1)[1]) >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"training ended before it could be killed:\n{proc.stderr.read().decode()[-3000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(latest_checkpoint(ckpt_dir).stem.rsplit("_", 1)[1])
    assert 6 <= killed_at < 30 and "model_final.pt" not in os.listdir(ckpt_dir)
    for f in os.listdir(ckpt_dir):  # a kill never leaves a corrupt checkpoint (a hidden temporary file at most)
        if f.endswith(".pt") and not f.startswith("."):
            torch.load(ckpt_dir / f, map_location="cpu", weights_only=True)

    mlflow = pytest.importorskip("mlflow")
    uri = "sqlite:///" + str(
        tmp_path / "mlruns.db"
    )  # MLflow 3 has no file store (mlflow-skinny + sqlalchemy + alembic)
    # MONAI's defaults log from_engine(['loss'], first=True): a float because our trainers decollate as MONAI's do
    tracking = ["--tracking", "mlflow", "--tracking_uri", uri, "--experiment_name", "genvq"]
    out = run_bundle("training", configs, tmp_path, *args, "--resume", "true", *tracking)
    assert f"resumed from {ckpt_dir / f'resume_checkpoint_{killed_at}.pt'} at iteration {killed_at}" in out
    final = latest_checkpoint(ckpt_dir)
    state = torch.load(final, map_location="cpu", weights_only=True)
    assert final.name == "resume_checkpoint_30.pt" and state["trainer"]["iteration"] == 30  # max_epochs * iterations
    assert state["lr_scheduler"]["last_epoch"] == 30  # the scheduler resumed too (stepped once per iteration)
    assert "optimizer" in state and state["optimizer"]["state"]
    final_weights = torch.load(ckpt_dir / "model_final.pt", map_location="cpu", weights_only=True)["model"]
    for k, v in state["model"].items():
        torch.testing.assert_close(final_weights[k], v)

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("genvq").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = client.get_metric_history(runs[0].info.run_id, "train_loss")
    assert len(history) == 30 - killed_at and all(math.isfinite(m.value) for m in history)  # per resumed iteration


def _trainer_cases():
    """One tiny instance of every trainer of the package (core engines and the apps'), with its loss-term ``output_transform``."""
    from monai_genvq import engines as E
    from monai_genvq import networks as N
    from monai_genvq.apps import anatomical_prior as AP
    from monai_genvq.apps import hyperbolic as H

    def autoencoder(bottleneck):
        net = N.ResNetAutoencoder(2, 1, channels=(8, 16), latent_channels=4, bottleneck=bottleneck)
        return E.AutoencoderTrainer(
            "cpu", 1, [{"image": torch.rand(2, 1, 16, 16)}], net, torch.optim.Adam(net.parameters()), torch.nn.MSELoss()
        ), E.loss_terms

    def prior():
        stage1 = N.VQStage1(
            N.ResNetAutoencoder(2, 1, channels=(8, 16), latent_channels=4, bottleneck=N.VectorQuantizer(16, 4))
        )
        net = N.GatedPixelCNNPrior(16, channels=8, num_layers=2)
        return E.CodePriorTrainer(
            "cpu", 1, [{"image": torch.rand(2, 1, 16, 16)}], net, torch.optim.Adam(net.parameters()), stage1=stage1
        ), E.prior_loss_terms

    def vae():
        net = N.ConvVAE(image_size=32, channels=(8, 8))
        return E.VAETrainer(
            "cpu", 1, [{"image": torch.rand(2, 1, 32, 32)}], net, torch.optim.Adam(net.parameters())
        ), E.vae_loss_terms

    def soft_intro():
        net = N.SoftIntroResNetVAE(image_size=32, channels=(8, 16), latent_dim=8)
        return E.SoftIntroTrainer(
            "cpu",
            1,
            [{"image": torch.rand(2, 1, 32, 32)}],
            net,
            torch.optim.Adam(net.encoder.parameters()),
            torch.optim.Adam(net.decoder.parameters()),
        ), E.vae_loss_terms

    def hyperbolic():
        net = H.HyperbolicVAE(patch_size=10, latent_dim=2, channels=(4, 8, 8, 8), gyro_channels=4)
        batch = {k: torch.rand(2, 1, 10, 10, 10) for k in ("parent", "child", "negative")}
        return H.HyperbolicVAETrainer(
            "cpu", 1, [batch], net, torch.optim.Adam(net.parameters())
        ), H.hyperbolic_loss_terms

    def label_prior():
        net = AP.LabelPriorVAE(2, 3, 16, (4,), 2)
        return AP.LabelPriorTrainer(
            "cpu", 1, [{"label": torch.randint(0, 3, (2, 1, 16, 16))}], net, torch.optim.Adam(net.parameters())
        ), AP.anatomical_prior_loss_terms

    def image_model():
        net = AP.ImageSegmentationVAE(AP.LabelPriorVAE(2, 3, 16, (4,), 2))
        return AP.ImageModelTrainer(
            "cpu",
            2,
            [{"image": torch.rand(2, 1, 16, 16)}],
            net,
            torch.optim.Adam(net.trainable_parameters()),
            pretrain_iterations=1,
        ), AP.anatomical_prior_loss_terms

    return {
        "autoencoder_vq": lambda: autoencoder(N.VectorQuantizer(16, 4)),
        "autoencoder_ae": lambda: autoencoder(N.IdentityBottleneck()),
        "code_prior": prior,
        "vae": vae,
        "soft_intro": soft_intro,
        "hyperbolic": hyperbolic,
        "label_prior": label_prior,
        "image_model": image_model,
    }


@pytest.mark.parametrize("case", list(_trainer_cases()))
def test_every_trainer_decollates_like_monai_so_tracking_defaults_log_the_loss(case):
    """MONAI's ``--tracking mlflow`` logs ``from_engine(['loss'], first=True)(engine.state.output)``, a float only
    for decollated outputs (MONAI's trainer default). Every trainer decollates: per-sample dicts with the batch
    scalars replicated (None terms too), and our loss-term transforms read the same values from that list."""
    from monai.handlers import from_engine

    torch.manual_seed(0)
    trainer, terms_of = _trainer_cases()[case]()
    trainer.run()
    out = trainer.state.output
    assert isinstance(out, list) and len(out) >= 2 and all(isinstance(o, dict) for o in out), type(out)
    loss = from_engine(["loss"], first=True)(out)
    assert isinstance(loss, float) and math.isfinite(loss), loss
    terms = terms_of(out)
    assert terms["loss"] == loss and all(math.isfinite(v) for v in terms.values())
    for key, value in terms.items():  # batch-level scalars replicated into every item
        assert all(o[key] == value for o in out), key
    for key, value in out[0].items():  # None terms stay None in every item (not dropped, not padded)
        if value is None:
            assert all(o[key] is None for o in out), key
    assert isinstance(trainer.state.batch, list)  # the batch is decollated too, as in SupervisedTrainer


def test_resume_handler_unit_behaviour(tmp_path):
    """No-op without checkpoints, exact state round trip, clear error naming a corrupt file."""
    from ignite.engine import Engine

    from monai_genvq.handlers import CorruptCheckpointError, ResumeFromLatest

    def make(resume, max_epochs):
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        def step(engine, batch):
            opt.zero_grad()
            loss = (net(batch) ** 2).mean()
            loss.backward()
            opt.step()
            return loss.item()

        engine = Engine(step)
        handler = ResumeFromLatest(tmp_path, {"model": net, "optimizer": opt}, resume=resume, save_interval=3)
        handler.attach(engine)
        return engine, net, handler

    data = [torch.full((2, 3), float(i)) for i in range(4)]
    engine, _, handler = make(resume=True, max_epochs=1)  # resume requested, nothing saved yet: fresh start
    engine.run(data, max_epochs=1)
    assert handler.loaded_from is None and engine.state.iteration == 4
    assert sorted(os.listdir(tmp_path)) == ["resume_checkpoint_3.pt", "resume_checkpoint_4.pt"]  # the last two saves

    engine, net, handler = make(resume=True, max_epochs=2)
    engine.run(data, max_epochs=2)
    assert handler.loaded_from.name == "resume_checkpoint_4.pt" and engine.state.iteration == 8

    straight, straight_net, _ = make(resume=False, max_epochs=2)  # uninterrupted run: same weights
    for f in tmp_path.iterdir():
        f.rename(tmp_path / ("kept_" + f.name))
    straight.run(data, max_epochs=2)
    torch.testing.assert_close(straight_net.weight, net.weight)

    (tmp_path / "resume_checkpoint_99.pt").write_bytes(b"truncated")
    engine, _, _ = make(resume=True, max_epochs=30)
    with pytest.raises(CorruptCheckpointError, match="resume_checkpoint_99.pt"):
        engine.run(data, max_epochs=30)


def test_distributed_helpers_single_process_and_atomic_saver(tmp_path):
    """Outside torchrun the DDP helpers are no-ops; rank filtering keeps every handler on rank 0 and drops the
    writers elsewhere; MONAI's CheckpointSaver made atomic writes loadable files through a temporary file."""
    from ignite.engine import Engine
    from monai.handlers import StatsHandler, ValidationHandler

    from monai_genvq.engines import rank_zero_handlers, sync_gradients, unwrap_module, wrap_ddp
    from monai_genvq.handlers import AtomicCheckpointSaver, ResumeFromLatest

    net = torch.nn.Linear(2, 1)
    assert wrap_ddp(net) is net and unwrap_module(torch.nn.DataParallel(net)) is net
    net(torch.ones(1, 2)).sum().backward()
    grad = net.weight.grad.clone()
    sync_gradients(net)  # not DDP: untouched
    torch.testing.assert_close(net.weight.grad, grad)

    handlers = [StatsHandler(), ResumeFromLatest(tmp_path, {"model": net}), ValidationHandler(1, validator=None)]
    assert rank_zero_handlers(handlers) == handlers
    os.environ["RANK"] = "1"  # as torchrun sets it before the process group opens
    try:
        kept = rank_zero_handlers(handlers)
    finally:
        del os.environ["RANK"]
    assert [type(h).__name__ for h in kept] == ["ResumeFromLatest", "ValidationHandler"]

    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_final=True, final_filename="model_final.pt")
    assert saver._final_checkpoint.save_handler._atomic
    engine = Engine(lambda e, b: None)
    saver.attach(engine)
    engine.run([0, 1], max_epochs=1)
    saved = torch.load(tmp_path / "model_final.pt", weights_only=True)  # one object: its state dict itself
    torch.testing.assert_close(saved["weight"], net.weight.detach())
    assert not [f for f in os.listdir(tmp_path) if f.startswith(("tmp", "."))], "no temporary file left behind"
