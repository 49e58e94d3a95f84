"""The equations against independent references: enumeration, hand-written CD, closed forms."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from rbmcli.model.dbn import DBN, build_specs, parse_arch
from rbmcli.errors import RbmError
from rbmcli.model.loss import contrastive_loss, dbn_losses
from rbmcli.eval.partition import exact_log_partition
from rbmcli.model.rbm import RBM, LayerSpec
from rbmcli.model.sampling import meanfield_reconstruction
from rbmcli.model.units import Units

BIN = Units.make(1)


pytestmark = pytest.mark.usefixtures("float64")  # reference comparisons in float64


def dense(V, H, vu=BIN, hu=BIN, std=0.7, seed=0):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(LayerSpec(kind="dense", visible_shape=(V,), hidden=H, visible_units=vu, hidden_units=hu), init_std=std, generator=g).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(V, generator=g))
        rbm.hidden_bias.copy_(torch.randn(H, generator=g))
    return rbm


def test_binary_free_energy_equals_enumeration():
    rbm = dense(3, 5)
    W, a, b = rbm.physical()
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    for v in vs:
        energies = -(a @ v) - hs @ b - hs @ (v @ W)  # E(v, h) for every h, (32,)
        expected = -torch.logsumexp(-energies, 0)
        assert rbm.free_energy(v[None])[0].item() == pytest.approx(expected.item(), abs=1e-10)
        assert rbm.free_energy(v[None], exact=True)[0].item() == pytest.approx(expected.item(), abs=1e-10)


def test_multinary_copies_free_energy_equals_enumeration():
    """Hidden units with N = 3 are 3 binary copies with offsets o_n: enumerate 2^(3·2) states."""
    hu = Units.make(3)
    rbm = dense(3, 2, hu=hu, std=0.5, seed=1)
    W, a, b = rbm.physical()
    o = hu.offsets(dtype=torch.float64)
    copies = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6))).view(-1, 2, 3)  # (64, H, N)
    for v in torch.tensor(list(itertools.product([0.0, 1.0], repeat=3))):
        x = b + v @ W  # (H,)
        energies = -(a @ v) - ((x[None, :, None] - o) * copies).sum((1, 2))
        expected = -torch.logsumexp(-energies, 0)
        assert rbm.free_energy(v[None], exact=True)[0].item() == pytest.approx(expected.item(), abs=1e-10)


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_n1_multinary_formulas_reduce_to_binary(act):
    """N = 1, k = 1: mean, free-energy term and variance are the single unit's of its activation,
    written out independently here (sigmoid: the binary RBM's; relu: the clipped identity)."""
    x = torch.linspace(-9, 9, 37)
    u = Units.make(1, 1.0, act)
    if act == "sigmoid":
        mean, integral, var = torch.sigmoid(x), F.softplus(x), torch.sigmoid(x) * torch.sigmoid(-x)
    else:
        mean = x.clamp(0, 1)
        integral = torch.where(x < 0, 0.0, torch.where(x < 1, x * x / 2, x - 0.5))
        var = ((x > 0) & (x < 1)).to(x.dtype)
    assert torch.allclose(u.mean(x), mean)
    assert torch.allclose(u.integral(x), integral)
    assert torch.allclose(u.variance(x), var)
    if act == "sigmoid":  # one copy with offset 0: the copies model is the binary unit itself
        assert torch.equal(u.offsets(dtype=x.dtype), torch.zeros(1, dtype=x.dtype))
        assert torch.allclose(u.copies_integral(x), F.softplus(x))
        assert torch.allclose(u.copies_mean(x), mean)
        assert Units.make(1) == u  # the default k for N = 1 sigmoid
    else:  # f⁻¹(½) = ½
        assert torch.allclose(u.offsets(dtype=x.dtype), torch.tensor([0.5], dtype=x.dtype))


@pytest.mark.parametrize("n, k, act", [(255, None, "sigmoid"), (7, 0.3, "sigmoid"), (5, None, "relu")])
def test_offsets_put_each_copy_at_half_a_level(n, k, act):
    """o_n = f⁻¹(n − ½): the mean activity at copy n's offset is exactly n − ½."""
    u = Units.make(n, k, act)
    o = u.offsets(dtype=torch.float64)
    assert o.shape == (n,) and torch.all(o[1:] > o[:-1])
    assert torch.allclose(u.mean(o), torch.arange(n, dtype=torch.float64) + 0.5, atol=1e-9)


def test_integral_is_antiderivative_of_mean():
    for u in [Units.make(255), Units.make(7, 0.3), Units.make(255, None, "relu"), Units.make(5, 0.37, "relu")]:
        x = torch.linspace(-3 / u.k, 3 / u.k, 1001, requires_grad=True)
        (grad,) = torch.autograd.grad(u.integral(x).sum(), x)
        assert torch.allclose(grad, u.mean(x), atol=1e-9)
        assert u.integral(torch.tensor(-60.0 / u.k)).item() < 1e-6 * u.n / u.k  # G(−∞) = 0


def test_copies_approximation_for_defaults():
    """With N = 255, k = 4/N the copies mean, variance and free energy follow
    f, f' and ∫f. Bounds measured: |Δmean| < 0.45, |Δvar| < 0.25 (peak f′ = 1), ∫ band < 7 nats."""
    u = Units.make(255)
    x = torch.linspace(-6 / u.k, 6 / u.k, 4001)
    assert (u.copies_mean(x) - u.mean(x)).abs().max() < 0.45
    assert (u.copies_variance(x) - u.variance(x)).abs().max() < 0.25
    d = u.copies_integral(x) - u.integral(x)
    assert d.max() - d.min() < 7.0
    # k = 1 breaks it (8.7 % of N), which is why k is small by default.
    bad = Units.make(255, 1.0)
    assert (bad.copies_mean(x) - bad.mean(x)).abs().max() > 15
    # Capped ReLU with k = 1/N: NReLU offsets n − ½; error ≤ log 2 at the kinks.
    r = Units.make(255, None, "relu")
    assert torch.allclose(r.offsets(dtype=torch.float64), torch.arange(255) + 0.5)
    xr = torch.linspace(-20, 275, 3001)
    assert (r.copies_mean(xr) - r.mean(xr)).abs().max() < math.log(2) + 1e-3


@pytest.mark.parametrize("n,act", [(15, "sigmoid"), (255, "sigmoid"), (40, "relu")])
def test_moment_matched_sampler_matches_exact(n, act):
    u = Units.make(n, None, act)
    g = torch.Generator().manual_seed(3)
    centre = 0.0 if act == "sigmoid" else n / 2 / (u.k * n)
    x = (centre + torch.tensor([-1.5, -0.5, 0.0, 0.7, 1.9]) / u.k / (1 if act == "sigmoid" else 4)).repeat(20000, 1)
    exact = u.sample(x, g, exact=True)
    approx = u.sample(x, g, exact=False)
    assert exact.min() >= 0 and exact.max() <= n and approx.min() >= 0 and approx.max() <= n
    assert torch.equal(approx, approx.round())
    # Means: the copies mean and f differ by < 0.45 (above); Monte Carlo error is ~0.02.
    assert (exact.mean(0) - approx.mean(0)).abs().max() < 0.5
    # Variances: moment-matched adds rounding noise (1/12) and clamps; within 15 % + 0.2.
    ve, va = exact.var(0), approx.var(0)
    assert ((ve - va).abs() <= 0.15 * ve + 0.2).all(), (ve, va)


def _cd1_grads(rbm, v, v_neg):
    """The CD-1 update (hand-written): ΔW = ⟨v fₕ(x(v))⟩ − ⟨v′ fₕ(x(v′))⟩ in physical units."""
    W, a, b = rbm.physical()
    hu = rbm.spec.hidden_units
    hp, hn = hu.mean(b + v @ W), hu.mean(b + v_neg @ W)
    B = v.shape[0]
    return (v.t() @ hp - v_neg.t() @ hn) / B, (v - v_neg).mean(0), (hp - hn).mean(0)


@pytest.mark.parametrize("n", [1, 255])
def test_loss_gradient_equals_cd1_update(n):
    u = Units.make(n)
    rbm = dense(7, 5, vu=u, hu=u, std=0.3, seed=2)
    g = torch.Generator().manual_seed(4)
    v = torch.randint(0, n + 1, (3, 7), generator=g).double()
    v_neg = meanfield_reconstruction(rbm, v)
    contrastive_loss(rbm, v, v_neg).backward()
    dW, da, db = _cd1_grads(rbm, v, v_neg)
    # natural = physical × (s, k_v, k_h): chain rule gives ∂/∂W̃ = ∂/∂W / s, etc.
    assert torch.allclose(-rbm.weight.grad, dW / rbm.scale, rtol=1e-9, atol=1e-12)
    assert torch.allclose(-rbm.visible_bias.grad, da / u.k, rtol=1e-9, atol=1e-12)
    assert torch.allclose(-rbm.hidden_bias.grad, db / u.k, rtol=1e-9, atol=1e-12)


def test_sgd_step_equals_cd1_binary():
    """One SGD step of lr on the natural weights W̃ = s·W is the CD-1 update of the physical
    weights with learning rate lr/s²."""
    rbm = dense(7, 5, std=0.3, seed=5)
    W0 = rbm.physical()[0].detach().clone()
    v = torch.randint(0, 2, (9, 7), generator=torch.Generator().manual_seed(6)).double()
    v_neg = meanfield_reconstruction(rbm, v)
    dW, _, _ = _cd1_grads(rbm, v, v_neg)
    opt = torch.optim.SGD(rbm.parameters(), lr=0.1)
    contrastive_loss(rbm, v, v_neg).backward()
    opt.step()
    assert torch.allclose(rbm.physical()[0].detach(), W0 + 0.1 / rbm.scale**2 * dW, atol=1e-12)


def _conv(C, HW, out, k, s, p, vu=BIN, hu=BIN, seed=0):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(LayerSpec(kind="conv", visible_shape=(C, *HW), hidden=out, visible_units=vu, hidden_units=hu, kernel=k, stride=s, padding=p), init_std=0.5, generator=g).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(C, generator=g))
        rbm.hidden_bias.copy_(torch.randn(out, generator=g))
    return rbm


