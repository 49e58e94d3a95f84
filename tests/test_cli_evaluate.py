"""`rbm evaluate` through the CLI: rows, JSON, newest-checkpoint default, errors."""

import json

import pytest
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import train

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny binary RBM trained briefly (the paper's recipe, 4 epochs) on the first 1000 real
    MNIST images. Measured: linear SVM test error 37.3 %, Nyström 21.7 %, RBF 23.7 % (chance:
    90 %); exact test log-likelihood −199.3 nats against the independent-pixel model's −200.7."""
    d = tmp_path_factory.mktemp("eval") / "run"
    cfg = TrainConfig(recipe="paper", arch="dense:12", visible_units=1, hidden_units=1, binarize="threshold",
                      epochs=4, batch_size=25, limit=1000, device="cpu", sample_steps=5)
    train(cfg, d)
    return d


def independent_pixels_log_likelihood() -> float:
    """Mean test log-likelihood (nats) of 300 thresholded test digits under independent pixels
    fitted (add-one smoothing) on the 1000 training images the fixture trains on."""
    from rbmcli.data.batches import binarize
    from rbmcli.data.datasets import load_dataset

    train_v, test_v = (binarize(load_dataset("mnist", split, None, limit=n).images, "threshold", 0).flatten(1).double() / 255
                       for split, n in (("train", 1000), ("test", 300)))
    p = (train_v.sum(0) + 1) / (len(train_v) + 2)
    return float((test_v * p.log() + (1 - test_v) * (1 - p).log()).sum(1).mean())


def test_svm_and_exact_loglik_rows_and_json(run_dir, tmp_path):
    out = tmp_path / "eval.json"
    r = runner.invoke(app, ["evaluate", str(run_dir / "model.safetensors"), "--svm", "--ais", "--limit-train", "1000",
                            "--limit-test", "300", "-q", "--json", str(out)])
    assert r.exit_code == 0, r.output
    rows = {x["metric"]: x for x in json.loads(out.read_text())["results"]}
    svm = rows["svm_test_error_percent"]
    assert 0 <= svm["value"] < 50  # chance is 90 %
    assert (svm["details"]["n_train"], svm["details"]["n_test"], svm["details"]["kernel"]) == (1000, 300, "linear")
    ll = rows["test_log_likelihood_nats"]
    assert ll["details"]["method"] == "exact"  # 12 hidden units: enumerated
    assert independent_pixels_log_likelihood() + 0.5 < ll["value"] < 0


def test_svm_with_the_nystroem_kernel(run_dir, tmp_path):
    out = tmp_path / "eval.json"
    r = runner.invoke(app, ["evaluate", str(run_dir / "model.safetensors"), "--svm", "--kernel", "nystroem",
                            "--limit-train", "1000", "--limit-test", "300", "-q", "--json", str(out)])
    assert r.exit_code == 0, r.output  # the plumbing; what the kernel buys is tests/test_nystroem.py's
    (svm,) = json.loads(out.read_text())["results"]
    assert 0 <= svm["value"] < 35 and svm["details"]["n_train"] == 1000  # chance is 90 %
    assert (svm["details"]["kernel"], svm["details"]["landmarks"]) == ("nystroem", 4096)  # capped at the 900 fit images


def test_svm_with_the_exact_rbf_kernel_scans_its_c_grid(run_dir, tmp_path):
    out = tmp_path / "eval.json"
    r = runner.invoke(app, ["evaluate", str(run_dir / "model.safetensors"), "--svm", "--kernel", "rbf",
                            "--limit-train", "1000", "--limit-test", "300", "-q", "--json", str(out)])
    assert r.exit_code == 0, r.output
    (svm,) = json.loads(out.read_text())["results"]
    assert 0 <= svm["value"] < 35 and svm["details"]["kernel"] == "rbf"  # chance is 90 %
    assert [row["C"] for row in svm["details"]["scan"]] == [3.0, 10.0, 30.0]  # the grid measured on 54k images
    assert svm["details"]["C"] in (3.0, 10.0, 30.0)


def test_newest_checkpoint_is_the_default(run_dir, monkeypatch):
    monkeypatch.chdir(run_dir.parent.parent)
    (run_dir.parent.parent / "runs").mkdir(exist_ok=True)
    link = run_dir.parent.parent / "runs" / "r1"
    if not link.exists():
        link.symlink_to(run_dir)
    r = runner.invoke(app, ["evaluate", "--svm", "--limit-train", "300", "--limit-test", "100", "-q"])
    assert r.exit_code == 0, r.output
    assert "newest checkpoint" in r.output


def test_errors(run_dir, tmp_path):
    r = runner.invoke(app, ["evaluate", str(run_dir / "model.safetensors")])
    assert r.exit_code == 2 and "--svm" in r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "nope.safetensors"), "--svm"])
    assert r.exit_code == 1 and "not found" in r.output
    r = runner.invoke(app, ["evaluate", "--fid", "--real-dir", str(tmp_path)])
    assert r.exit_code == 2 and "go together" in r.output
