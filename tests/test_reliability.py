"""Crash-safe, resumable training and clear errors (docs/reliability.md).

A real `rbm train` subprocess is killed (SIGKILL) or interrupted (SIGINT, SIGTERM) mid-epoch;
the last checkpoint loads and `--resume` finishes with weights equal to an uninterrupted run.
Also: a kill between the state and model writes, divergence (NaN loss), a full or unwritable
output folder, and option combinations that must exit 2.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from cli_helpers import one_error_line

import rbmcli.files
import rbmcli.train.checkpoint
import rbmcli.train.run_folder
import rbmcli.train.trainer
from rbmcli.train.checkpoint import load_model, read_safetensors, save_state, state_path
from rbmcli.cli import app
from rbmcli.train.config import TrainConfig
from rbmcli.errors import RbmError
from rbmcli.train.trainer import Trainer, train

runner = CliRunner()
# MNIST, 784-64 N=255: 512 images / 32 = 16 steps per epoch, 32 steps; a checkpoint every 5 steps.
ARGS = ["--arch", "tiny", "--limit", "512", "--batch-size", "32", "--epochs", "2", "--save-every", "5",
        "--sample-steps", "5", "--keep", "1", "--device", "cpu", "-q", "--no-plots"]
# `rbm train` with every optimiser step slowed by STEP_DELAY seconds, so that a signal lands mid-epoch.
SLOW_RBM = """
import os, time
import rbmcli.train.trainer as t
step = t.Trainer.train_step
def slow(self, *args):
    time.sleep(float(os.environ["STEP_DELAY"]))
    return step(self, *args)
t.Trainer.train_step = slow
from rbmcli.cli import main
main()
"""


def run(*args):
    return runner.invoke(app, list(map(str, args)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The final weights of the uninterrupted run (in-process, 1 thread)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    r = run("train", *ARGS, "--out", out)
    for s, h in saved.items():
        signal.signal(s, h)
    assert r.exit_code == 0, r.output
    return read_safetensors(out / "model.safetensors")[0]


def checkpoint_step(path) -> int:
    """The `step` in a model file's metadata; -1 while there is none (or it is being replaced)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(f.metadata()["step"])
    except Exception:
        return -1


