"""--negatives noise: k Gibbs steps from fresh noise as the loss's negatives, and sampling with
the same k. The model then reproduces the data's modes in their proportions with k steps from
noise, which is what it is trained for; samplers and grids use that k by default."""

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.generate.samples import DEFAULT_STEPS, sample_images
from rbmcli.model.sampling import gibbs_chain, negatives, noise_start
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import build_dbn, train

SIDE = 5
SHARES = (0.55, 0.25, 0.15, 0.05)  # uneven modes: a sampler that levels them out fails too


def prototypes() -> torch.Tensor:
    """Four 5×5 binary bars (top row, left column, bottom row, right column), (4, 25)."""
    p = torch.zeros(4, SIDE, SIDE)
    p[0, 0, :] = p[1, :, 0] = p[2, SIDE - 1, :] = p[3, :, SIDE - 1] = 1
    return p.flatten(1)


def bars(n: int, seed: int = 0) -> torch.Tensor:
    """n images of the prototypes drawn in SHARES, each pixel flipped with probability 0.03: uint8 (n, 1, 5, 5)."""
    g = torch.Generator().manual_seed(seed)
    x = prototypes()[torch.multinomial(torch.tensor(SHARES), n, replacement=True, generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.03
    return ((x != flip.float()).float() * 255).to(torch.uint8).reshape(n, 1, SIDE, SIDE)


def mode_shares(images: torch.Tensor) -> torch.Tensor:
    """Share of images (n, 1, 5, 5) in [0, 1] nearest to each prototype, (4,)."""
    d = torch.cdist(images.flatten(1).float(), prototypes())
    return torch.bincount(d.argmin(1), minlength=4).float() / len(images)


def cfg(**kw) -> TrainConfig:
    base = dict(recipe="paper", arch="dense:9", visible_units=1, hidden_units=1, negatives="noise", gibbs_steps=3,
                epochs=25, batch_size=50, lr=0.05, device="cpu", sample_steps=0)
    return TrainConfig(**{**base, **kw})


def test_noise_negatives_are_k_steps_from_the_sampling_start():
    """v′ is the chain `rbm sample` runs: noise_start, then k steps, the last visible a mean;
    it does not depend on the batch's values, only on its size."""
    dbn = build_dbn(cfg(arch="dense:7"), (1, 3, 5))
    rbm = dbn.layers[0]
    v = torch.rand(11, 15)
    got = negatives(rbm, v, "noise", steps=4, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    want = gibbs_chain(rbm, noise_start(rbm, 11, g), 4, g, mean_last=True)
    assert torch.equal(got, want)
    other = negatives(rbm, 1 - v, "noise", steps=4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, other)


@pytest.mark.slow
def test_a_noise_trained_model_reproduces_the_modes_in_k_steps(tmp_path):
    """Trained on bars in shares 55/25/15/5 %, 3 steps from noise give those shares within
    0.06 each; the same budget with negatives from the data (cd) does not: its 3-step samples
    from noise are not what it was trained to match."""
    images = bars(2000)
    assert torch.allclose(mode_shares(images.float() / 255), torch.tensor(SHARES), atol=0.03)
    noise = train(cfg(), tmp_path / "noise", images=images)
    shares = mode_shares(sample_images(noise.checkpoint, 4000, device="cpu", seed=5).images)
    assert torch.allclose(shares, torch.tensor(SHARES), atol=0.06), shares
    cd = train(cfg(negatives="cd"), tmp_path / "cd", images=images)
    shares_cd = mode_shares(sample_images(cd.checkpoint, 4000, steps=3, device="cpu", seed=5).images)
    assert (shares_cd - torch.tensor(SHARES)).abs().max() > 0.1, shares_cd


def test_samplers_default_to_the_models_k(tmp_path):
    """A noise-trained model is sampled with its k by default (library and `rbm sample`'s
    table), any other with DEFAULT_STEPS; --steps overrides both."""
    images = bars(200)
    noise = train(cfg(epochs=1, gibbs_steps=3), tmp_path / "noise", images=images)
    pcd = train(cfg(epochs=1, negatives="pcd"), tmp_path / "pcd", images=images)
    assert sample_images(noise.checkpoint, 2, device="cpu").steps == 3
    assert sample_images(noise.checkpoint, 2, steps=7, device="cpu").steps == 7
    assert sample_images(pcd.checkpoint, 2, device="cpu").steps == DEFAULT_STEPS
    r = CliRunner().invoke(app, ["sample", str(noise.checkpoint), "-n", "2", "-o", str(tmp_path / "s.png"),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert re.search(r"steps\s*│\s*3\s*│", r.output), r.output


def test_run_records_noise_and_draws_its_grid_in_k_steps(tmp_path):
    """The config says noise and k; the epoch grid's chains are k steps from fresh noise (the
    strip holds k − 1 frames, then the mean step), not --sample-steps."""
    from PIL import Image

    res = train(cfg(epochs=1, sample_steps=50, gibbs_steps=4), tmp_path / "run", images=bars(100))
    config = json.loads((res.run_dir / "config.json").read_text())
    assert (config["negatives"], config["gibbs_steps"]) == ("noise", 4)
    with Image.open(res.run_dir / "chains.png") as im:  # 8 chains × 3 frames of 5×5 tiles
        assert im.size == (3 * (SIDE + 2) + 2, 8 * (SIDE + 2) + 2)
