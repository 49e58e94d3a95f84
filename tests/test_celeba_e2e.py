"""The paper's generation network on a small fixture in CelebA's real layout, end to end:
train at 64×64 (178×218 → center crop → resize), sample, reconstruct a gray photo."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.train.checkpoint import load_model

runner = CliRunner()


def write_celeba(root, n=6):
    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    rng = np.random.default_rng(0)
    for name in names:
        img = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(img).save(base / "img_align_celeba" / name, quality=90)
    (base / "list_eval_partition.txt").write_text("".join(f"{m} {0 if i < n - 2 else 2}\n" for i, m in enumerate(names)))
    attrs = ["5_o_Clock_Shadow", "Eyeglasses"]
    (base / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(attrs)}\n" + "".join(f"{m} -1 1\n" for m in names))
    return root


def test_paper_generate_on_celeba_fixture(tmp_path):
    data = write_celeba(tmp_path / "data")
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "--dataset", "celeba", "--data-dir", str(data), "--size", "64",
                            "--arch", "paper-generate", "--epochs", "1", "--batch-size", "2", "--device", "cpu",
                            "--sample-steps", "2", "--no-plots", "-q", "--out", str(run)])
    assert r.exit_code == 0, r.output
    dbn, info = load_model(run / "model.safetensors")
    assert info["input_shape"] == (3, 64, 64) and len(dbn.layers) == 9
    assert dbn.specs[5].visible_shape == (256 * 2 * 2,)  # dense input follows the conv output at 64×64
    r = runner.invoke(app, ["sample", str(run / "model.safetensors"), "-n", "4", "--steps", "3", "-o",
                            str(tmp_path / "s.png"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "s.png").size[0] > 64
    photo = tmp_path / "gray.jpg"
    Image.fromarray(np.full((90, 120), 128, np.uint8)).save(photo)
    r = runner.invoke(app, ["reconstruct", str(run / "model.safetensors"), str(photo), "--gray", "-o",
                            str(tmp_path / "r.png"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "r.png").mode == "RGB"