def test_full_kernel_conv_equals_dense():
    u = Units.make(3)
    conv = _conv(3, (5, 5), 7, 5, 1, 0, u, u)
    lin = dense(75, 7, u, u)
    with torch.no_grad():
        lin.weight.copy_(conv.weight.reshape(7, 75).t())
        lin.visible_bias.copy_(conv.visible_bias.repeat_interleave(25))
        lin.hidden_bias.copy_(conv.hidden_bias)
    v = torch.randint(0, 4, (3, 3, 5, 5)).double()
    h = torch.rand(3, 7, 1, 1) * 3
    assert torch.allclose(conv.hidden_input(v).flatten(1), lin.hidden_input(v.flatten(1)))
    assert torch.allclose(conv.visible_input(h).flatten(1), lin.visible_input(h.flatten(1)))
    assert torch.allclose(conv.free_energy(v), lin.free_energy(v.flatten(1)))


def unfolded(conv):
    """The conv layer's physical parameters written out as a dense RBM's, by explicit loops:
    U (V, H) with U[(c, y, x), (o, i, j)] = W[o, c, ki, kj] where y = i·s − p + ki and
    x = j·s − p + kj fall inside the image, and the biases repeated per position."""
    s = conv.spec
    (C, Hi, Wi), (O, Ho, Wo) = s.visible_shape, s.hidden_shape
    W, a, b = (t.detach() for t in conv.physical())
    U = torch.zeros(C, Hi, Wi, O, Ho, Wo)
    for o, i, j, c, ki, kj in itertools.product(range(O), range(Ho), range(Wo), range(C), range(s.kernel), range(s.kernel)):
        y, x = i * s.stride - s.padding + ki, j * s.stride - s.padding + kj
        if 0 <= y < Hi and 0 <= x < Wi:
            U[c, y, x, o, i, j] += W[o, c, ki, kj]
    return U.reshape(C * Hi * Wi, O * Ho * Wo), a.repeat_interleave(Hi * Wi), b.repeat_interleave(Ho * Wo)


