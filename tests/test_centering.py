"""Centered dense layers: E(v, h) = −a·v − b·h − (v − μ)Wh, checked against the energy written
out by hand, the uncentered layer it equals, and the centered CD-1 update; and the weight
scale without the fan-in factor that goes with centering every dense layer."""

import itertools
import math

import pytest
import torch

from rbmcli.model.dbn import DBN, build_specs
from rbmcli.model.loss import contrastive_loss
from rbmcli.model.rbm import RBM, LayerSpec
from rbmcli.model.sampling import meanfield_reconstruction
from rbmcli.model.units import Units
from rbmcli.train.checkpoint import load_model, save_model

BIN = Units.make(1)


pytestmark = pytest.mark.usefixtures("float64")  # reference comparisons in float64


def centered_dense(V, H, vu=BIN, hu=BIN, seed=0):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(LayerSpec(kind="dense", visible_shape=(V,), hidden=H, visible_units=vu, hidden_units=hu),
              init_std=0.7, generator=g).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(V, generator=g))
        rbm.hidden_bias.copy_(torch.randn(H, generator=g))
        rbm.visible_offset.copy_(torch.rand(V, generator=g) * vu.n)
    return rbm


def uncentered_twin(rbm: RBM) -> RBM:
    """An uncentered layer (μ = 0) with rbm's weights and visible bias and the hidden bias
    that physical() folds μ into."""
    plain = RBM(rbm.spec, init_std=0.0).double()
    with torch.no_grad():
        plain.weight.copy_(rbm.weight)
        plain.visible_bias.copy_(rbm.visible_bias)
        plain.hidden_bias.copy_(rbm.physical()[2] * rbm.spec.hidden_units.k)
    return plain


def test_centered_free_energy_equals_enumeration_of_the_centered_energy():
    rbm = centered_dense(3, 5, seed=1)
    W = rbm.weight / rbm.scale
    a, b, mu = rbm.visible_bias, rbm.hidden_bias, rbm.visible_offset  # k = 1: natural = physical biases
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    for v in torch.tensor(list(itertools.product([0.0, 1.0], repeat=3))):
        energies = -(a @ v) - hs @ b - hs @ ((v - mu) @ W)  # written out, (32,)
        expected = -torch.logsumexp(-energies, 0)
        assert rbm.free_energy(v[None])[0].item() == pytest.approx(expected.item(), abs=1e-10)


def test_physical_parameters_are_the_uncentered_layer_with_the_same_energy():
    """physical() folds μ into b: an uncentered layer with those parameters has the same free
    energy and conditionals (what AIS and the exact partition function read)."""
    u = Units.make(255)
    rbm = centered_dense(7, 5, vu=u, hu=BIN, seed=2)
    b = rbm.physical()[2]
    plain = uncentered_twin(rbm)
    v = torch.randint(0, 256, (3, 7), generator=torch.Generator().manual_seed(3)).double()
    assert torch.allclose(rbm.free_energy(v), plain.free_energy(v), atol=1e-9)
    assert torch.allclose(rbm.hidden_mean(v), plain.hidden_mean(v), atol=1e-12)
    h = torch.rand(3, 5, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(rbm.visible_mean(h), plain.visible_mean(h), atol=1e-9)
    assert not torch.allclose(b, rbm.hidden_bias / rbm.spec.hidden_units.k)  # μ did change b


def test_loss_gradient_is_the_centered_cd1_update():
    """∂loss/∂W = −⟨(v − μ) f_h(x(v))⟩ + ⟨(v′ − μ) f_h(x(v′))⟩ (Montavon & Müller 2012): the
    mean input no longer drives the weights."""
    u = Units.make(255)
    rbm = centered_dense(7, 5, vu=u, hu=u, seed=5)
    v = torch.randint(0, 256, (3, 7), generator=torch.Generator().manual_seed(6)).double()
    v_neg = meanfield_reconstruction(rbm, v)
    contrastive_loss(rbm, v, v_neg).backward()
    W, _, b = rbm.physical()
    mu = rbm.visible_offset
    hp, hn = u.mean(b + v @ W), u.mean(b + v_neg @ W)
    dW = ((v - mu).t() @ hp - (v_neg - mu).t() @ hn) / 3
    assert torch.allclose(-rbm.weight.grad, dW / rbm.scale, rtol=1e-9, atol=1e-12)


def test_moving_the_offset_leaves_the_model_unchanged():
    u = Units.make(255)
    rbm = centered_dense(7, 5, vu=u, hu=u, seed=7)
    v = torch.randint(0, 256, (3, 7), generator=torch.Generator().manual_seed(8)).double()
    h = torch.rand(3, 5, generator=torch.Generator().manual_seed(9)) * 255
    before = rbm.free_energy(v), rbm.hidden_mean(v), rbm.visible_mean(h)
    target = torch.full((7,), 40.0)
    mu0 = rbm.visible_offset.clone()
    rbm.move_offset(target, 0.25)
    assert torch.allclose(rbm.visible_offset, mu0 + 0.25 * (target - mu0))
    after = rbm.free_energy(v), rbm.hidden_mean(v), rbm.visible_mean(h)
    for x, y in zip(before, after):
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-8)


