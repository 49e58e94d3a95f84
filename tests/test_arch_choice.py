"""The architecture `rbm train` picks without --arch: a conv generation stack scaled to color
images of 32 px or more, `small` otherwise; the first line says which and why."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.model.dbn import PRESETS
from rbmcli.train.arch_choice import default_arch, generation_stack
from rbmcli.train.checkpoint import load_model
from rbmcli.train.config import TrainConfig
from test_celeba_e2e import write_celeba

runner = CliRunner()
DENSE = ["dense:1000", "dense:500", "dense:200", "dense:100"]


def conv_sides(side: int, n: int) -> list[int]:
    """Sides after each of n conv 4:2:1 layers: (s + 2·1 − 4) // 2 + 1."""
    out = []
    for _ in range(n):
        side = (side + 2 - 4) // 2 + 1
        out.append(side)
    return out


def test_the_stack_halves_the_side_down_to_two_or_three():
    assert generation_stack(64) == "paper-generate"
    assert generation_stack(32).split(",") == ["conv:64", "conv:128", "conv:256", "conv:256"] + DENSE
    assert generation_stack(128).split(",") == PRESETS["paper-generate"].split(",")[:5] + ["conv:256"] + DENSE
    for side in (32, 48, 63, 64, 97, 128):
        n = PRESETS.get(generation_stack(side), generation_stack(side)).count("conv:")
        sides = conv_sides(side, n)
        assert sides[-1] in (2, 3) and min(sides) >= 2, (side, sides)


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**kw)


def test_color_sets_get_the_stack_and_gray_or_small_ones_stay_dense(tmp_path):
    assert default_arch(cfg(dataset="celeba"))[0] == "paper-generate"  # the loader's 64 px
    assert default_arch(cfg(dataset="celeba", size=128))[0] == generation_stack(128)
    assert default_arch(cfg(dataset="cifar10"))[0] == generation_stack(32)
    assert default_arch(cfg(dataset="emoji"))[0] == "paper-generate"
    for kw in ({"dataset": "mnist"}, {"dataset": "colored-mnist"}, {"dataset": "cifar10", "size": 16}):
        arch, why = default_arch(cfg(**kw))
        assert arch == "small" and "--arch overrides" in why
    color, gray = tmp_path / "color", tmp_path / "gray"
    for folder, shape in ((color, (40, 50, 3)), (gray, (40, 50))):
        (folder / "a").mkdir(parents=True)
        Image.fromarray(np.zeros(shape, np.uint8)).save(folder / "a" / "x.png")
    assert default_arch(cfg(dataset="folder", data_dir=str(color)))[0] == generation_stack(40)  # min(40, 50)
    assert default_arch(cfg(dataset="folder", data_dir=str(gray)))[0] == "small"
    assert default_arch(cfg(dataset="folder", data_dir=str(color), size=16))[0] == "small"


def train_celeba(tmp_path, *extra):
    data = tmp_path / "data"
    if not data.exists():
        write_celeba(data)
    run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    r = runner.invoke(app, ["train", "--dataset", "celeba", "--data-dir", str(data), "--size", "32", "--epochs", "1",
                            "--batch-size", "2", "--device", "cpu", "--sample-steps", "2", "--no-plots",
                            "--out", str(run), *extra])
    assert r.exit_code == 0, r.output
    return r.output, load_model(run / "model.safetensors")[0]


def test_celeba_without_arch_trains_the_scaled_conv_stack_and_says_so_first(tmp_path):
    output, dbn = train_celeba(tmp_path)
    assert output.splitlines()[0].startswith(f"--arch {generation_stack(32)}: the paper's generation stack")
    kinds = [type(s).__name__ for s in dbn.specs]
    assert len(dbn.layers) == 8 and dbn.specs[4].visible_shape == (256 * 2 * 2,), kinds
    output, dbn = train_celeba(tmp_path, "--arch", "small")
    assert len(dbn.layers) == 1 and "paper's generation stack" not in output
