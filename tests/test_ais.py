"""AIS against independent references: exact log Z by enumeration, brute-force sums over the
visible states of the copies model, and the base-rate model's closed form.

Settings: 1000 linearly spaced betas and 100 runs (the full schedule has 14,501 betas; at these
sizes 1000 already lands within ~0.03 nats of the exact value, the tests allow 0.2)."""

import math

import pytest
import torch
import torch.nn.functional as F

from rbmcli.eval.ais import (ais_log_likelihood, ais_log_partition, base_log_partition, base_rate_biases,
                        default_betas, reverse_ais_log_partition)
from rbmcli.errors import RbmError
from rbmcli.eval.partition import all_binary_states, exact_log_partition
from rbmcli.model.rbm import RBM, LayerSpec
from rbmcli.model.units import Units

BIN = Units.make(1)
BETAS = torch.linspace(0, 1, 1000)
RUNS = 100


def dense(V, H, vu=BIN, hu=BIN, std=0.7, seed=0):
    """A float64 dense RBM, physical weights ~ N(0, std²) for binary units, random biases."""
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(LayerSpec(kind="dense", visible_shape=(V,), hidden=H, visible_units=vu, hidden_units=hu), init_std=std, generator=g).double()
    with torch.no_grad():
        rbm.weight.mul_(math.sqrt(V))  # natural W̃ = s·W carries √fan_in: keep physical std = std
        rbm.visible_bias.copy_(torch.randn(V, generator=g, dtype=torch.float64))
        rbm.hidden_bias.copy_(torch.randn(H, generator=g, dtype=torch.float64))
    return rbm.requires_grad_(False)


def brute_log_z(rbm):
    """log Σ_v exp(−F_exact(v)) over all 2^V binary visible vectors."""
    return float(torch.logsumexp(-rbm.free_energy(all_binary_states(rbm.spec.visible_shape[0]), exact=True), 0))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def _one_thread():
    # Matrices here are tiny: one thread avoids synchronisation costs between 1000 small steps.
    torch.set_num_threads(1)
    yield


@pytest.mark.parametrize("H", [10, 15, 20])
@pytest.mark.parametrize("std", [0.1, 0.5, 1.0])
def test_ais_matches_exact_log_z_binary(H, std):
    rbm = dense(25, H, std=std, seed=H)
    exact = exact_log_partition(rbm)
    res = ais_log_partition(rbm, torch.zeros(25), RUNS, betas=BETAS, generator=gen(H))
    assert abs(res.log_z - exact) < 0.04, (res.log_z, exact)  # the accuracy the guide states (measured ≤ 0.035)
    assert res.log_z_low <= exact <= res.log_z_high  # and the ±3σ interval holds the truth
    assert res.log_weights.shape == (RUNS,) and res.seconds > 0


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_ais_multinary_hidden_matches_enumeration(act):
    """N_h = 3 copies with offsets: β scales x − o_n, and the estimate matches Σ_v exp(−F_exact(v))."""
    rbm = dense(9, 2, hu=Units.make(3, None, act), std=1.0, seed=3)
    exact = brute_log_z(rbm)
    res = ais_log_partition(rbm, torch.zeros(9), RUNS, betas=BETAS, generator=gen())
    assert abs(res.log_z - exact) < 0.04, (res.log_z, exact)
    assert res.log_z_low <= exact <= res.log_z_high
    # The base model's hidden part is H·N fair coins.
    assert res.log_z_base == pytest.approx(9 * math.log(2) + 2 * 3 * math.log(2), abs=1e-12)


def test_reverse_ais_from_exact_samples_brackets_log_z():
    """Jensen: E[log w] ≤ log Z_B − log Z_A for forward AIS, and −E[log w] ≥ it for reverse AIS
    started from exact samples of p_B (drawn here by enumeration). A short schedule (30 betas)
    makes the gaps visible; 2000 runs make the Monte Carlo error of the means small."""
    rbm = dense(12, 8, std=1.0, seed=9)
    states = all_binary_states(12)
    neg_f = -rbm.free_energy(states)
    exact = float(torch.logsumexp(neg_f, 0))
    assert exact == pytest.approx(exact_log_partition(rbm), abs=1e-10)
    v = states[torch.multinomial(torch.softmax(neg_f, 0), 2000, replacement=True, generator=gen(1))]
    short = torch.linspace(0, 1, 30)
    rev = reverse_ais_log_partition(rbm, torch.zeros(12), v, betas=short, generator=gen(2))
    fwd = ais_log_partition(rbm, torch.zeros(12), 2000, betas=short, generator=gen(2))
    lower = fwd.log_z_base + float(fwd.log_weights.mean())
    upper = rev.log_z_base - float(rev.log_weights.mean())
    assert lower + 0.05 < exact < upper - 0.05, (lower, exact, upper)
    rev = reverse_ais_log_partition(rbm, torch.zeros(12), v[:RUNS], betas=BETAS, generator=gen(3))
    assert abs(rev.log_z - exact) < 0.04 and rev.log_z_low <= exact <= rev.log_z_high


