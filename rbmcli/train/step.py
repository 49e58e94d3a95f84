"""One optimiser step on the summed layer losses, with no host synchronisation: run eagerly,
or captured once as a CUDA graph and replayed.

A step returns its *stats* instead of Python numbers: a float32 vector on the device,

    stats = (loss_l for each trained layer l, Σ grad of layer l for each, Σ every parameter),

shape (2·L + 1,). A NaN or inf anywhere in a loss, a gradient or the updated parameters
leaves a non-finite entry (a NaN survives a sum), so the trainer can read the stats of many
steps at once, one synchronisation per log interval, and still name the first bad step.

A CUDA graph records every kernel of the step — each layer's loss, its negatives, backward,
Adam and the stats — and replays them with one launch. What a replay reads and writes must
stay at fixed addresses: the batch (copied into a static input), the parameters, the Adam
state and its learning rate (a tensor, filled before each replay), the persistent chains
(copied back into their own buffers inside the graph) and the sampling generator (registered
with the graph, so each replay draws new numbers). Anything capture cannot take falls back
to the eager step, once, with a note.
"""

from __future__ import annotations

from typing import Callable

import torch

from rbmcli.train.adam import Adam
from rbmcli.train.distributed import average_gradients

WARMUP = 3  # eager steps on a side stream before a capture (lazy state: Adam moments, cuBLAS, compile)


def tensor_sum(tensors: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """Σ over every element of every tensor, a float32 scalar on like's device (0 for none)."""
    if not tensors:
        return like.new_zeros((), dtype=torch.float32)
    return torch.stack([t.detach().sum().float() for t in tensors]).sum()


def step_stats(losses: list[torch.Tensor], grad_sums: list[torch.Tensor], param_sum: torch.Tensor) -> torch.Tensor:
    """(loss_1..L, Σ grads of layer 1..L, Σ params): float32 (2·L + 1,), on the device."""
    return torch.stack([*(x.detach().float() for x in losses), *grad_sums, param_sum])


def set_lr(opt: Adam, lr: float) -> None:
    """Every group's rate ← lr; a tensor rate (capturable Adam) is filled in place."""
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


class EagerStep:
    """The step as Python runs it: `step(v, layers, lr)` → stats (2·L + 1,) on the device."""

    def __init__(self, dbn: torch.nn.Module, opt: Adam,
                 loss_fn: Callable[[torch.Tensor, list[int] | None], list[torch.Tensor]], world):
        self.dbn, self.opt, self.loss_fn, self.world = dbn, opt, loss_fn, world
        self.params = list(dbn.parameters())

    def layer_grads(self, layers: list[int] | None) -> list[list[torch.Tensor]]:
        ids = layers if layers is not None else range(len(self.dbn.layers))
        return [[p.grad for p in self.dbn.layers[i].parameters() if p.grad is not None] for i in ids]

    def body(self, v: torch.Tensor, layers: list[int] | None) -> torch.Tensor:
        losses = self.loss_fn(v, layers)
        self.opt.zero_grad(set_to_none=True)
        torch.stack(losses).sum().backward()
        average_gradients(self.params, self.world)
        grad_sums = [tensor_sum(gs, v) for gs in self.layer_grads(layers)]  # the gradients the update uses
        self.opt.step()
        return step_stats(losses, grad_sums, tensor_sum(self.params, v))

    def __call__(self, v: torch.Tensor, layers: list[int] | None, lr: float) -> torch.Tensor:
        set_lr(self.opt, lr)
        return self.body(v, layers)


class GraphStep(EagerStep):
    """The step captured as a CUDA graph per set of trained layers, after WARMUP eager steps
    on a side stream; later calls copy the batch in and replay. `chains` is the trainer's list
    of persistent chain states (replaced by static buffers at capture); `generator` the
    sampling generator. A failed capture is noted once through `note` and the step stays eager."""

    def __init__(self, dbn, opt, loss_fn, world, *, chains: list, generator: torch.Generator,
                 note: Callable[[str], None]):
        super().__init__(dbn, opt, loss_fn, world)
        self.chains, self.generator, self.note = chains, generator, note
        self.graphs: dict = {}  # layers key → (graph, static input, static stats)
        self.warm: dict = {}
        self.failed = False

    def __call__(self, v: torch.Tensor, layers: list[int] | None, lr: float) -> torch.Tensor:
        set_lr(self.opt, lr)
        key = None if layers is None else tuple(layers)
        if self.failed:
            return self.body(v, layers)
        if key in self.graphs:
            graph, static_v, stats = self.graphs[key]
            static_v.copy_(v)
            graph.replay()
            return stats
        if self.warm.get(key, 0) < WARMUP:
            self.warm[key] = self.warm.get(key, 0) + 1
            return self._side_stream(lambda: self.body(v, layers))
        try:
            self.graphs[key] = self._capture(v, layers)
        except RuntimeError as e:  # an op that cannot be captured: keep training eagerly
            self.failed = True
            torch.cuda.synchronize()
            self.note(f"--graph: the step could not be captured as a CUDA graph ({str(e).splitlines()[0]}); "
                      "training goes on without it")
            return self.body(v, layers)
        graph, _, stats = self.graphs[key]
        graph.replay()
        return stats

    @staticmethod
    def _side_stream(fn):
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            out = fn()
        torch.cuda.current_stream().wait_stream(s)
        return out

    def _capture(self, v: torch.Tensor, layers: list[int] | None):
        """Record one step (without running it) with the batch in a static buffer; the chains'
        continuations are copied back into their own buffers inside the graph."""
        static_v = v.clone()
        static_chains = list(self.chains)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.generator)
        self.opt.zero_grad(set_to_none=True)  # gradients are allocated by the graph, overwritten by each replay
        try:
            with torch.cuda.graph(graph):
                stats = self.recorded(static_v, layers, static_chains)
        finally:
            self.chains[:] = static_chains  # the chain states stay the static buffers
        return graph, static_v, stats

    def recorded(self, static_v: torch.Tensor, layers: list[int] | None, static_chains: list) -> torch.Tensor:
        """What the graph records: the step, then each chain's continuation copied into the
        chain's own buffer (a replay runs no Python: the list's rebinding does not happen)."""
        stats = self.body(static_v, layers)
        for i, c in enumerate(static_chains):
            if c is not None and self.chains[i] is not c:
                c.copy_(self.chains[i])
        return stats
