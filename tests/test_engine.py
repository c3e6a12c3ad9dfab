import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from modules.config import load_config
from modules.engine.checkpoint import load_checkpoint, save_checkpoint
from modules.engine.loading import GlobalBatchSampler
from modules.engine.optimizers import lr_factor_fn
from modules.engine.trainer import Trainer, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "configs", "toy", "regression.yaml")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}


def toy_cfg(*overrides):
    return load_config(TOY, ["training.progress=false", *overrides])


def weights(path):
    return load_checkpoint(path)["model"]


def assert_same_weights(a, b, exact=True):
    assert a.keys() == b.keys()
    for key in a:
        if exact:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_training_loss_falls_and_folder_layout(tmp_path):
    cfg = toy_cfg("training.max_epochs=6")
    exp = tmp_path / "exp"
    trainer = Trainer(cfg, str(exp))
    before = trainer.validate()["val/loss"]
    metrics = trainer.fit()
    assert metrics["val/loss"] < 0.5 * before
    assert (exp / "config.yaml").exists() and (exp / "summary").is_dir()
    names = set(os.listdir(exp / "checkpoints"))
    assert {"latest.pt", "best.pt", "epoch_1.pt", "epoch_6.pt"} <= names
    state = load_checkpoint(str(exp / "checkpoints" / "latest.pt"), "toy_mlp")
    assert state["epoch"] == 6 and state["step"] == 6 * (512 // 32)
    assert not [n for n in os.listdir(exp / "checkpoints") if n.startswith(".tmp")]


def test_resume_in_process_matches_uninterrupted(tmp_path):
    """Stop at step 21 (mid-epoch), resume from checkpoint at step 21: same weights as one run."""
    common = ("experiment.deterministic=true", "model.dropout=0.1", "training.ckpt_every=7", "training.max_epochs=3")
    train(toy_cfg(*common), str(tmp_path / "full"))
    train(toy_cfg(*common, "training.max_steps=21"), str(tmp_path / "part"))
    part = load_checkpoint(str(tmp_path / "part" / "checkpoints" / "latest.pt"))
    assert part["step"] == 21 and part["batch_in_epoch"] == 5
    train(toy_cfg(*common), str(tmp_path / "part"))
    assert_same_weights(weights(tmp_path / "full" / "checkpoints" / "latest.pt"),
                        weights(tmp_path / "part" / "checkpoints" / "latest.pt"))


def run_full_then_killed_and_resumed(cfg_path, args, tmp_path):
    """Train `full` uninterrupted; train `killed`, SIGKILL it once a checkpoint exists, rerun it (resume).
    Returns the two final checkpoints (full, resumed)."""
    run = [sys.executable, "train.py", "-cfg", cfg_path, "--exp_root", str(tmp_path)]
    subprocess.run(run + ["-exp_name", "full"] + args, cwd=ROOT, env=ENV, check=True, capture_output=True)
    latest = tmp_path / "killed" / "checkpoints" / "latest.pt"
    proc = subprocess.Popen(run + ["-exp_name", "killed"] + args, cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not latest.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_step = load_checkpoint(str(latest))["step"]
    assert 0 < killed_step < 128
    subprocess.run(run + ["-exp_name", "killed"] + args, cwd=ROOT, env=ENV, check=True, capture_output=True)
    return load_checkpoint(str(tmp_path / "full" / "checkpoints" / "latest.pt")), load_checkpoint(str(latest))


def test_resume_after_sigkill_matches_uninterrupted(tmp_path):
    args = ["experiment.deterministic=true", "model.dropout=0.1", "model.hidden=256", "data.num_train=2048",
            "training.ckpt_every=10", "training.max_epochs=2", "training.progress=false"]
    full, resumed = run_full_then_killed_and_resumed(TOY, args, tmp_path)
    assert_same_weights(full["model"], resumed["model"])


def run_single_and_two_ranks(cfg_path, args, tmp_path):
    """Train `single` in one process and `ddp` with torchrun over 2 CPU ranks; -> their final checkpoints."""
    subprocess.run([sys.executable, "train.py", "-cfg", cfg_path, "--exp_root", str(tmp_path), "-exp_name", "single"]
                   + args, cwd=ROOT, env=ENV, check=True, capture_output=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = subprocess.run(torchrun + ["train.py", "-cfg", cfg_path, "--exp_root", str(tmp_path), "-exp_name", "ddp"]
                          + args, cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return (load_checkpoint(str(tmp_path / "single" / "checkpoints" / "latest.pt")),
            load_checkpoint(str(tmp_path / "ddp" / "checkpoints" / "latest.pt")))


def test_ddp_two_processes_match_single_process(tmp_path):
    """With dropout on: the masks are drawn per sample (modules/engine/sample_rng.py), so 2 ranks of 16
    draw what 1 rank of 32 draws."""
    args = ["training.max_steps=24", "training.batch_size=32", "data.noise=0.05", "training.progress=false",
            "experiment.deterministic=true", "model.dropout=0.1", "training.log_every=4"]
    single, ddp = run_single_and_two_ranks(TOY, args, tmp_path)
    assert_same_weights(single["model"], ddp["model"], exact=False)
    state = ddp
    assert state["world_size"] == 2
    assert state["rank_weight_spread"] == 0.0        # both ranks ended with identical weights


def test_global_batches_split_over_ranks():
    single = list(GlobalBatchSampler(64, 16, seed=3))
    rank0 = list(GlobalBatchSampler(64, 16, seed=3, rank=0, world_size=2))
    rank1 = list(GlobalBatchSampler(64, 16, seed=3, rank=1, world_size=2))
    for whole, a, b in zip(single, rank0, rank1):
        assert whole == a + b
    skipped = GlobalBatchSampler(64, 16, seed=3)
    skipped.set_epoch(0, skip_batches=2)
    assert list(skipped) == single[2:]


def test_step_schedule_and_warmup():
    f = lr_factor_fn({"name": "step", "unit": "epoch", "every": 2, "gamma": 0.5, "warmup_steps": 0}, 10, 100)
    assert [f(s) for s in (0, 19, 20, 39, 40)] == [1, 1, 0.5, 0.5, 0.25]
    g = lr_factor_fn({"name": "cosine", "unit": "step", "every": 0, "gamma": 1.0, "warmup_steps": 4}, 10, 100)
    assert g(0) == pytest.approx(0.25) and g(100) == pytest.approx(0.0, abs=1e-12)


def test_checkpoint_from_another_model_is_refused_before_writing(tmp_path):
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    save_checkpoint(str(exp / "checkpoints" / "latest.pt"), {"model": {}, "model_name": "pointnet_seg"})
    proc = subprocess.run([sys.executable, "train.py", "-cfg", TOY, "--exp_root", str(tmp_path), "-exp_name", "exp"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "holds a 'pointnet_seg' model" in proc.stderr and "toy_mlp" in proc.stderr
    assert sorted(os.listdir(exp)) == ["checkpoints"]
    assert sorted(os.listdir(exp / "checkpoints")) == ["latest.pt"]


def test_exit_after_checkpoints_and_exits_3(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "-cfg", TOY, "--exp_root", str(tmp_path), "-exp_name", "q",
                           "training.exit_after_s=0.000001", "training.progress=false"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert load_checkpoint(str(tmp_path / "q" / "checkpoints" / "latest.pt"))["step"] == 1
    assert (tmp_path / "q" / "REQUEUE").exists()


# ----------------------------------------------------------------------------- several optimizers, accumulation

GAN = os.path.join(ROOT, "configs", "toy", "gan.yaml")


def gan_cfg(*overrides):
    return load_config(GAN, ["training.progress=false", *overrides])


def test_gan_generator_learns_the_gaussian(tmp_path, single_thread):
    """Manual optimisation: a generator and a critic with their own optimizers; the generated
    distribution ends near N(3, 0.5^2) (1-D Wasserstein distance, mean and std errors)."""
    trainer = Trainer(gan_cfg("training.max_epochs=30", "experiment.deterministic=true"), str(tmp_path / "gan"))
    before = trainer.validate()
    after = trainer.fit()
    assert before["val/loss"] > 2.0
    assert after["val/loss"] < 0.2 and after["val/mean_error"] < 0.1 and after["val/std_error"] < 0.15
    state = load_checkpoint(str(tmp_path / "gan" / "checkpoints" / "latest.pt"))
    assert set(state["optimizers"]) == {"generator", "critic"} and set(state["schedulers"]) == {"generator", "critic"}


def test_each_optimizer_takes_its_own_settings(tmp_path):
    trainer = Trainer(gan_cfg("task.optimizers.critic.lr=2e-4", "task.optimizers.generator.betas=[0.0,0.9]",
                              "training.weight_decay=0.01"), str(tmp_path / "gan"))
    critic, generator = trainer.optim.optimizers["critic"], trainer.optim.optimizers["generator"]
    assert critic.param_groups[0]["lr"] == pytest.approx(2e-4) and generator.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert generator.param_groups[0]["betas"] == (0.0, 0.9) and critic.param_groups[0]["betas"] == (0.5, 0.999)
    assert critic.param_groups[0]["weight_decay"] == 0.01     # null in the task section: the training value
    n_generator = sum(p.numel() for p in trainer.model.generator.parameters())
    assert sum(p.numel() for g in generator.param_groups for p in g["params"]) == n_generator


def test_gan_resume_after_sigkill_matches_uninterrupted(tmp_path):
    args = ["experiment.deterministic=true", "data.num_train=2048", "training.max_epochs=4", "training.ckpt_every=5",
            "training.progress=false", "training.val_every=0"]
    full, resumed = run_full_then_killed_and_resumed(GAN, args, tmp_path)
    assert_same_weights(full["model"], resumed["model"])
    for name in ("generator", "critic"):        # the optimizer moments too
        a, b = full["optimizers"][name]["state"], resumed["optimizers"][name]["state"]
        assert all(torch.equal(a[k]["exp_avg"], b[k]["exp_avg"]) for k in a)


def test_gan_two_ranks_match_one(tmp_path):
    args = ["training.max_steps=24", "training.batch_size=32", "training.progress=false", "experiment.deterministic=true"]
    single, ddp = run_single_and_two_ranks(GAN, args, tmp_path)
    single = single["model"]
    assert_same_weights(single, ddp["model"], exact=False)
    assert ddp["world_size"] == 2 and ddp["rank_weight_spread"] == 0.0


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    """accumulate=2 over batches of 16 takes the same optimizer steps as batches of 32 (the sampler's
    global batches are consecutive slices of one permutation, the loss a mean)."""
    common = ("experiment.deterministic=true", "training.max_epochs=2", "data.noise=0.0")
    train(toy_cfg(*common, "training.batch_size=32"), str(tmp_path / "big"))
    train(toy_cfg(*common, "training.batch_size=16", "training.accumulate=2"), str(tmp_path / "accumulated"))
    big = load_checkpoint(str(tmp_path / "big" / "checkpoints" / "latest.pt"))
    acc = load_checkpoint(str(tmp_path / "accumulated" / "checkpoints" / "latest.pt"))
    assert acc["step"] == 2 * big["step"] and acc["calls"]["main"] == 2 * big["calls"]["main"]
    assert_same_weights(big["model"], acc["model"], exact=False)


def test_resume_in_the_middle_of_an_accumulation_is_exact(tmp_path):
    common = ("experiment.deterministic=true", "model.dropout=0.1", "training.accumulate=2", "training.max_epochs=2")
    train(toy_cfg(*common), str(tmp_path / "full"))
    train(toy_cfg(*common, "training.max_steps=11"), str(tmp_path / "part"))
    part = load_checkpoint(str(tmp_path / "part" / "checkpoints" / "latest.pt"))
    assert part["step"] == 11 and part["grads"]          # an odd step: half an accumulation is stored
    train(toy_cfg(*common), str(tmp_path / "part"))
    assert_same_weights(weights(tmp_path / "full" / "checkpoints" / "latest.pt"),
                        weights(tmp_path / "part" / "checkpoints" / "latest.pt"))


# ----------------------------------------------------------------------------- shared runs, signals, resume

def test_per_sample_dropout_does_not_depend_on_the_batch_split():
    from modules.engine.sample_rng import per_sample_dropout
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 8),
                                torch.nn.Dropout(0.3)).train()
    x, seeds = torch.randn(6, 3), [11, 12, 13, 14, 15, 16]
    with per_sample_dropout(model, seeds) as masks:
        whole = model(x)
    halves = []
    for part in (slice(0, 2), slice(2, 6)):
        with per_sample_dropout(model, seeds[part]):
            halves.append(model(x[part]))
    torch.testing.assert_close(whole, torch.cat(halves))
    assert masks.fallbacks == 0 and (whole == 0).any()
    with per_sample_dropout(model, seeds):
        assert not torch.equal(model(x), model(x))        # the second call of a layer draws new masks
    assert "forward" not in vars(model[1])                 # the layers are restored


def scalars(summary_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(summary_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_has_each_step_once_after_resumes(tmp_path):
    """A run killed after logging steps it had not checkpointed, resumed twice (once with nothing to do):
    TensorBoard shows each step once (SummaryWriter purge_step at the resumed step + 1)."""
    common = ("training.log_every=1", "training.ckpt_every=4", "training.val_every=4", "training.max_epochs=100")
    exp = tmp_path / "exp"
    latest = exp / "checkpoints" / "latest.pt"
    train(toy_cfg(*common, "training.max_steps=8"), str(exp))
    saved = latest.read_bytes()                           # the checkpoint at step 8
    train(toy_cfg(*common, "training.max_steps=11"), str(exp))
    latest.write_bytes(saved)                             # as if killed at step 11 before saving
    train(toy_cfg(*common, "training.max_steps=14"), str(exp))
    train(toy_cfg(*common, "training.max_steps=14"), str(exp))   # nothing to do
    steps = scalars(exp / "summary")
    assert steps["train/loss"] == list(range(1, 15))
    assert steps["val/loss"] == [4, 8, 12, 14]


def test_stale_temporaries_and_locks_are_cleaned_up(tmp_path, capsys):
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "checkpoints" / ".tmp-abc123.pt").write_bytes(b"half a checkpoint")
    (exp / "LOCK").write_text("pid: 999999999\nhost: " + __import__("socket").gethostname() + "\n")  # dead pid
    train(toy_cfg("training.max_steps=2"), str(exp))
    out = capsys.readouterr().out
    assert "removed 1 unfinished temporary file" in out and "stale lock of pid 999999999" in out
    assert sorted(os.listdir(exp)) == ["checkpoints", "config.yaml", "summary"]      # LOCK released at the end
    assert not [n for n in os.listdir(exp / "checkpoints") if n.startswith(".tmp")]


def test_resume_says_where_and_refuses_or_follows_a_changed_config(tmp_path, capsys):
    from modules.utils import ShapeLabError
    exp = str(tmp_path / "exp")
    train(toy_cfg("training.max_steps=5"), exp)
    with pytest.raises(ShapeLabError, match=r"training.lr: 0.003 -> 0.01"):
        train(toy_cfg("training.max_steps=10", "training.lr=0.01"), exp)
    capsys.readouterr()
    train(toy_cfg("training.max_steps=10", "training.lr=0.01"), exp, resume_config="stored")
    assert "resuming from step 5 (epoch 0, batch 5 of 16)" in capsys.readouterr().out
    state = load_checkpoint(os.path.join(exp, "checkpoints", "latest.pt"))
    assert state["step"] == 10 and state["config"]["training"]["lr"] == pytest.approx(0.003)
    train(toy_cfg("training.max_steps=12", "training.lr=0.01"), exp, resume_config="new")
    state = load_checkpoint(os.path.join(exp, "checkpoints", "latest.pt"))
    assert state["config"]["training"]["lr"] == pytest.approx(0.01)
    assert state["optimizers"]["main"]["param_groups"][0]["lr"] == pytest.approx(0.003)   # restored optimizer


def test_best_metric_is_checked_before_anything_is_written(tmp_path):
    from modules.utils import ShapeLabError
    with pytest.raises(ShapeLabError, match="best_metric 'val/acc'.*val/loss, val/mae"):
        Trainer(toy_cfg("training.best_metric=val/acc"), str(tmp_path / "exp"))
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_ctrl_c_saves_latest_and_exits_130(tmp_path):
    run = [sys.executable, "train.py", "-cfg", TOY, "--exp_root", str(tmp_path), "-exp_name", "c",
           "training.max_epochs=100000", "training.ckpt_every=100000", "training.save_epoch_every=0",
           "training.progress=false"]
    proc = subprocess.Popen(run, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "c" / "checkpoints" / "best.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "rerun the same command to resume" in err
    step = load_checkpoint(str(tmp_path / "c" / "checkpoints" / "latest.pt"))["step"]
    assert step > 0 and not (tmp_path / "c" / "LOCK").exists()
    again = subprocess.run(run[:-4] + ["training.max_steps=%d" % (step + 3), "training.progress=false"],
                           cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert again.returncode == 0 and f"resuming from step {step} (epoch " in again.stdout


@pytest.mark.slow
def test_sigusr1_to_torchrun_writes_latest_and_requeue(tmp_path):
    """What scripts/slurm/train.sbatch does: torchrun --signals-to-handle ...,SIGUSR1 forwards SIGUSR1 to both
    ranks, which finish the step, save latest.pt, write REQUEUE and exit 3."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", "--shutdown-timeout", "60"]
    proc = subprocess.Popen(torchrun + ["train.py", "-cfg", TOY, "--exp_root", str(tmp_path), "-exp_name", "q",
                                        "training.max_epochs=100000", "training.progress=false"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not (tmp_path / "q" / "checkpoints" / "best.pt").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=180)
    assert (tmp_path / "q" / "REQUEUE").exists(), err[-3000:]
    assert "stopped by SIGUSR1" in err and "exit code 3" in err
    state = load_checkpoint(str(tmp_path / "q" / "checkpoints" / "latest.pt"))
    assert state["world_size"] == 2 and state["step"] > 0


def test_sbatch_quotes_arguments_and_handles_unlimited(tmp_path):
    """scripts/slurm/train.sbatch with stub squeue/scontrol/srun: overrides with spaces and shell characters
    arrive as single arguments; a time of UNLIMITED sets no exit_after_s; 1-02:00:00 sets 93000 s - margin."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "squeue").write_text("#!/bin/bash\necho \"$LEFT\"\n")
    (stubs / "scontrol").write_text("#!/bin/bash\necho node1\n")
    (stubs / "srun").write_text('#!/bin/bash\nshift 2\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$ARGS_OUT"\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    weird = "data.root=/tmp/my data/$(touch pwned);x"
    for left, expected in (("UNLIMITED", None), ("1-02:00:00", 93600 - 600)):
        args_out = tmp_path / f"args_{left}"
        env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "LEFT": left, "ARGS_OUT": str(args_out),
               "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "node1", "SLURM_NNODES": "1", "SLURM_SUBMIT_DIR": ROOT}
        proc = subprocess.run(["bash", "scripts/slurm/train.sbatch", "configs/a b.yaml", "exp;1", weird],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        args = args_out.read_text().splitlines()
        i = args.index("train.py")
        tail = args[i:]
        assert tail[:5] == ["train.py", "-cfg", "configs/a b.yaml", "-exp_name", "exp;1"]
        assert tail[-1] == weird and not os.path.exists(os.path.join(ROOT, "pwned"))
        exits = [a for a in tail if a.startswith("training.exit_after_s=")]
        assert exits == ([] if expected is None else [f"training.exit_after_s={expected}"])
        assert "SIGUSR1" in ",".join(args[:i])