def test_strided_padded_conv_equals_its_unfolded_dense_rbm():
    """Stride 2, padding 1, kernel 4 on a 7×9 image with 3 channels and 5 hidden channels (a 3×4
    map), distinct unit families: the pre-activations both ways, and the free energy, mean
    activities and loss gradient of a dense RBM holding the unfolded parameters."""
    vu, hu = Units.make(3), Units.make(5)
    conv = _conv(3, (7, 9), 5, 4, 2, 1, vu, hu)
    assert conv.spec.hidden_shape == (5, 3, 4)
    U, a, b = unfolded(conv)
    v = torch.randint(0, 4, (4, 3, 7, 9), generator=torch.Generator().manual_seed(1)).double()
    h = torch.rand(4, 5, 3, 4, generator=torch.Generator().manual_seed(2)) * 5
    assert torch.allclose(conv.hidden_input(v).flatten(1), b + v.flatten(1) @ U)
    assert torch.allclose(conv.visible_input(h).flatten(1), a + h.flatten(1) @ U.t())
    lin = dense(189, 60, vu, hu)
    with torch.no_grad():
        lin.weight.copy_(U * lin.scale)
        lin.visible_bias.copy_(a * vu.k)
        lin.hidden_bias.copy_(b * hu.k)
    assert torch.allclose(conv.free_energy(v), lin.free_energy(v.flatten(1)))
    assert torch.allclose(conv.hidden_mean(v).flatten(1), lin.hidden_mean(v.flatten(1)))
    assert torch.allclose(conv.visible_mean(h).flatten(1), lin.visible_mean(h.flatten(1)))
    v_neg = meanfield_reconstruction(conv, v)
    assert torch.allclose(v_neg.flatten(1), meanfield_reconstruction(lin, v.flatten(1)))
    (g_conv,) = torch.autograd.grad(contrastive_loss(conv, v, v_neg), conv.weight)
    (g_lin,) = torch.autograd.grad(contrastive_loss(lin, v.flatten(1), v_neg.flatten(1)), lin.weight)
    # chain rule through the unfolding: dL/dW[o,c,ki,kj] sums dL/dU over the positions it feeds
    g_u = (g_lin * lin.scale).reshape(3, 7, 9, 5, 3, 4)  # dL/dU, U physical
    back = torch.zeros_like(conv.weight)
    for o, i, j, c, ki, kj in itertools.product(range(5), range(3), range(4), range(3), range(4), range(4)):
        y, x = i * 2 - 1 + ki, j * 2 - 1 + kj
        if 0 <= y < 7 and 0 <= x < 9:
            back[o, c, ki, kj] += g_u[c, y, x, o, i, j] / conv.scale  # W physical = W̃ / s
    assert torch.allclose(g_conv, back)