def start_slow_train(out, delay=0.05):
    env = dict(os.environ, OMP_NUM_THREADS="1", STEP_DELAY=str(delay))
    return subprocess.Popen([sys.executable, "-c", SLOW_RBM, "train", *ARGS, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc, out, min_step=5, timeout=60.0) -> int:
    t0 = time.time()
    while time.time() - t0 < timeout:
        step = checkpoint_step(out / "model.safetensors")
        if step >= min_step:
            return step
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("no checkpoint appeared")


def assert_same_weights(run_dir, reference):
    final = read_safetensors(run_dir / "model.safetensors")[0]
    assert set(final) == set(reference)
    for name in reference:
        assert torch.equal(final[name], reference[name]), name


def assert_consistent_run_folder(out):
    """Every final-named checkpoint loads; the model and its state are at steps the trainer saves."""
    for p in out.glob("*.safetensors"):
        read_safetensors(p)  # no partial file under a final name
    dbn, info = load_model(out / "model.safetensors")
    state_step = int(read_safetensors(state_path(out / "model.safetensors"))[1]["step"])
    # State is written first: it is at the model's step, or one save newer (a kill between the writes).
    step = int(info["step"])
    assert step <= state_step and (step % 5 == 0 or step % 16 == 0)


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, reference):
    out = tmp_path / "run"
    proc = start_slow_train(out)
    step = wait_for_checkpoint(proc, out)
    time.sleep(0.07)  # land somewhere in the following steps, maybe inside a write
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert step < 32 and not (out / "model-epoch002.safetensors").exists()
    assert_consistent_run_folder(out)
    r = run("train", "--resume", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    assert not list(out.glob(".*.tmp"))  # temp files of an interrupted write are cleaned on resume
    assert_same_weights(out, reference)
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs[-1] == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_sigterm_save_exit_130_and_resume(tmp_path, reference, sig):
    out = tmp_path / "run"
    proc = start_slow_train(out)
    wait_for_checkpoint(proc, out)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Interrupted: checkpoint saved" in stderr and "Traceback" not in stderr
    _, info = load_model(out / "model.safetensors")
    state = read_safetensors(state_path(out / "model.safetensors"))[1]
    assert info["step"] == state["step"] and 5 <= int(info["step"]) < 32  # saved at the stop, as a pair
    r = run("train", "--resume", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    assert_same_weights(out, reference)


# --- in-process faults on synthetic images ------------------------------------------------------

def images(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 3, 3, generator=g) < 0.5).to(torch.uint8) * 255


def cfg(**kw):
    base = dict(arch="dense:7,dense:5", visible_units=1, hidden_units=1, epochs=2, batch_size=20, device="cpu",
                sample_steps=2, save_every=5, negatives="pcd", lr=0.03)
    return TrainConfig(**{**base, **kw})


def test_kill_between_state_and_model_write_resumes_exactly(tmp_path, monkeypatch):
    """The state file is written first and holds the parameters too: after a kill between the
    two writes (model at step 5, state at step 6) resume continues from step 6 exactly."""
    c, x = cfg(), images()
    full = train(c, tmp_path / "full", images=x)
    real_save_model, calls = rbmcli.train.trainer.save_model, {"n": 0}

    def killed_on_second(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies here: state (step 6) written, model (step 6) not
        real_save_model(*args, **kw)

    monkeypatch.setattr(rbmcli.train.trainer, "save_model", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        train(c, tmp_path / "part", images=x)
    monkeypatch.undo()
    model = tmp_path / "part" / "model.safetensors"
    model_step, state_step = load_model(model)[1]["step"], read_safetensors(state_path(model))[1]["step"]
    assert (model_step, state_step) == ("5", "6")  # 6 steps per epoch: the second save is the epoch end
    resumed = Trainer(c, tmp_path / "part", x, resume=True).run()
    a, b = load_model(full.checkpoint)[0].state_dict(), load_model(resumed.checkpoint)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_without_parameters_from_another_step_is_refused(tmp_path):
    """A state file of an older rbmcli (no parameters) that does not match the model's step."""
    c, x = cfg(), images()
    train(c, tmp_path / "run", images=x, should_stop=iter([False] * 6 + [True]).__next__)
    sp = state_path(tmp_path / "run" / "model.safetensors")
    tensors, meta = read_safetensors(sp)
    rbmcli.train.checkpoint.atomic_save({k: v for k, v in tensors.items() if not k.startswith("param.")}, sp,
                                  dict(meta, step=str(int(meta["step"]) + 5)))
    with pytest.raises(RbmError, match="cannot be resumed exactly"):
        Trainer(c, tmp_path / "run", x, resume=True)


def test_nan_loss_stops_with_one_line_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    """Loss NaN from step 7 on: exit 1, one line naming layer and step; the step-5 checkpoint
    is intact (the failed step was not saved)."""
    real = rbmcli.train.trainer.dbn_losses
    steps = {"n": 0}

    def nan_from_step_7(dbn, *args, **kwargs):
        losses = real(dbn, *args, **kwargs)
        steps["n"] += 1
        return [losses[0] * float("nan")] + losses[1:] if steps["n"] > 7 else losses

    monkeypatch.setattr(rbmcli.train.trainer, "dbn_losses", nan_from_step_7)
    r = run("train", *ARGS, "--out", tmp_path / "run")
    line = one_error_line(r, 1)
    assert "diverged" in line and "layer 0" in line and "step 7" in line and "model.safetensors" in line
    dbn, info = load_model(tmp_path / "run" / "model.safetensors")  # loads: finite parameters
    assert info["step"] == "5"
    assert all(torch.isfinite(p).all() for p in dbn.parameters())


def test_non_finite_parameters_after_a_step_are_never_saved(tmp_path, monkeypatch):
    """An Adam step that makes a weight infinite at step 7 (loss still finite): exit 1 naming
    the step; with --save-every 1 the step-6 checkpoint remains, finite."""
    from rbmcli.train.adam import Adam

    real, calls = Adam.step, {"n": 0}

    def step(self, *args, **kw):
        out = real(self, *args, **kw)
        calls["n"] += 1
        if calls["n"] == 8:
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = float("inf")
        return out

    monkeypatch.setattr(Adam, "step", step)
    r = run("train", *ARGS, "--save-every", "1", "--out", tmp_path / "run")
    assert "parameters are not finite after step 7" in one_error_line(r, 1)
    dbn, info = load_model(tmp_path / "run" / "model.safetensors")
    assert info["step"] == "7" and all(torch.isfinite(p).all() for p in dbn.parameters())


@pytest.mark.parametrize("lr,needle", [("1e35", "diverged"), ("1e37", "too large"), ("inf", "too large")])
def test_huge_lr_is_refused_or_stops_cleanly(tmp_path, lr, needle):
    """1e35: Adam's first step overflows the weights (caught, nothing saved); 1e37 and inf:
    refused before training (Adam's step size would overflow float32)."""
    r = run("train", *ARGS, "--lr", lr, "--out", tmp_path / "run")
    line = one_error_line(r, 1 if needle == "diverged" else 2)
    assert needle in line
    assert not (tmp_path / "run" / "model.safetensors").exists()


# --- unwritable or full output folder -------------------------------------------------------------

def test_out_under_a_regular_file_fails_before_training(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    r = run("train", *ARGS, "--out", tmp_path / "file.txt" / "run")
    assert "cannot write the run folder" in one_error_line(r, 1)


def test_out_under_a_read_only_folder_fails_before_training(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root ignores permission bits (CI runs as root): refuse as the kernel does for a user
        real_mkdir = Path.mkdir

        def denied(self, *args, **kwargs):
            if ro in self.parents:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", denied)
    try:
        r = run("train", *ARGS, "--out", ro / "run")
        assert "cannot write the run folder" in one_error_line(r, 1)
    finally:
        ro.chmod(0o700)


def test_every_run_file_is_flushed_to_disk_and_mode_0644(tmp_path, monkeypatch):
    """Checkpoints, their epoch and best copies, config.json and the pictures all go through one
    writer: a temporary file that is fsynced, given mode 0644 and renamed (metrics.jsonl is
    appended line by line)."""
    real_fsync, synced = os.fsync, set()

    def recording(fd):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        synced.add(name[1:].rsplit(".", 3)[0] if name.endswith(".tmp") else name)
        real_fsync(fd)

    monkeypatch.setattr(rbmcli.files.os, "fsync", recording)
    r = run("train", *ARGS, "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    files = {p.name: p for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert {"model.safetensors", "model.state.safetensors", "best.safetensors", "config.json",
            "model-epoch002.safetensors", "samples-epoch002.png"} <= set(files)
    assert set(files) - {"metrics.jsonl"} <= synced
    assert {name: oct(p.stat().st_mode & 0o777) for name, p in files.items()} == {name: "0o644" for name in files}


def test_disk_full_on_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    """ENOSPC when the 3rd checkpoint file (model or training state) is flushed to disk: one
    line, exit 1; the step-5 pair stays and loads, no temp file is left."""
    real_fsync, calls = os.fsync, {"n": 0}

    def full_disk(fd):  # what a full disk does to a checkpoint once the file system runs out
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith((".model.safetensors.", ".model.state.safetensors.")):
            calls["n"] += 1
            if calls["n"] >= 3:
                raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(rbmcli.files.os, "fsync", full_disk)
    r = run("train", *ARGS, "--out", tmp_path / "run")
    assert "No space left on device" in one_error_line(r, 1)
    assert load_model(tmp_path / "run" / "model.safetensors")[1]["step"] == "5"
    assert read_safetensors(state_path(tmp_path / "run" / "model.safetensors"))[1]["step"] == "5"
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_disk_full_on_metrics_is_one_line(tmp_path, monkeypatch):
    def full(self, row):
        raise OSError(28, "No space left on device", str(self.metrics))

    monkeypatch.setattr(rbmcli.train.run_folder.RunFolder, "append_metrics", full)
    r = run("train", *ARGS, "--out", tmp_path / "run")
    assert "No space left on device" in one_error_line(r, 1)
    load_model(tmp_path / "run" / "model.safetensors")


# --- invalid option combinations: exit 2 with the reason ---------------------------------------------

FAST = ["--arch", "tiny", "--limit", "64", "--batch-size", "32", "--epochs", "1", "-q", "--device", "cpu"]


@pytest.mark.parametrize("args,needle", [
    (["--arch", "conv:4,conv:4,conv:4,conv:4,conv:4"], "does not fit"),  # 28→14→7→3→1→0: 5th kernel too big
    (["--hidden-units", "0"], "units N"),
    (["--k", "0"], "k must be > 0"),
    (["--k", "-1"], "k must be > 0"),
    (["--limit", "0"], "--limit"),
    (["--limit", "16"], "larger than the 16 training images"),
    (["--arch", "paper-huge"], "preset"),
    (["--device", "tpu"], "device"),
    (["--precision", "fp8"], "--precision"),
    (["--size", "2"], "--size"),
    (["--gibbs-steps", "0"], "--gibbs-steps"),
    (["--keep", "-1"], "--keep"),
    (["--save-every", "-1"], "--save-every"),
    (["--lr", "0"], "--lr"),
    (["--binarize", "sample"], "--binarize needs --visible-units 1"),
    (["--activation", "tanh"], "activation"),
    (["--mode", "sideways"], "--mode"),
    (["--dataset", "imagenet"], "Unknown dataset"),
])
def test_invalid_options_exit_2(tmp_path, args, needle):
    r = run("train", *FAST, "--out", tmp_path / "x", *args)
    assert needle in one_error_line(r, 2)
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fin") / "run"
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    r = run("train", *FAST, "--sample-steps", "2", "--out", out)
    for s, h in saved.items():
        signal.signal(s, h)
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("edit,code,needle", [
    (lambda c: dict(c, arch="dense:32"), 2, "another architecture"),
    (lambda c: dict(c, visible_units=1, binarize="threshold"), 2, "another architecture"),
    (lambda c: dict(c, arch="conv:4:99"), 2, "does not fit"),
    (lambda c: "{not json", 1, "not a valid config"),
    (lambda c: [1, 2], 1, "not a valid config"),
])
def test_resume_with_an_edited_config_is_refused(tmp_path, finished_run, edit, code, needle):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    config = json.loads((out / "config.json").read_text())
    new = edit(config)
    (out / "config.json").write_text(new if isinstance(new, str) else json.dumps(new))
    before = (out / "model.safetensors").read_bytes()
    r = run("train", "--resume", "--out", out, "--epochs", "2")
    assert needle in one_error_line(r, code)
    assert (out / "model.safetensors").read_bytes() == before  # nothing overwritten


def test_resume_without_state_file_is_one_line(tmp_path, finished_run):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    state_path(out / "model.safetensors").unlink()
    r = run("train", "--resume", "--out", out, "--epochs", "2")
    assert "model.state.safetensors" in one_error_line(r, 1)


def test_save_state_roundtrip_includes_parameters(tmp_path):
    """The state file alone restores the parameters (what makes a kill between writes safe)."""
    c, x = cfg(arch="dense:4"), images(40)
    t = Trainer(c, tmp_path, x)
    t.train_step(rbmcli.train.trainer.to_visible(x[:20], 1), None)
    save_state(tmp_path / "s.safetensors", t.opt, names=t.names, generators={"sample": t.gen}, chains=t.chains,
               counters={"epoch": 0, "batch": 1, "step": 1})
    saved = {k: v.clone() for k, v in t.dbn.state_dict().items()}
    fresh = Trainer(c, tmp_path, x)
    rbmcli.train.checkpoint.load_state(tmp_path / "s.safetensors", fresh.opt, names=fresh.names, generators={"sample": fresh.gen}, n_layers=1, device="cpu")
    assert all(torch.equal(fresh.dbn.state_dict()[k], saved[k]) for k in saved)