def test_dbn_offsets_follow_the_inputs_of_dense_layers_above_the_first():
    u = Units.make(255)
    specs = build_specs("conv:3:3:2:1,dense:5,dense:7", (1, 9, 9), u, u)
    dbn = DBN(specs, 0.3, torch.Generator().manual_seed(0)).double()
    v = torch.randint(0, 256, (11, 1, 9, 9), generator=torch.Generator().manual_seed(1)).double()
    dbn.move_offsets(v, 1.0, {1, 2})
    assert not dbn.layers[0].visible_offset.any()  # the data layer (and any conv layer) stays uncentered
    f1 = dbn.up(v, upto=1).flatten(1)
    assert torch.allclose(dbn.layers[1].visible_offset, f1.mean(0))
    assert torch.allclose(dbn.layers[2].visible_offset, dbn.up(v, upto=2).mean(0))


def test_checkpoint_stores_offsets_of_centered_layers_only(tmp_path):
    from safetensors import safe_open

    u = Units.make(255)
    dbn = DBN(build_specs("dense:5,dense:3", (1, 3, 3), u, u), 0.3, torch.Generator().manual_seed(2))
    dbn.move_offsets(torch.rand(4, 1, 3, 3) * 255, 1.0, {1})
    save_model(tmp_path / "m.safetensors", dbn, (1, 3, 3), {})
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        names = set(f.keys())
    assert "layers.1.visible_offset" in names and "layers.0.visible_offset" not in names
    loaded, _ = load_model(tmp_path / "m.safetensors")
    for a, b in zip(dbn.layers, loaded.layers):
        assert torch.allclose(a.visible_offset.float(), b.visible_offset.float())


def test_generate_recipe_centers_the_layers_above_the_first_and_follows_their_inputs(tmp_path):
    """After training, each centered layer's μ is close to the mean of its input under the
    final weights (it follows the inputs as the layer below learns); the paper recipe keeps μ = 0."""
    from rbmcli.train.config import TrainConfig
    from rbmcli.train.trainer import train

    torch.set_default_dtype(torch.float32)
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(300, 1, 5, 7, generator=g) * 255).to(torch.uint8)
    runs = {}
    for recipe in ("generate", "paper"):
        c = TrainConfig(recipe=recipe, arch="conv:3:3:2:1,dense:9,dense:5", epochs=3, batch_size=20,
                        device="cpu", sample_steps=2)
        runs[recipe] = load_model(train(c, tmp_path / recipe, images=images).checkpoint)[0]
    assert not any(layer.visible_offset.any() for layer in runs["paper"].layers)
    dbn = runs["generate"]
    assert not dbn.layers[0].visible_offset.any()
    v = images.float()
    for i in (1, 2):
        mean = dbn.up(v, upto=i).flatten(1).mean(0)
        n = dbn.layers[i].spec.visible_units.n
        assert dbn.layers[i].visible_offset.abs().sum() > 0
        assert (dbn.layers[i].visible_offset - mean).abs().max() / n < 0.05


def test_center_data_centers_a_dense_first_layer_too(tmp_path):
    """--center-data (the generate recipe's default): the data layer's μ follows the mean of the
    (visible-unit) data; with --no-center-data the first layer stays uncentered."""
    from rbmcli.train.config import TrainConfig
    from rbmcli.train.trainer import train

    torch.set_default_dtype(torch.float32)
    g = torch.Generator().manual_seed(3)
    images = (torch.rand(200, 1, 5, 7, generator=g) * torch.linspace(0.1, 1, 7) * 255).to(torch.uint8)  # column means 13..128
    runs = {}
    for center_data in (False, True):
        c = TrainConfig(arch="dense:9", epochs=2, batch_size=20, device="cpu", sample_steps=2, center_data=center_data)
        runs[center_data] = load_model(train(c, tmp_path / str(center_data), images=images).checkpoint)[0]
    assert not runs[False].layers[0].visible_offset.any()
    mu, n = runs[True].layers[0].visible_offset, runs[True].layers[0].spec.visible_units.n
    assert torch.allclose(mu, images.flatten(1).float().mean(0) * n / 255, atol=0.05 * n)
    assert mu.std() > 0.05 * n  # a per-pixel mean, not a constant