def test_dbn_down_is_the_mean_pass_written_out():
    """DBN.down from the top hidden layer of conv → dense → dense equals f_v(a + hWᵀ) applied
    layer by layer with f(x) = N·σ(kx) written here, the conv layer through its unfolding."""
    specs = build_specs("conv:5:4:2:1,dense:7,dense:3", (3, 7, 9), Units.make(15), Units.make(5))
    dbn = DBN(specs, 0.3, torch.Generator().manual_seed(3)).double()
    with torch.no_grad():
        for layer in dbn.layers:
            layer.visible_bias.normal_(0, 1, generator=torch.Generator().manual_seed(4))
    top = torch.rand(6, 3, generator=torch.Generator().manual_seed(5)) * 5

    def f(units, x):
        return units.n * torch.sigmoid(units.k * x)

    x = top
    for layer in reversed(dbn.layers):
        if layer.spec.is_dense:
            W, a, _ = (t.detach() for t in layer.physical())
        else:
            W, a, _ = unfolded(layer)  # (V, H): the orientation of a dense layer's weight
        x = f(layer.spec.visible_units, a + x.flatten(1) @ W.t())
    with torch.no_grad():
        down = dbn.down(top)
    assert down.shape == (6, 3, 7, 9)
    assert torch.allclose(down.flatten(1), x)


def test_conv_and_transposed_conv_are_adjoint():
    conv = _conv(3, (7, 9), 5, 4, 2, 1)
    with torch.no_grad():
        conv.visible_bias.zero_()
        conv.hidden_bias.zero_()
    v = torch.randn(2, 3, 7, 9)
    h = torch.randn(2, *conv.spec.hidden_shape)
    assert conv.spec.hidden_shape == (5, 3, 4)
    assert conv.visible_input(h).shape == v.shape
    lhs = (conv.hidden_input(v) * h).sum()
    rhs = (v * conv.visible_input(h)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-10)


