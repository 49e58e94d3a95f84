"""rbmcli.train.adam against torch.optim: the same parameters and state bit for bit, a
checkpoint that resumes exactly and reads as torch's did, and a training process that never
imports torch._dynamo (the reason the module exists)."""

import copy
import subprocess
import sys

import pytest
import torch

from rbmcli.train.adam import Adam, AdamW
from rbmcli.train.checkpoint import load_state, read_safetensors, save_state
from rbmcli.train.step import set_lr

SHAPES = [(3, 5), (7,), (5, 3, 7)]
NAMES = ["a.weight", "a.bias", "b.weight"]


def params(seed=0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).requires_grad_() for s in SHAPES]


def groups(ps, decay: float) -> list[dict]:
    """Decay on the first two parameters, none on the third (as make_optimiser's weights and biases)."""
    return [{"params": ps[:2], "weight_decay": decay}, {"params": ps[2:], "weight_decay": 0.0}]


def train(opt, ps, steps: range, seed=1) -> None:
    """Random gradients for `steps` (numbered, so a resumed run draws the same ones); the rate
    drops at step 4; at step 2 the second parameter has no gradient (skipped, state untouched)."""
    for i in steps:
        g = torch.Generator().manual_seed(seed + i)
        for j, p in enumerate(ps):
            p.grad = None if (i, j) == (2, 1) else torch.randn(p.shape, generator=g)
        if i == 4:
            set_lr(opt, 0.003)
        opt.step()


def assert_same(ours, theirs, ps, qs) -> None:
    for p, q in zip(ps, qs):
        assert torch.equal(p, q)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            a, b = ours.state[p][key], theirs.state[q][key]
            assert torch.equal(a, b) and a.dtype == b.dtype and a.device == b.device, key


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_seven_steps_equal_torch_bit_for_bit(fused, decay):
    """Adam (λ = 0) or AdamW (λ = 0.3 on one group, 0 on the other), fused or not: after 7
    steps with a rate change, every parameter and state tensor equals torch.optim's."""
    ours_cls, torch_cls = (AdamW, torch.optim.AdamW) if decay else (Adam, torch.optim.Adam)
    ps, qs = params(), params()
    ours = ours_cls(groups(ps, decay), lr=0.01, betas=(0.9, 0.999), fused=fused)
    theirs = torch_cls(groups(qs, decay), lr=0.01, betas=(0.9, 0.999), fused=fused)
    train(ours, ps, range(7))
    train(theirs, qs, range(7))
    assert_same(ours, theirs, ps, qs)


def test_a_tensor_rate_filled_in_place_equals_torch_capturable():
    """capturable (the CUDA graph's optimiser): lr a one-element tensor that set_lr fills in
    place, the step counts float32 on the parameters' device, as torch.optim.Adam(capturable=True)."""
    ps, qs = params(), params()
    ours = AdamW(groups(ps, 0.3), lr=torch.tensor(0.01), fused=True, capturable=True)
    theirs = torch.optim.AdamW(groups(qs, 0.3), lr=torch.tensor(0.01), fused=True, capturable=True)
    rate = ours.param_groups[0]["lr"]
    train(ours, ps, range(7))
    train(theirs, qs, range(7))
    assert ours.param_groups[0]["lr"] is rate and float(rate) == pytest.approx(0.003)  # filled, not replaced
    assert_same(ours, theirs, ps, qs)


def test_a_torch_state_dict_loads_and_goes_on_as_torch_does():
    """A state_dict of torch.optim.Adam (an estimator pickled by an older rbmcli) loads into
    Adam and the next steps equal torch's; Adam's own state_dict round-trips the same way."""
    ps, qs = params(), params()
    theirs = torch.optim.AdamW(groups(qs, 0.3), lr=0.01, fused=False)
    train(theirs, qs, range(3))
    with torch.no_grad():
        for p, q in zip(ps, qs):
            p.copy_(q)
    ours = AdamW(groups(ps, 0.0), lr=0.5, fused=False)  # hyperparameters come from the state
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    assert [g["weight_decay"] for g in ours.param_groups] == [0.3, 0.0] and ours.param_groups[0]["lr"] == 0.01
    again = AdamW(groups(ps, 0.3), lr=0.01, fused=False)
    again.load_state_dict(copy.deepcopy(ours.state_dict()))
    train(again, ps, range(3, 7))
    train(theirs, qs, range(3, 7))
    assert_same(again, theirs, ps, qs)


def save(path, opt, step: int) -> None:
    save_state(path, opt, names=NAMES, generators={}, chains=[], counters={"epoch": 0, "batch": step, "step": step})


def test_save_state_load_state_resumes_exactly_in_torchs_checkpoint_format(tmp_path):
    """3 steps, save_state, a fresh optimiser load_state'd, 4 more steps = 7 uninterrupted ones;
    the state file holds the same tensors under the same names as torch.optim.Adam's."""
    full = params()
    opt = Adam(full, lr=0.01, fused=True)
    train(opt, full, range(7))

    part = params()
    first = Adam(part, lr=0.01, fused=True)
    train(first, part, range(3))
    save(tmp_path / "ours.safetensors", first, 3)
    ps = params(seed=5)  # a new process's parameters: load_state restores them too
    resumed = Adam(ps, lr=0.01, fused=True)
    load_state(tmp_path / "ours.safetensors", resumed, names=NAMES, generators={}, n_layers=0, device="cpu")
    train(resumed, ps, range(3, 7))
    assert_same(resumed, opt, ps, full)

    qs = params()
    theirs = torch.optim.Adam(qs, lr=0.01, betas=(0.9, 0.999), fused=True)
    train(theirs, qs, range(7))
    save(tmp_path / "torch.safetensors", theirs, 7)
    save(tmp_path / "ours.safetensors", resumed, 7)
    a, b = read_safetensors(tmp_path / "ours.safetensors")[0], read_safetensors(tmp_path / "torch.safetensors")[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


CHILD = """
import sys, torch
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import train
g = torch.Generator().manual_seed(0)
images = (torch.rand(60, 1, 3, 5, generator=g) < 0.5).to(torch.uint8) * 255
for decay in (0.0, 0.01):  # Adam, then AdamW
    c = TrainConfig(recipe="paper", arch="dense:7", visible_units=1, hidden_units=1, epochs=1, batch_size=20,
                    device="cpu", sample_steps=3, weight_decay=decay)
    assert train(c, sys.argv[1] + f"/run{decay}", images=images).epochs_done == 1
print("torch._dynamo" in sys.modules)
"""


@pytest.mark.slow  # a subprocess: seconds
def test_training_never_imports_torch_dynamo(tmp_path):
    """torch.optim's optimisers import torch._dynamo (seconds of every run's start); a training
    run through the library, Adam and AdamW, must not."""
    r = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"
