"""Hostile input, tried as a careless user would, through every command.

For each input: the exit code, one `Error:` line and no traceback, no partial output (no new
file anywhere in the folder the command ran in) and every pre-existing file unchanged by
checksum. The folder holds a finished run, a checkpoint, a user's own folder that is not a
run, existing outputs and a regular file where folders are expected.
"""

import hashlib
import json
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import train

runner = CliRunner()
BIG = "18446744073709551617"  # 2**64 + 1


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A finished tiny MNIST-shaped run (synthetic images), a user's folder, existing outputs."""
    root = tmp_path_factory.mktemp("hostile")
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(arch="dense:8", visible_units=1, hidden_units=1, epochs=1, batch_size=32, limit=64, device="cpu",
                      sample_steps=2, keep=0)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    train(cfg, root / "run", images=images)
    for s, h in saved.items():
        signal.signal(s, h)
    user = root / "mine"
    user.mkdir()
    (user / "best.json").write_text('{"mine": true}\n')
    (user / "metrics.jsonl").write_text('{"accuracy": 0.9}\n')
    (root / "afile.txt").write_text("a regular file\n")
    (root / "existing.png").write_bytes(b"\x89PNG user's picture")
    (root / "existing.json").write_text('{"keep": "me"}\n')
    (root / "existing.html").write_text("<p>mine</p>\n")
    Image.new("L", (28, 28), 128).save(root / "digit.png")
    (root / "empty").mkdir()
    return root


def snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file (and folder marker) under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