def test_unit_weight_scale_drops_the_fan_in_factor_of_dense_layers_only(tmp_path):
    """--weight-scale unit: s = √(k_v N_v k_h N_h) for dense layers, conv layers keep √fan_in;
    first (the generate recipe's): only a dense first layer drops it;
    x = b + vW̃/s by hand; the choice travels with the checkpoint, and a model description
    written before it existed loads with the fan-in factor."""
    import json

    from rbmcli.train.checkpoint import read_safetensors

    u = Units.make(255)
    specs = build_specs("conv:3:3:2:1,dense:5", (1, 7, 9), u, u, weight_scale="unit")
    assert specs[0].fan_in_scale and not specs[1].fan_in_scale
    for scale, expected in (("fan-in", [True, True, True]), ("unit", [False, False, False]), ("first", [False, True, True])):
        assert [s.fan_in_scale for s in build_specs("dense:7,dense:5,dense:3", (1, 3, 5), u, u, weight_scale=scale)] \
            == expected, scale
    assert [s.fan_in_scale for s in build_specs("conv:3:3:2:1,dense:5", (1, 7, 9), u, u, weight_scale="first")] == [True, True]
    dbn = DBN(specs, 0.3, torch.Generator().manual_seed(4)).double()
    conv, dense = dbn.layers
    assert math.isclose(conv.scale, math.sqrt(16 * 1 * 9)) and math.isclose(dense.scale, 4.0)  # k·N = 4
    v = torch.rand(3, dense.spec.visible_shape[0], generator=torch.Generator().manual_seed(5)) * 255
    x = dense.hidden_bias / dense.spec.hidden_units.k + v @ dense.weight / 4.0
    assert torch.allclose(dense.hidden_input(v), x)
    save_model(tmp_path / "u.safetensors", dbn, (1, 7, 9), {})
    loaded, _ = load_model(tmp_path / "u.safetensors")
    assert [l.scale for l in loaded.layers] == [l.scale for l in dbn.layers]
    tensors, meta = read_safetensors(tmp_path / "u.safetensors")
    model = json.loads(meta["model"])
    for layer in model["layers"]:
        del layer["fan_in_scale"]
    old = LayerSpec.from_dict(model["layers"][1])
    assert old.fan_in_scale and math.isclose(RBM(old).scale, math.sqrt(16 * old.fan_in))
# --- conv layers: one offset per channel, folded into the bias ------------------------------
def centered_conv(seed=0, vu=Units.make(255), hu=Units.make(255)):
    g = torch.Generator().manual_seed(seed)
    spec = LayerSpec(kind="conv", visible_shape=(3, 7, 5), hidden=5, visible_units=vu, hidden_units=hu,
                     kernel=3, stride=2, padding=1)
    rbm = RBM(spec, init_std=0.7, generator=g).double()
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(3, generator=g))
        rbm.hidden_bias.copy_(torch.randn(5, generator=g))
    rbm.move_offset(torch.rand(3, generator=g).double() * vu.n, 1.0)
    return rbm, g


def test_conv_centering_is_the_convolution_of_the_centered_padded_input():
    """x = b + W⋆(v − μ) where the padding outside the image holds v = 0 (centered: −μ):
    written out with an explicit pad, then a convolution without padding. Its gradient is then
    the centered one, ⟨(v_patch − μ) h⟩."""
    import torch.nn.functional as F

    rbm, g = centered_conv(seed=11)
    assert rbm.visible_offset.std() > 0 and rbm.conv_centered
    v = torch.randint(0, 256, (4, 3, 7, 5), generator=g).double()
    mu = rbm.visible_offset.view(1, 3, 1, 1)
    W, b = rbm.weight / rbm.scale, rbm.hidden_bias / rbm.spec.hidden_units.k
    expected = F.conv2d(F.pad(v, (1, 1, 1, 1)) - mu, W, b, stride=2)  # (4, 5, 4, 3)
    assert torch.allclose(rbm.hidden_input(v), expected, rtol=1e-12, atol=1e-9)
    rbm.hidden_input(v).sum().backward()
    patches = F.unfold(F.pad(v, (1, 1, 1, 1)) - mu, 3, stride=2)  # (4, 27, 12): every patch, centered
    assert torch.allclose(rbm.weight.grad.flatten(1) * rbm.scale, patches.sum((0, 2)).expand(5, 27), rtol=1e-10)


