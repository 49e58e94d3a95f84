"""Training behaviour: likelihood rises, determinism, exact resume, checkpoints."""

import json
import math

import pytest
import torch

from rbmcli.data.batches import to_visible
from rbmcli.train.checkpoint import load_model, read_safetensors, save_model, state_path
from rbmcli.train.config import TrainConfig
from rbmcli.errors import RbmError
from rbmcli.model.loss import dbn_losses
from rbmcli.eval.partition import exact_log_partition, log_likelihood
from rbmcli.train.trainer import Trainer, build_dbn, train


def patterns(n=600, side=3, seed=0):
    """Binary 3×3 images: 4 prototypes (bars), each pixel flipped with probability 0.05."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.zeros(4, side, side)
    protos[0, 0, :] = protos[1, :, 0] = protos[2, side - 1, :] = protos[3, :, side - 1] = 1
    x = protos[torch.randint(0, 4, (n,), generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.05
    return ((x != flip.float()).float() * 255).to(torch.uint8).unsqueeze(1)  # (n, 1, 3, 3)


def independent_pixel_ll(images):
    """Mean log-likelihood of the best independent-pixel model (smoothed marginals), nats."""
    v = images.flatten(1).double() / 255
    p = (v.sum(0) + 0.5) / (len(v) + 1)
    return float((v * p.log() + (1 - v) * (1 - p).log()).sum(1).mean())


def cfg(**kw):
    base = dict(recipe="paper", arch="dense:8", visible_units=1, hidden_units=1, epochs=2, batch_size=20, device="cpu",
                sample_steps=5)
    base.update(kw)
    return TrainConfig(**base)


def interrupted_then_resumed(c, folder, images, after: int) -> Trainer:
    """Train with `c` into `folder`, stopping after `after` steps (asserted interrupted); the
    Trainer that resumes it, not yet run."""
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == after

    assert train(c, folder, images=images, should_stop=stop).interrupted
    return Trainer(c, folder, images, resume=True)


@pytest.mark.parametrize("negatives", ["meanfield", "pcd"])
def test_training_raises_exact_log_likelihood_above_independent_pixels(tmp_path, negatives):
    images = patterns()
    c = cfg(epochs=25, lr=0.03, negatives=negatives, gibbs_steps=1)
    fresh = build_dbn(c, (1, 3, 3)).layers[0].double()
    v = images.flatten(1).double() / 255
    ll0 = float(log_likelihood(fresh, v, exact_log_partition(fresh)).mean())
    res = train(c, tmp_path / "run", images=images)
    dbn, _ = load_model(res.checkpoint)
    rbm = dbn.layers[0]
    ll = float(log_likelihood(rbm, v, exact_log_partition(rbm)).mean())
    ind = independent_pixel_ll(images)
    # Untrained: ≈ 9·log(1/2) = −6.24; independent pixels ≈ −5.6; the 4-bar mixture with 5 %
    # noise has entropy ≈ 9·H(0.05) + log 4 ≈ 3.1 nats, so a good RBM gets near −3.5.
    assert ll0 == pytest.approx(9 * math.log(0.5), abs=0.05)
    assert ll > ind + 1.0, (ll, ind)


def test_same_seed_same_weights_and_different_seed_differs(tmp_path):
    images = patterns(200)
    runs = [train(cfg(seed=s), tmp_path / f"r{i}", images=images) for i, s in enumerate([3, 3, 4])]
    w = [load_model(r.checkpoint)[0].layers[0].weight for r in runs]
    assert torch.equal(w[0], w[1])
    assert not torch.equal(w[0], w[2])


def resumed_equals_uninterrupted(c, tmp_path, images):
    """Train c to the end, and again stopped after 13 steps (mid-epoch: 10 steps per epoch) then
    resumed; assert the two final models are equal tensor for tensor. Returns (full, resumed,
    the final state dict)."""
    full = train(c, tmp_path / "full", images=images)
    resumed = interrupted_then_resumed(c, tmp_path / "part", images, after=13).run()
    a = load_model(full.checkpoint)[0].state_dict()
    b = load_model(resumed.checkpoint)[0].state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    return full, resumed, a


@pytest.mark.parametrize("negatives,mode,center", [("meanfield", "joint", False), ("pcd", "detached", False),
                                                   ("cd", "greedy", False), ("pcd", "detached", True),
                                                   ("noise", "detached", False)])
def test_resume_equals_uninterrupted(tmp_path, negatives, mode, center):
    images = patterns(200)
    c = cfg(arch="dense:7,dense:5", negatives=negatives, mode=mode, epochs=2, save_every=0, center=center)
    full, resumed, a = resumed_equals_uninterrupted(c, tmp_path, images)
    assert bool(a["layers.1.visible_offset"].any()) == center  # the offsets moved, and resumed exactly
    assert resumed.epochs_done == full.epochs_done == c.epochs * (2 if mode == "greedy" else 1)


def test_run_folder_contents(tmp_path):
    res = train(cfg(), tmp_path / "run", images=patterns(1200))  # 60 steps an epoch: 6 grid steps allowed, 5 asked
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.jsonl", "model.safetensors", "model.state.safetensors",
            "samples-epoch001.png", "recon-epoch002.png", "chains.png"} <= files
    from PIL import Image
    with Image.open(tmp_path / "run" / "chains.png") as im:  # 8 chains × 5 frames of 3×3 tiles
        assert im.size == (5 * (3 + 2) + 2, 8 * (3 + 2) + 2)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) >= {"loss", "recon_rmse", "seconds", "dead_fraction"}
    tensors, meta = read_safetensors(res.checkpoint)
    assert set(tensors) == {"layers.0.weight", "layers.0.visible_bias", "layers.0.hidden_bias"}
    assert meta["format"] == "rbmcli-dbn/1" and json.loads(meta["config"])["arch"] == "dense:8"
    with pytest.raises(RbmError, match="already holds a run"):
        train(cfg(), tmp_path / "run", images=patterns(100))


def test_reconstruction_through_each_depth(tmp_path):
    """A stack's epoch row has the error through every depth, equal to an explicit pass up d
    layers and down d layers written here; its picture has 16 images and a block of two rows per depth."""
    images = patterns(300, side=5)
    res = train(cfg(arch="dense:7,dense:5,dense:3,dense:6", epochs=8), tmp_path / "run", images=images)
    dbn, _ = load_model(res.checkpoint)
    v = to_visible(images[:256], 1)
    expected = []
    with torch.no_grad():
        for d in range(1, 5):
            h = v.flatten(1)
            for layer in dbn.layers[:d]:
                h = layer.spec.hidden_units.mean(layer.hidden_input(h))
            for layer in reversed(dbn.layers[:d]):
                h = layer.spec.visible_units.mean(layer.visible_input(h))
            expected.append(float((h - v.flatten(1)).pow(2).mean().sqrt()))
    row = res.metrics[-1]
    assert row["depth_recon_rmse"] == pytest.approx(expected, rel=1e-5)
    assert expected[0] < expected[-1] - 0.01  # the depths differ: not one value four times
    assert (row["recon_rmse"], row["stack_recon_rmse"]) == (row["depth_recon_rmse"][0], row["depth_recon_rmse"][-1])
    from PIL import Image
    with Image.open(tmp_path / "run" / "recon-epoch008.png") as im:  # 8 columns, (1 + 4 depths) × 2 rows of 5×5 tiles
        assert im.size == (8 * (5 + 2) + 2, 10 * (5 + 2) + 2)


def test_checkpoint_roundtrip_conv_stack(tmp_path):
    c = cfg(arch="conv:5:3:2:1,dense:7", visible_units=255, hidden_units=3)
    dbn = build_dbn(c, (3, 9, 11))
    save_model(tmp_path / "m.safetensors", dbn, (3, 9, 11), {"config": c.to_json()})
    back, info = load_model(tmp_path / "m.safetensors")
    assert info["input_shape"] == (3, 9, 11)
    assert back.specs == dbn.specs
    x = torch.rand(2, 3, 9, 11) * 255
    assert torch.allclose(back.features(x), dbn.features(x))


def test_bad_checkpoints_are_refused(tmp_path):
    dbn = build_dbn(cfg(), (1, 3, 3))
    good = tmp_path / "m.safetensors"
    save_model(good, dbn, (1, 3, 3), {})
    data = good.read_bytes()
    cases = {"missing": None, "empty": b"", "truncated": data[: len(data) // 2], "text": b"hello world",
             "huge-header": (2**40).to_bytes(8, "little") + data[8:]}
    for name, content in cases.items():
        p = tmp_path / f"{name}.safetensors"
        if content is not None:
            p.write_bytes(content)
        with pytest.raises(RbmError):
            load_model(p)
    assert not state_path(good).exists()


def test_invalid_options_are_usage_errors():
    for bad in [dict(epochs=0), dict(visible_units=0), dict(k=-1.0), dict(limit=0), dict(binarize="sample"),
                dict(lr=0.0)]:
        with pytest.raises(RbmError) as e:
            TrainConfig(**bad).validate()
        assert e.value.usage
    with pytest.raises(RbmError) as e:
        build_dbn(TrainConfig(arch="conv:4:9"), (1, 3, 3))
    assert e.value.usage and "does not fit" in str(e.value)


@pytest.mark.parametrize("sparsity, weight_decay", [(0.0, 0.0), (3.0, 0.0), (0.0, 2.0)])
def test_meanfield_training_is_invariant_to_shared_n_and_k(sparsity, weight_decay):
    """When visible and hidden units share N and k, the free energy is (N/k)× the binary one in
    natural coordinates (u = kx: f = N·σ(u), ∫f = (N/k)·softplus(u), a·v = (N/k)·ã·(v/N)), mean-field negatives are
    deterministic, and Adam ignores a constant gradient scale: N = 1 and N = 255 train to the
    same natural weights (up to Adam's ε) and the same features up to the factor N. This is
    why Table 1's N = 1 and N = 255 rows coincide with the default settings (docs/results.md).
    The sparsity penalty is scaled by N_h/k_h so that it keeps the invariance; the decoupled
    weight decay acts on the natural weights and does not see the loss scale at all."""
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(120, 1, 5, 7, generator=g) * 255).to(torch.uint8)
    dbns = {}
    for n in (1, 255):
        c = cfg(arch="dense:6,dense:4", visible_units=n, hidden_units=n, epochs=3, batch_size=20, sparsity=sparsity,
                weight_decay=weight_decay)
        dbns[n] = Trainer(c, "unused", images)  # stepped by hand, no run folder
        for i in range(18):
            v = images[(i % 6) * 20:(i % 6 + 1) * 20].float() * (n / 255)
            dbns[n].train_step(v, None)
    w1, w255 = (dbns[n].dbn.state_dict() for n in (1, 255))
    for name in w1:
        assert torch.allclose(w1[name], w255[name], atol=1e-4), name
    x = images[:10].float()
    f1, f255 = dbns[1].dbn.features(x / 255), dbns[255].dbn.features(x)
    assert torch.allclose(f255 / 255, f1, atol=1e-4)
    # Any shared k gives the same trajectory too (the natural coordinates absorb it) ...
    same = Trainer(cfg(arch="dense:6,dense:4", visible_units=255, hidden_units=255, k=0.05, epochs=1,
                       batch_size=20, sparsity=sparsity, weight_decay=weight_decay), "unused", images)
    # ... and so do visible and hidden units of different N: each layer's visible k is balanced
    # (k_v = k_h·N_v/N_h), so both families have M = N/k trials and F is M× the binary one ...
    mixed = Trainer(cfg(arch="dense:6,dense:4", visible_units=1, hidden_units=255, epochs=1,
                        batch_size=20, sparsity=sparsity, weight_decay=weight_decay), "unused", images)
    # ... but another activation does not (so the test can fail).
    other = Trainer(cfg(arch="dense:6,dense:4", visible_units=255, hidden_units=255, activation="relu", epochs=1,
                        batch_size=20, sparsity=sparsity, weight_decay=weight_decay), "unused", images)
    for i in range(18):
        same.train_step(images[(i % 6) * 20:(i % 6 + 1) * 20].float(), None)
        mixed.train_step(images[(i % 6) * 20:(i % 6 + 1) * 20].float() / 255, None)
        other.train_step(images[(i % 6) * 20:(i % 6 + 1) * 20].float(), None)
    for t in (same, mixed):
        assert torch.allclose(t.dbn.state_dict()["layers.0.weight"], w1["layers.0.weight"], atol=1e-4)
    assert not torch.allclose(other.dbn.state_dict()["layers.0.weight"], w1["layers.0.weight"], atol=1e-2)


def test_weight_decay_shrinks_weights_not_biases_by_lr_lambda():
    """One step of AdamW from the same state and the same gradient: against plain Adam, every
    weight differs by exactly −lr·λ·w_old (decoupled decay), every bias not at all."""
    from rbmcli.train.trainer import make_optimiser

    g = torch.Generator().manual_seed(3)
    shape = (1, 5, 7)
    base = build_dbn(cfg(arch="conv:3,dense:5"), shape)
    with torch.no_grad():
        for p in base.parameters():  # biases start at 0, where a decay of them could not show
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    v = torch.rand(9, *shape, generator=g) * 255
    after = {}
    for lam in (0.0, 0.7):
        c = cfg(arch="conv:3,dense:5", lr=0.05, weight_decay=lam)
        dbn = build_dbn(c, shape)
        dbn.load_state_dict(base.state_dict())
        opt = make_optimiser(dbn, c, fused=False)
        sum(dbn_losses(dbn, v)).backward()
        opt.step()
        after[lam] = {n: p.detach().clone() for n, p in dbn.named_parameters()}
    w0 = {n: p.detach() for n, p in base.named_parameters()}  # parameters, not the offset buffers
    for name, w in w0.items():
        want = after[0.0][name] - (0.05 * 0.7 * w if name.endswith("weight") else 0)
        assert torch.allclose(after[0.7][name], want, atol=1e-6), name
        if name.endswith("weight"):
            assert not torch.allclose(after[0.7][name], after[0.0][name], atol=1e-4), name
    with pytest.raises(RbmError):
        TrainConfig(weight_decay=-1.0).validate()


def test_learning_rate_schedules_follow_their_formulas():
    from rbmcli.train.trainer import learning_rate

    T = 7
    for t in range(T + 1):
        assert learning_rate(0.03, "none", t, T) == 0.03
        assert learning_rate(0.03, "linear", t, T) == pytest.approx(0.03 * (T - t) / T)
        assert learning_rate(0.03, "cosine", t, T) == pytest.approx(0.015 * (1 + math.cos(math.pi * t / T)))
    assert learning_rate(0.03, "cosine", T // 2, T) > learning_rate(0.03, "linear", T // 2, T)  # 3/7 of the way: cos above the line


def test_lr_decay_trains_differently_resumes_exactly_and_reaches_zero(tmp_path):
    """A decayed run differs from a constant-rate one, its last step uses lr·1/T, and an
    interrupted + resumed decayed run equals an uninterrupted one (the rate is a function of the step)."""
    images = patterns(200)
    c = cfg(arch="dense:7", negatives="pcd", lr_decay="linear", epochs=3)
    full = train(c, tmp_path / "full", images=images)
    flat = train(cfg(arch="dense:7", negatives="pcd", epochs=3), tmp_path / "flat", images=images)
    a = load_model(full.checkpoint)[0].state_dict()
    assert not torch.equal(a["layers.0.weight"], load_model(flat.checkpoint)[0].state_dict()["layers.0.weight"])
    t = interrupted_then_resumed(c, tmp_path / "part", images, after=17)
    t.run()
    assert t.opt.param_groups[0]["lr"] == pytest.approx(c.lr / 30)  # step 29 of 30 (10 steps per epoch)
    b = load_model(tmp_path / "part" / "model.safetensors")[0].state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_bad_lr_decay_is_a_usage_error():
    with pytest.raises(RbmError, match="--lr-decay"):
        cfg(lr_decay="step").validate()
    with pytest.raises(RbmError, match="--weight-scale") as e:
        cfg(weight_scale="fanin").validate()
    assert e.value.usage


def test_resume_with_centered_conv_layers_equals_uninterrupted(tmp_path):
    """--center-conv: the conv layers' offsets move, are saved, and a resumed run continues
    with them acting (RBM.conv_centered restored) to exactly the uninterrupted tensors."""
    images = (patterns(200, side=7) * 255).to(torch.uint8).repeat(1, 3, 1, 1)  # 3 channels, 7×7
    c = cfg(arch="conv:3:3:2:1,conv:5:3:2:1,dense:5", visible_units=255, hidden_units=255, negatives="pcd",
            epochs=2, center=True, center_data=True, center_conv=True)
    a = resumed_equals_uninterrupted(c, tmp_path, images)[2]
    assert a["layers.0.visible_offset"].any() and a["layers.1.visible_offset"].any()
