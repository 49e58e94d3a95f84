"""Checkpoints written by earlier releases keep loading.

tests/fixtures/checkpoint-0.1.safetensors was written by `rbm train` of release 0.1.0
(`--dataset mnist --limit 64 --arch conv:3:3:2:1,dense:5@1 --epochs 1 --batch-size 32`), and
checkpoint-0.1-expected.safetensors holds, for three fixed inputs x, what that release computed
from it: the top features dbn.up(x) and the mean pass back down dbn.down(dbn.up(x)).
"""

from pathlib import Path

import torch
from safetensors.torch import load_file

from rbmcli.train.checkpoint import describe_checkpoint, load_model

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_release_0_1_checkpoint_loads_and_computes_what_it_did():
    dbn, info = load_model(FIXTURES / "checkpoint-0.1.safetensors")
    expected = load_file(str(FIXTURES / "checkpoint-0.1-expected.safetensors"))
    assert info["input_shape"] == (1, 28, 28) and info["config"]["arch"] == "conv:3:3:2:1,dense:5@1"
    assert [s.hidden_units.n for s in dbn.specs] == [255, 1]
    with torch.no_grad():
        up = dbn.up(expected["x"])
        down = dbn.down(up)
    torch.testing.assert_close(up, expected["up"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(down, expected["down"], rtol=1e-5, atol=1e-4)
    assert describe_checkpoint(FIXTURES / "checkpoint-0.1.safetensors")["dataset"] == "mnist"
