"""Exact log partition function of a small RBM by enumeration.

log Z = log Σ_h exp(−F_h(h)) with F_h(h) = −b·h − Σ_i softplus((a + hWᵀ)_i) for binary units,
enumerating whichever side is smaller (at most MAX_ENUM units). Only binary (N = 1, k = 1,
sigmoid) layers have this closed form.
"""

from __future__ import annotations

import copy
import itertools

import torch

from rbmcli.errors import RbmError
from rbmcli.model.rbm import RBM

MAX_ENUM = 20


def all_binary_states(n: int, dtype=torch.float64) -> torch.Tensor:
    """Every vector of n bits, shape (2**n, n), in counting order."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype)


def _is_binary(rbm: RBM) -> bool:
    s = rbm.spec
    return all(u.n == 1 and u.k == 1 and u.activation == "sigmoid" for u in (s.visible_units, s.hidden_units))


@torch.no_grad()
def exact_log_partition(rbm: RBM, chunk: int = 1 << 16) -> float:
    """log Z of a dense binary RBM by enumerating the smaller side (≤ MAX_ENUM units), in float64."""
    if not rbm.spec.is_dense or not _is_binary(rbm):
        raise RbmError("exact log Z needs a dense RBM with binary units on both sides")
    W, a, b = (t.double() for t in rbm.physical())
    V, H = W.shape
    if min(V, H) > MAX_ENUM:
        raise RbmError(f"exact log Z enumerates 2^{min(V, H)} states; at most {MAX_ENUM} units supported")
    if H <= V:  # Σ_h exp(b·h + Σ_i softplus(a_i + (Wh)_i))
        bias, other, M, n = b, a, W.t(), H
    else:  # Σ_v exp(a·v + Σ_j softplus(b_j + (vW)_j))
        bias, other, M, n = a, b, W, V
    parts = []
    for start in range(0, 2 ** n, chunk):
        states = _states_range(n, start, chunk)
        parts.append(torch.logsumexp(states @ bias + torch.nn.functional.softplus(other + states @ M).sum(1), 0))
    return float(torch.logsumexp(torch.stack(parts), 0))


def _states_range(n: int, start: int, count: int) -> torch.Tensor:
    """Bit vectors for the integers start..start+count−1 (most significant bit first), (count, n)."""
    idx = torch.arange(start, min(start + count, 2 ** n), dtype=torch.int64)
    return ((idx.unsqueeze(1) >> torch.arange(n - 1, -1, -1)) & 1).double()


@torch.no_grad()
def log_likelihood(rbm: RBM, v: torch.Tensor, log_z: float) -> torch.Tensor:
    """log p(v) = −F(v) − log Z per sample, (B,) float64, with the exact copies free energy."""
    return -copy.deepcopy(rbm).double().free_energy(v.double(), exact=True) - log_z