def test_target_equal_to_base_gives_closed_form_exactly():
    a0 = base_rate_biases(torch.rand(50, 12, generator=gen(1)).round(), smoothing=1.0)
    rbm = dense(12, 5)
    with torch.no_grad():
        rbm.weight.zero_(), rbm.hidden_bias.zero_(), rbm.visible_bias.copy_(a0)
    res = ais_log_partition(rbm, a0, 20, betas=torch.linspace(0, 1, 50), generator=gen())
    log_z_a = float(F.softplus(a0).sum()) + 5 * math.log(2)
    assert res.log_z == log_z_a == res.log_z_base == res.log_z_low == res.log_z_high
    assert torch.all(res.log_weights == 0)
    assert exact_log_partition(rbm) == pytest.approx(log_z_a, abs=1e-10)  # closed form is right
    # Multinary hidden, zero weights: Σ_v is free of h, so every run has the same weight and
    # log Z = Σ softplus(a0) + H Σ_n softplus(−o_n) (not H·N·log 2: the offsets stay in the energy).
    hu = Units.make(3)
    rbm3 = dense(12, 5, hu=hu)
    with torch.no_grad():
        rbm3.weight.zero_(), rbm3.hidden_bias.zero_(), rbm3.visible_bias.copy_(a0)
    res3 = ais_log_partition(rbm3, a0, 20, betas=torch.linspace(0, 1, 50), generator=gen())
    closed = float(F.softplus(a0).sum() + 5 * F.softplus(-hu.offsets(dtype=torch.float64)).sum())
    assert res3.log_z == pytest.approx(closed, abs=1e-9)
    assert base_log_partition(a0, 15) == pytest.approx(res3.log_z_base, abs=1e-12)


def test_base_rate_biases_formula():
    v = torch.tensor([[1.0, 0, 1], [1, 0, 0], [1, 0, 1], [0, 0, 1]])
    a0 = base_rate_biases(v, smoothing=0.5)
    p = (torch.tensor([3.0, 0, 3]) + 0.5) / (4 + 1)
    assert torch.allclose(a0, torch.log(p / (1 - p)).double())
    assert base_rate_biases(v.view(4, 1, 1, 3), 0.5).shape == (3,)
    with pytest.raises(RbmError, match="smoothing"):
        base_rate_biases(v, smoothing=0)


def test_default_betas_follow_salakhutdinov_murray():
    b = default_betas()
    assert len(b) == 14501 and b[0] == 0 and b[-1] == 1 and torch.all(b[1:] > b[:-1])
    assert ((b < 0.5).sum(), ((b >= 0.5) & (b < 0.9)).sum()) == (500, 4000)


@pytest.mark.parametrize("n", [4, 29, 1001, 14_500])
def test_a_shorter_schedule_has_n_temperatures_in_the_same_proportions(n):
    """`rbm evaluate --ais-betas N` anneals through exactly N temperatures, one schedule for all."""
    b = default_betas(n)
    assert len(b) == n and b[0] == 0 and b[-1] == 1 and torch.all(b[1:] > b[:-1])
    assert abs(int((b < 0.5).sum()) - n * 500 / 14_501) <= 1 and abs(int((b < 0.9).sum()) - n * 4500 / 14_501) <= 2
    with pytest.raises(RbmError, match="at least 4"):
        default_betas(3)


def test_progress_and_base_rate_start_are_reproducible():
    rbm = dense(10, 7, std=0.5)
    calls = []
    r1 = ais_log_partition(rbm, torch.zeros(10), 8, betas=torch.linspace(0, 1, 1001), generator=gen(5), progress=lambda d, t: calls.append((d, t)))
    r2 = ais_log_partition(rbm, torch.zeros(10), 8, betas=torch.linspace(0, 1, 1001), generator=gen(5))
    assert calls[-1] == (1000, 1000) and len(calls) == 2
    assert torch.equal(r1.log_weights, r2.log_weights)


def test_unsupported_models_raise():
    with pytest.raises(RbmError, match="binary visible"):
        ais_log_partition(dense(4, 3, vu=Units.make(3)), torch.zeros(4), 2, betas=BETAS)
    conv = RBM(LayerSpec(kind="conv", visible_shape=(1, 4, 4), hidden=2, visible_units=BIN, hidden_units=BIN)).double()
    with pytest.raises(RbmError, match="dense"):
        ais_log_partition(conv, torch.zeros(1), 2, betas=BETAS)
    with pytest.raises(RbmError, match="betas"):
        ais_log_partition(dense(4, 3), torch.zeros(4), 2, betas=torch.tensor([0.0, 0.7, 0.5, 1.0]))
    with pytest.raises(RbmError, match="shape"):
        ais_log_partition(dense(4, 3), torch.zeros(5), 2, betas=BETAS)


def test_log_likelihood_exact_and_ais_paths():
    v = torch.rand(30, 9, generator=gen(2)).round().double()
    small = dense(9, 4, std=1.0)
    out = ais_log_likelihood(small, v)
    expected = float(-small.free_energy(v).mean()) - exact_log_partition(small)
    assert out["method"] == "exact" and out["mean_log_likelihood"] == pytest.approx(expected, abs=1e-10)
    # Multinary hidden units: no enumeration in partition.py, so AIS; compare with brute force.
    multi = dense(9, 2, hu=Units.make(3), std=1.0, seed=4)
    out = ais_log_likelihood(multi, v, n_runs=RUNS, betas=BETAS, generator=gen())
    expected = float(-multi.free_energy(v, exact=True).mean()) - brute_log_z(multi)
    assert out["method"] == "ais"
    assert abs(out["mean_log_likelihood"] - expected) < 0.04
    assert out["low"] <= expected <= out["high"]