# (id, args with {ckpt} / {run} placeholders, exit code, text the Error line must hold)
CASES = [
    # train
    ("train-bad-mode", ["train", "--mode", "sideways", "--out", "new"], 2, "--mode"),
    ("train-bad-negatives", ["train", "--negatives", "bogus", "--out", "new"], 2, "--negatives"),
    ("train-bad-arch", ["train", "--arch", "nonsense", "--out", "new"], 2, "architecture"),
    ("train-huge-seed", ["train", "--seed", BIG, "--out", "new"], 2, "--seed"),
    ("train-huge-size", ["train", "--size", "1000000000000", "--out", "new"], 2, "--size"),
    ("train-nan-lr", ["train", "--lr", "nan", "--out", "new"], 2, "--lr"),
    ("train-huge-units", ["train", "--hidden-units", "10000000000", "--out", "new"], 2, "--hidden-units"),
    ("train-huge-arch", ["train", "--arch", "dense:100000000000", "--limit", "128", "--out", "new", "-q"], 2,
     "parameters"),
    ("train-not-a-number", ["train", "--epochs", "abc", "--out", "new"], 2, "--epochs"),
    ("train-user-folder", ["train", "--arch", "tiny", "--out", "mine"], 1, "not empty"),
    ("train-out-is-file", ["train", "--out", "afile.txt"], 2, "is a file"),
    ("train-existing-run", ["train", "--out", "run"], 1, "already holds a run"),
    ("train-resume-other-arch", ["train", "--resume", "--out", "run", "--arch", "dense:99"], 2, "differs"),
    ("train-resume-user-folder", ["train", "--resume", "--out", "mine"], 1, "config.json"),  # no run there: a domain error
    ("train-markup-data-dir", ["train", "--dataset", "cifar10", "--data-dir", "[/x]", "--out", "new", "-q"], 1,
     "[/x]"),
    # sample
    ("sample-folder-as-ckpt", ["sample", "run", "-o", "new.png"], 1, "is a folder"),
    ("sample-markup-ckpt", ["sample", "[/x].safetensors", "-o", "new.png"], 1, "[/x]"),
    ("sample-existing-out", ["sample", "{ckpt}", "-o", "existing.png"], 1, "--force"),
    ("sample-individual-is-file", ["sample", "{ckpt}", "-o", "new.png", "--individual", "afile.txt"], 2,
     "is a file"),
    ("sample-long-name", ["sample", "{ckpt}", "-o", "x" * 300 + ".png"], 2, "too long"),
    ("sample-out-under-file", ["sample", "{ckpt}", "-o", "afile.txt/s.png"], 2, "is a file"),
    ("sample-huge-seed", ["sample", "{ckpt}", "-o", "new.png", "--seed", BIG], 2, "--seed"),
    ("sample-huge-n", ["sample", "{ckpt}", "-o", "new.png", "--num-samples", "1000000000000"], 2,
     "--num-samples"),
    ("sample-not-a-checkpoint", ["sample", "afile.txt", "-o", "new.png"], 1, "afile.txt"),
    # reconstruct
    ("reconstruct-markup-image", ["reconstruct", "{ckpt}", "[bold]gone.png", "-o", "new.png"], 1,
     "[bold]gone.png"),
    ("reconstruct-existing-out", ["reconstruct", "{ckpt}", "digit.png", "-o", "existing.png"], 1, "--force"),
    ("reconstruct-zero-n", ["reconstruct", "{ckpt}", "--dataset", "mnist", "-n", "0", "-o", "new.png"], 2,
     "--num-samples"),
    # evaluate
    ("evaluate-no-metric", ["evaluate", "{ckpt}"], 2, "--svm"),
    ("evaluate-bad-kernel", ["evaluate", "{ckpt}", "--svm", "--kernel", "foo"], 2, "--kernel"),
    ("evaluate-zero-fid-samples", ["evaluate", "{ckpt}", "--fid", "--fid-samples", "0"], 2, "--fid-samples"),
    ("evaluate-svm-one-image", ["evaluate", "{ckpt}", "--svm", "--limit-train", "1", "-q"], 2, "--limit-train"),
    ("evaluate-existing-json", ["evaluate", "{ckpt}", "--svm", "--json", "existing.json"], 1, "--force"),
    ("evaluate-json-under-file", ["evaluate", "{ckpt}", "--svm", "--json", "afile.txt/r.json"], 2, "is a file"),
    ("evaluate-dirs-and-ckpt", ["evaluate", "{ckpt}", "--svm", "--real-dir", "empty", "--fake-dir", "empty"], 2,
     "--real-dir"),
    ("evaluate-folder-as-ckpt", ["evaluate", "run", "--ais"], 1, "is a folder"),
    ("evaluate-huge-seed", ["evaluate", "{ckpt}", "--ais", "--seed", BIG], 2, "--seed"),
    ("evaluate-huge-betas", ["evaluate", "{ckpt}", "--ais", "--ais-betas", "1000000000000"], 2, "--ais-betas"),
    ("evaluate-three-paths", ["evaluate", "{ckpt}", "{ckpt}", "{ckpt}"], 2, "not 3"),
    # report
    ("report-markup-path", ["report", "runs/[/x]"], 1, "[/x]"),
    ("report-file-as-run", ["report", "afile.txt"], 1, "is a file"),
    ("report-user-folder", ["report", "mine"], 1, "not the metrics file"),
    ("report-existing-out", ["report", "run", "-o", "existing.html"], 1, "--force"),
    ("report-out-under-file", ["report", "run", "-o", "afile.txt/r.html"], 2, "is a file"),
    # info
    ("info-not-a-checkpoint", ["info", "afile.txt"], 1, "afile.txt"),
    ("info-empty-folder", ["info", "empty"], 1, "is a folder"),
    ("info-existing-json", ["info", "{ckpt}", "--json", "existing.json"], 1, "--force"),
]


@pytest.mark.parametrize("args,code,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_cleanly(world, monkeypatch, args, code, needle):
    monkeypatch.chdir(world)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    before = snapshot(world)
    args = [a.format(ckpt="run/model.safetensors") for a in args]
    r = runner.invoke(app, args)
    for s, h in saved.items():
        signal.signal(s, h)
    assert r.exception is None or isinstance(r.exception, SystemExit), f"unhandled {r.exception!r}"
    assert "Traceback" not in r.output
    assert r.exit_code == code, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.output
    assert needle in errors[0], r.output
    assert snapshot(world) == before  # nothing new, nothing changed


def test_the_world_is_a_valid_run(world, monkeypatch):
    """The hostile cases fail for their hostile part: the same commands succeed on good input."""
    monkeypatch.chdir(world)
    r = runner.invoke(app, ["info", "run/model.safetensors", "--json", "-"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["layers"][0]["kind"] == "dense"
