"""`rbm train` end to end through Typer's CliRunner: files, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rbmcli.cli import app

runner = CliRunner()
FAST = ["--arch", "tiny", "--limit", "256", "--epochs", "1", "--sample-steps", "5", "-q", "--device", "cpu"]


def run(*args):
    return runner.invoke(app, list(map(str, args)))


def test_train_on_real_mnist_writes_a_run(tmp_path):
    r = run("train", *FAST, "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "samples-epoch001.png").is_file()
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["arch"] == "tiny" and cfg["limit"] == 256
    # The run exists now: no silent overwrite.
    r = run("train", *FAST, "--out", tmp_path / "run")
    assert r.exit_code == 1 and "Error:" in r.output and "already holds a run" in r.output
    # --resume extends it to 2 epochs.
    r = run("train", "--resume", "--out", tmp_path / "run", "--epochs", "2", "-q")
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


@pytest.mark.parametrize("args,needle", [
    (["--epochs", "0"], "--epochs"),
    (["--visible-units", "0"], "units"),
    (["--arch", "conv:4:99"], "does not fit"),
    (["--arch", "nonsense"], "architecture"),
    (["--negatives", "bogus"], "--negatives"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--batch-size", "100000"], "larger than"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, needle):
    r = run("train", *FAST, "--out", tmp_path / "x", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x").exists()  # nothing written for a refused run


def test_resume_needs_out():
    r = run("train", "--resume")
    assert r.exit_code == 2 and "--resume needs --out" in r.output


def test_missing_data_exits_1(tmp_path):
    r = run("train", *FAST, "--dataset", "cifar10", "--data-dir", tmp_path / "nothing", "--out", tmp_path / "x")
    assert r.exit_code == 1 and "Error:" in r.output and "Traceback" not in r.output


def test_console_script_help_and_version():
    r = subprocess.run([sys.executable, "-m", "rbmcli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("rbmcli ")
    r = subprocess.run([sys.executable, "-m", "rbmcli", "train", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--negatives" in r.stdout
