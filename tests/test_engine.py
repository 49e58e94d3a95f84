"""The training engine: steps that never wait for the device, losses read once per log
interval, events, the CUDA-graph option's fallback, the per-epoch grids' budget."""

import math

import pytest
import torch

from rbmcli.errors import RbmError
from rbmcli.train.config import TrainConfig
from rbmcli.train.grids import GRID_STEPS_PER_STEP, grid_steps
from rbmcli.train.trainer import Trainer, train

READS = ("item", "__float__", "__bool__", "cpu", "tolist")  # what brings a tensor's value to the host


def images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 5, 7, generator=g) * 255).to(torch.uint8)


def cfg(**kw):
    base = dict(recipe="generate", arch="dense:7,dense:5", epochs=1, batch_size=10, device="cpu", sample_steps=3,
                keep=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def host_reads(monkeypatch):
    """Counts of every host read of a tensor (READS) from here on, by name."""
    counts = {name: 0 for name in READS}
    for name in READS:
        real = getattr(torch.Tensor, name)

        def counting(self, *args, _real=real, _name=name, **kw):
            counts[_name] += 1
            return _real(self, *args, **kw)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts


@pytest.mark.parametrize("negatives", ["meanfield", "cd", "pcd"])
def test_training_steps_read_nothing_back_from_the_device(host_reads, negatives):
    """Thirteen steps (centered layers, offsets moved at steps 10, persistent chains for pcd):
    not one value goes to the host; reading the pending steps then takes one `tolist`."""
    t = Trainer(cfg(negatives=negatives, lower_negatives=negatives, log_every=1000), "unused", images(200))
    v = t.images[:10].float() * (255 / 255)
    for _ in range(13):
        t.train_step(v, None)
        t.step += 1
    assert sum(host_reads.values()) == 0, host_reads
    last = t.read_pending()
    assert host_reads["tolist"] == 1 and sum(host_reads.values()) == 1, host_reads
    assert len(last) == 2 and all(math.isfinite(x) for x in last)


def test_a_whole_run_reads_the_device_per_log_interval_not_per_step(host_reads, tmp_path):
    """The loop as `train` runs it, grids and checkpoints included: an epoch of 40 steps reads
    the device as often as one of 10 (log interval 50), so nothing is read per step."""
    seen = {}
    for n in (100, 400):
        before = dict(host_reads)
        train(cfg(log_every=50, sample_steps=1), tmp_path / str(n), images=images(n))  # one grid step each
        seen[n] = {k: host_reads[k] - before[k] for k in READS}
    assert seen[100] == seen[400]


def test_progress_comes_once_per_log_interval_with_the_mean_free_energy_gap(tmp_path):
    """12 steps an epoch at --log-every 4: three step events an epoch, each with the losses of
    its last step; the epoch row holds the mean of all 12."""
    events = []
    result = train(cfg(log_every=4, epochs=2), tmp_path / "run", images=images(120), progress=events.append)
    kinds = [e["kind"] for e in events]
    assert kinds.count("start") == 1 and kinds.count("epoch") == 2 and kinds[-1] == "end"
    steps = [e["step"] for e in events if e["kind"] == "step"]
    assert steps == [4, 8, 12, 16, 20, 24]
    assert kinds.count("save") == 2
    row = result.metrics[0]
    assert set(row["loss"]) == {"0", "1"} and all(math.isfinite(x) for x in row["loss"].values())


def test_a_nan_between_two_reads_names_its_step_and_saves_nothing(tmp_path, monkeypatch):
    """A loss that turns NaN at step 7 of an epoch read every 50 steps: the run stops at the
    read, names layer 1 and step 7, and no checkpoint of a later step exists."""
    import rbmcli.train.trainer as trainer

    real, calls = trainer.dbn_losses, {"n": 0}

    def nan_at_7(*args, **kw):
        losses = real(*args, **kw)
        calls["n"] += 1
        return losses[:1] + [losses[1] * float("nan")] if calls["n"] == 8 else losses

    monkeypatch.setattr(trainer, "dbn_losses", nan_at_7)
    with pytest.raises(RbmError, match=r"layer 1 loss is nan at step 7 "):
        train(cfg(log_every=50), tmp_path / "run", images=images(200))
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_graph_off_cuda_says_so_once_and_trains_as_eager(tmp_path):
    """--graph on the CPU: one note, then the same tensors as without it."""
    events = []
    a = train(cfg(graph=True), tmp_path / "g", images=images(100), progress=events.append)
    b = train(cfg(), tmp_path / "e", images=images(100))
    notes = [e["text"] for e in events if e["kind"] == "note"]
    assert len(notes) == 1 and "--graph" in notes[0] and "eagerly" in notes[0]
    from rbmcli.train.checkpoint import load_model

    sa, sb = load_model(a.checkpoint)[0].state_dict(), load_model(b.checkpoint)[0].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_grid_steps_follow_the_epoch_length():
    """--sample-steps is the most; a short epoch gets a share of its own steps."""
    assert grid_steps(1000, 468) == int(GRID_STEPS_PER_STEP * 468) < 1000
    assert grid_steps(1000, 100_000) == 1000
    assert grid_steps(7, 3) == 1


def test_grid_chains_persist_across_epochs(tmp_path):
    """The grid's chains go on from one epoch to the next: the second epoch's strip does not
    start where the first one's did (from noise)."""
    from rbmcli.train.grids import EpochGrids

    t = Trainer(cfg(sample_steps=4, batch_size=5), tmp_path, images(200))  # 40 steps: 4 grid steps an epoch
    grids = EpochGrids(t)
    assert grids.steps == 4
    _, first = grids.advance()
    state = grids.chains.clone()
    _, second = grids.advance()
    assert len(first) == len(second) == 4
    assert not torch.equal(grids.chains, state)  # moved on from the end of the first epoch


@pytest.mark.parametrize("visible_units, hidden_units", [(255, 255), (3, 1), (1, 1)])
def test_gibbs_chains_read_nothing_back_from_the_device(host_reads, visible_units, hidden_units):
    """Sampling as `rbm sample` and the grids run it — moment-matched N = 255 units (tabulated
    moments), exact copies (N = 3), binary — reads no value back to the host, step after step
    (the unit tables are built once per device)."""
    from rbmcli.model.sampling import run_top_chain, top_chain_start

    t = Trainer(cfg(recipe="paper", visible_units=visible_units, hidden_units=hidden_units), "unused", images(50))
    g = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        v = top_chain_start(t.dbn, 9, g)
        run_top_chain(t.dbn, v, 2, g)  # first use: tables built
        before = sum(host_reads.values())
        pixels, frames = run_top_chain(t.dbn, v, 25, g, every=5)
    assert sum(host_reads.values()) == before, host_reads
    assert pixels.shape == (9, 35) and len(frames) == 5  # a dense data layer: flat pixels


def test_unit_tables_are_built_once_per_device_and_match_their_definition():
    """The offsets and the copies-moment table a sampler step uses are the same tensors on
    every call (nothing is built or copied per step), with the values of o_n = f⁻¹(n − ½)."""
    from rbmcli.model.units import Units, copies_moments

    u = Units.make(7, 0.3)
    assert u.offsets("cpu") is u.offsets("cpu")
    n = torch.arange(1, 8, dtype=torch.float64)
    assert torch.allclose(u.offsets(dtype=torch.float64), torch.logit((n - 0.5) / 7) / 0.3)
    x = torch.linspace(-20, 20, 9)
    mean, var = copies_moments(u, x)
    assert torch.allclose(mean, u.copies_mean(x), atol=1e-3) and torch.allclose(var, u.copies_variance(x), atol=1e-3)


class _ReplayedGraph:
    """A stand-in for torch.cuda.CUDAGraph on the CPU: capture records the step's Python body
    without its effects (the state is restored after a dry run), replay runs it again and
    writes its outputs into the captured output's storage, as a real replay would."""

    def __init__(self):
        self.body, self.out = None, None

    def register_generator_state(self, generator):
        pass

    def replay(self):
        self.out.copy_(self.body())


def _fake_cuda(monkeypatch):
    """torch.cuda's stream and graph API as GraphStep uses it, for a CPU trainer."""
    import contextlib

    import rbmcli.train.step as step

    class Stream:
        def wait_stream(self, other):
            pass

    @contextlib.contextmanager
    def graph(g):  # the with-block runs the body once; the test undoes its effects
        yield

    monkeypatch.setattr(step.torch.cuda, "Stream", Stream)
    monkeypatch.setattr(step.torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(step.torch.cuda, "current_stream", lambda: Stream())
    monkeypatch.setattr(step.torch.cuda, "CUDAGraph", _ReplayedGraph)
    monkeypatch.setattr(step.torch.cuda, "graph", graph)


@pytest.mark.parametrize("negatives", ["meanfield", "pcd"])
def test_a_replayed_step_trains_what_the_eager_step_trains(monkeypatch, negatives):
    """GraphStep's bookkeeping — the batch copied into a static input, the stats read from the
    captured output, the persistent chains copied back into their own buffers — checked on the
    CPU with a stand-in graph that replays the captured body: 12 steps on varying batches give
    the eager step's parameters and chains exactly."""
    import copy

    from rbmcli.train.step import GraphStep

    c = cfg(negatives=negatives, lower_negatives=negatives, log_every=1000)
    x = images(120)
    eager, graphed = Trainer(c, "unused", x), Trainer(c, "unused", x)
    _fake_cuda(monkeypatch)
    gs = GraphStep(graphed.dbn, graphed.opt, graphed.layer_losses, graphed.world, chains=graphed.chains,
                   generator=graphed.gen, note=lambda text: None)
    real_capture = gs._capture

    def capture(v, layers):  # a dry run of the body, then the state as it was: capture runs nothing
        params = [p.detach().clone() for p in graphed.dbn.parameters()]
        opt_state, rng = copy.deepcopy(graphed.opt.state_dict()), graphed.gen.get_state()
        chains = [None if ch is None else ch.clone() for ch in graphed.chains]
        graph, static_v, stats = real_capture(v, layers)
        static = list(graphed.chains)

        def replay():  # what the graph recorded; Python's own effects (the list's rebinding) do not replay
            out = gs.recorded(static_v, layers, static)
            graphed.chains[:] = static
            return out

        graph.body, graph.out = replay, stats
        with torch.no_grad():
            for p, q in zip(graphed.dbn.parameters(), params):
                p.copy_(q)
        graphed.opt.load_state_dict(opt_state)
        graphed.gen.set_state(rng)
        for live, saved in zip(graphed.chains, chains):
            if live is not None:
                live.copy_(saved)
        return graph, static_v, stats

    gs._capture = capture
    graphed.step_fn = gs
    for i in range(12):
        v = eager.images[(i % 12) * 10:(i % 12 + 1) * 10].float()
        eager.train_step(v, None)
        graphed.train_step(v, None)
    assert gs.graphs, "the step was captured"
    a, b = eager.read_pending(), graphed.read_pending()
    assert a == b
    for p, q in zip(eager.dbn.parameters(), graphed.dbn.parameters()):
        assert torch.equal(p, q)
    for ca, cb in zip(eager.chains, graphed.chains):
        assert (ca is None) == (cb is None) and (ca is None or torch.equal(ca, cb))
