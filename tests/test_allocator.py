"""The glibc 32 MiB mmap trap: with keep_freed_memory() the 32 MiB output of a conv layer is
reused instead of being mapped (and page-faulted) again on every training step."""

import json
import os
import platform
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys
import torch
from rbmcli.train.allocator import keep_freed_memory
applied = keep_freed_memory()
x = torch.rand(128, 3, 64, 64)
w = torch.randn(64, 3, 4, 4, requires_grad=True)
def step():  # output (128, 64, 32, 32) float32 = 32 MiB, and its gradient
    torch.sigmoid(torch.nn.functional.conv2d(x, w, stride=2, padding=1)).sum().backward()
for _ in range(3):
    step()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    step()
print(json.dumps({"applied": applied, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 8}))
"""


def _faults(setting: str) -> dict:
    env = dict(os.environ, RBMCLI_GLIBC_MALLOC=setting)
    env.pop("LD_PRELOAD", None)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_large_tensors_are_reused_instead_of_mapped_again():
    default, tuned = _faults("default"), _faults("tuned")
    pages = 32 * 2**20 / 4096  # 8,192 pages of 4 KiB in one output
    assert not default["applied"] and tuned["applied"]
    assert default["faults"] > pages  # the trap: every step faults its big tensors in again
    assert tuned["faults"] < 0.2 * pages