def test_parse_arch_and_presets():
    assert parse_arch("conv:64,conv:128:3:1:0,dense:500") == [
        ("conv", 64, 4, 2, 1, None), ("conv", 128, 3, 1, 0, None), ("dense", 500, 0, 0, 0, None)]
    assert parse_arch("conv:7:3@15,dense:5@1") == [("conv", 7, 3, 2, 1, 15), ("dense", 5, 0, 0, 0, 1)]
    for bad in ["dense:0", "conv:3:0", "dense:5,conv:3", "mlp:5", "dense:x", "", "dense:5:1", "dense:5@0",
                "dense:5@x", "dense:5@"]:
        with pytest.raises(RbmError):
            parse_arch(bad)
    specs = build_specs("paper-generate", (3, 128, 128), Units.make(255), Units.make(255))
    assert [s.hidden_shape for s in specs[:5]] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (256, 8, 8), (256, 4, 4)]
    assert [s.visible_shape for s in specs[5:]] == [(4096,), (1000,), (500,), (200,)]
    assert build_specs("paper-generate", (3, 64, 64), BIN, BIN)[5].visible_shape == (1024,)


def test_joint_mode_flows_into_lower_layers_detached_does_not():
    specs = build_specs("dense:7,dense:5", (1, 3, 3), BIN, BIN)
    for mode, flows in [("joint", True), ("detached", False)]:
        dbn = DBN(specs, 0.3, torch.Generator().manual_seed(0)).double()
        v = torch.rand(4, 1, 3, 3)
        losses = dbn_losses(dbn, v, mode=mode)
        (g,) = torch.autograd.grad(losses[1], dbn.layers[0].weight, allow_unused=True)
        assert (g is not None and g.abs().sum() > 0) == flows


def test_exact_log_partition_matches_brute_force():
    rbm = dense(5, 3, std=1.0, seed=7)
    W, a, b = rbm.physical()
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    E = -(vs @ a)[:, None] - (hs @ b)[None, :] - vs @ W @ hs.t()
    assert exact_log_partition(rbm) == pytest.approx(torch.logsumexp(-E.flatten(), 0).item(), abs=1e-10)
    rbm2 = dense(3, 6, std=1.0, seed=8)  # enumerates the visible side instead
    W, a, b = rbm2.physical()
    vs, hs = vs[:8, 2:], torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)))
    E = -(vs @ a)[:, None] - (hs @ b)[None, :] - vs @ W @ hs.t()
    assert exact_log_partition(rbm2) == pytest.approx(torch.logsumexp(-E.flatten(), 0).item(), abs=1e-10)


def test_sparsity_penalty_per_unit_and_per_channel():
    """Dense: Σ_j (p − mean_b f_hj/N)² · N/k. Conv: every hidden unit (c, y, x) is pulled to p by
    its channel's mean activity over the batch and positions, so P · Σ_c (p − q_c)² · N/k."""
    from rbmcli.model.loss import sparsity_penalty

    hu = Units.make(255)
    rbm = dense(3, 7, hu=hu)
    h = torch.rand(5, 7) * 255
    want = sum((0.1 - h[:, j].mean() / 255) ** 2 for j in range(7)) * 255 / hu.k
    assert float(sparsity_penalty(rbm, h, 0.1)) == pytest.approx(float(want), rel=1e-12)
    conv = RBM(LayerSpec(kind="conv", visible_shape=(1, 7, 5), hidden=3, visible_units=BIN, hidden_units=BIN, kernel=3, stride=2, padding=0), init_std=0.3,
               generator=torch.Generator().manual_seed(0)).double()
    h = torch.rand(5, 3, 3, 2)  # (B, C, h, w): the conv layer's hidden shape
    want = sum(6 * (0.05 - h[:, c].mean()) ** 2 for c in range(3))
    assert float(sparsity_penalty(conv, h, 0.05)) == pytest.approx(float(want), rel=1e-12)


def test_sparsity_pulls_the_mean_activity_to_its_target():
    """The penalty's gradient reaches the layer: with a large weight a few Adam steps move the
    mean hidden activity from ≈ 0.5 to the target; without it, it stays."""
    v = (torch.rand(64, 7, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    means = {}
    for lam in (0.0, 50.0):
        dbn = DBN(build_specs("dense:5", (1, 1, 7), BIN, BIN), 0.01, torch.Generator().manual_seed(0)).double()
        opt = torch.optim.Adam(dbn.parameters(), lr=0.05)
        for _ in range(100):
            opt.zero_grad()
            sum(dbn_losses(dbn, v.view(64, 1, 1, 7), sparsity=lam, sparsity_target=0.05)).backward()
            opt.step()
        means[lam] = float(dbn.features(v.view(64, 1, 1, 7)).detach().mean())
    assert abs(means[50.0] - 0.05) < 0.02 and means[0.0] > 0.2
