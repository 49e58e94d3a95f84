"""Data-parallel training (torchrun, gloo on CPU) and bf16 autocast, on the CPU."""

import os
import subprocess
import sys
import textwrap

import torch

from rbmcli.checkpoint import load_model
from rbmcli.config import TrainConfig
from rbmcli.loss import dbn_losses
from rbmcli.train import build_dbn

SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from rbmcli.config import TrainConfig
    from rbmcli.train import train
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(96, 1, 5, 7, generator=g) * 255).to(torch.uint8)
    cfg = TrainConfig(arch="conv:3:3:2:1,dense:5", visible_units=255, hidden_units=255, epochs=2,
                      batch_size=16, device="cpu", sample_steps=2, keep=0)
    train(cfg, sys.argv[1], images=images)
""")


def _run(tmp_path, nproc, name):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-port",
           str(29500 + nproc + os.getpid() % 1000), str(script), str(tmp_path / name)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return load_model(tmp_path / name / "model.safetensors")[0].state_dict()


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    one = _run(tmp_path, 1, "one")
    two = _run(tmp_path, 2, "two")
    for name in one:
        assert torch.allclose(one[name], two[name], rtol=1e-3, atol=1e-3), name  # Adam amplifies summation-order noise in near-zero gradients
    # and training moved the weights at all (so the comparison means something)
    assert one["layers.0.weight"].abs().max() > 0.05


def test_bf16_autocast_losses_and_gradients_match_float32():
    """The loss is a small difference of large free energies (here |F| ≈ 1e4), so bf16's
    8-bit mantissa is judged against |F|: loss within 0.5 % of mean |F(v)|, and the gradient
    Adam sees within cosine 0.995 of float32 (measured 0.998)'s."""
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(32, 3, 9, 9, generator=g) * 255).to(torch.uint8)
    dbn = build_dbn(TrainConfig(arch="conv:5:3:2:1,dense:7", init_std=0.1), (3, 9, 11 - 2))
    v = images.float()
    out = {}
    for enabled in [False, True]:
        dbn.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            losses = dbn_losses(dbn, v)
        torch.stack(losses).sum().backward()
        out[enabled] = ([float(x.detach()) for x in losses], torch.cat([p.grad.flatten() for p in dbn.parameters()]))
    scale = float(dbn.layers[0].free_energy(v).abs().mean())
    assert scale > 1e3
    for a, b in zip(out[False][0], out[True][0]):
        assert abs(a - b) < 0.005 * scale
    cos = torch.nn.functional.cosine_similarity(out[False][1], out[True][1], dim=0)
    assert cos > 0.995, float(cos)