def test_conv_centering_keeps_the_papers_conv_rbm_and_moving_it_changes_nothing():
    """physical() is an uncentered conv layer (one bias per channel) with the same free energy
    and conditionals; moving μ (per channel) leaves both unchanged."""
    rbm, g = centered_conv(seed=12)
    plain = uncentered_twin(rbm)
    v = torch.randint(0, 256, (3, 3, 7, 5), generator=g).double()
    h = torch.rand(3, 5, 4, 3, generator=g).double() * 255
    assert torch.allclose(rbm.free_energy(v), plain.free_energy(v), rtol=1e-12, atol=1e-8)
    assert torch.allclose(rbm.visible_mean(h), plain.visible_mean(h), rtol=1e-12, atol=1e-9)
    before = rbm.free_energy(v), rbm.hidden_mean(v), rbm.visible_mean(h)
    mu0 = rbm.visible_offset.clone()
    target = torch.tensor([10.0, 200.0, 60.0]).double()
    rbm.move_offset(target, 0.3)
    assert torch.allclose(rbm.visible_offset, mu0 + 0.3 * (target - mu0))
    for x, y in zip(before, (rbm.free_energy(v), rbm.hidden_mean(v), rbm.visible_mean(h))):
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-8)


def test_dbn_offsets_of_conv_layers_are_channel_means_and_survive_a_checkpoint(tmp_path):
    u = Units.make(255)
    specs = build_specs("conv:3:3:2:1,conv:5:3:2:1,dense:7", (3, 9, 7), u, u)
    dbn = DBN(specs, 0.3, torch.Generator().manual_seed(0)).double()
    v = torch.randint(0, 256, (11, 3, 9, 7), generator=torch.Generator().manual_seed(1)).double()
    dbn.move_offsets(v, 1.0, {0, 1, 2})
    assert torch.allclose(dbn.layers[0].visible_offset, v.mean((0, 2, 3)))
    assert torch.allclose(dbn.layers[1].visible_offset, dbn.up(v, upto=1).mean((0, 2, 3)))
    save_model(tmp_path / "c.safetensors", dbn.float(), (3, 9, 7), {})
    loaded, _ = load_model(tmp_path / "c.safetensors")
    assert all(layer.conv_centered for layer in loaded.layers[:2])
    assert torch.allclose(loaded.up(v).float(), dbn.up(v.float()), atol=1e-3)


def test_center_conv_centers_conv_layers_on_their_channel_means_and_drops_their_fan_in(tmp_path):
    """--center-conv: every conv layer's μ follows the channel means of its input, and its weight
    scale has no fan-in factor; without it (the default) conv layers stay the paper's."""
    from rbmcli.train.config import TrainConfig
    from rbmcli.train.trainer import train

    torch.set_default_dtype(torch.float32)
    g = torch.Generator().manual_seed(5)
    images = (torch.rand(200, 3, 7, 9, generator=g) * torch.tensor([0.2, 0.6, 1.0]).view(3, 1, 1) * 255).to(torch.uint8)
    runs = {}
    for center_conv in (False, True):
        c = TrainConfig(arch="conv:3:3:2:1,conv:5:3:2:1,dense:7", epochs=2, batch_size=20, device="cpu",
                        sample_steps=2, center_conv=center_conv)
        runs[center_conv] = load_model(train(c, tmp_path / str(center_conv), images=images).checkpoint)[0]
    plain, dbn = runs[False], runs[True]
    assert not any(layer.visible_offset.any() for layer in plain.layers[:2])
    assert all(layer.spec.fan_in_scale for layer in plain.layers[:2])
    assert not any(layer.spec.fan_in_scale for layer in dbn.layers[:2]) and dbn.layers[2].spec.fan_in_scale
    n = dbn.layers[0].spec.visible_units.n
    assert torch.allclose(dbn.layers[0].visible_offset, images.float().mean((0, 2, 3)) * n / 255, atol=0.05 * n)
    mean1 = dbn.up(images.float(), upto=1).mean((0, 2, 3))
    assert (dbn.layers[1].visible_offset - mean1).abs().max() / n < 0.05
