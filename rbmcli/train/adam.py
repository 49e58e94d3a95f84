"""Adam and AdamW without torch.optim: the same update, bit for bit, and no torch._dynamo.

torch.optim's optimisers wrap their constructor and step in `torch._disable_dynamo`, whose
first call imports torch._dynamo: 1.4–2.4 s of every training process on a small CPU, for a
compiler the step does not use. This module calls the kernels torch.optim calls:

    fused (cpu, cuda):  torch._fused_adam_ / torch._fused_adamw_, one kernel per device and dtype;
    otherwise:          the foreach ops of torch.optim's multi-tensor Adam, in its order.

For a parameter θ with gradient g at step t (t = 1 first), rate γ, betas β₁, β₂, ε, λ:

    Adam:   g ← g + λ·θ                      AdamW:  θ ← θ·(1 − γ·λ)
    m ← β₁·m + (1 − β₁)·g                    v ← β₂·v + (1 − β₂)·g²
    θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

The state per parameter — "step" (a float32 scalar on the parameter's device when fused or
capturable, else a CPU scalar), "exp_avg" m and "exp_avg_sq" v (the parameter's shape) — and
`param_groups` are laid out as torch.optim's, so checkpoints written by either load in the other.
"""

from __future__ import annotations

from typing import Iterable

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8
HYPER = ("lr", "betas", "eps", "weight_decay")  # what a loaded state dict sets in a group


def step_counter(p: torch.Tensor, on_device: bool) -> torch.Tensor:
    """A zero step count, shape (): float32 on p's device (fused or capturable: the kernel and a
    CUDA graph read it there) or on the CPU in the default dtype (the host reads it each step)."""
    if on_device:
        return torch.zeros((), dtype=torch.float32, device=p.device)
    return torch.zeros((), dtype=torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32)


def new_state(p: torch.Tensor, on_device: bool) -> dict:
    """{"step": 0, "exp_avg": m = 0, "exp_avg_sq": v = 0}, m and v of p's shape, dtype and layout."""
    return {"step": step_counter(p, on_device),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}


def by_device_and_dtype(*lists: list[torch.Tensor]) -> list[tuple[list[torch.Tensor], ...]]:
    """The parallel lists split by (device, dtype) of the first, in order: a fused or foreach
    kernel takes tensors of one device and dtype."""
    groups: dict = {}
    for row in zip(*lists):
        cols = groups.setdefault((row[0].device, row[0].dtype), tuple([] for _ in lists))
        for col, t in zip(cols, row):
            col.append(t)
    return list(groups.values())


def fused_update(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, betas, eps, weight_decay,
                 decoupled: bool) -> None:
    """t ← t + 1, then the whole update of the module docstring in one kernel (torch.optim's
    fused path: same kernel, same arguments). lr: a float, or a one-element tensor (read on
    the device, so a CUDA graph replays whatever it was last filled with)."""
    if isinstance(lr, torch.Tensor) and lr.device.type != "cpu":
        lr = lr.to(params[0].device)  # a no-op where it already lives (capturable: always)
    torch._foreach_add_(steps, 1)
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=lr, beta1=betas[0],
           beta2=betas[1], weight_decay=weight_decay, eps=eps, maximize=False, grad_scale=None, found_inf=None)


def foreach_update(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, betas, eps, weight_decay,
                   decoupled: bool) -> None:
    """The same update as foreach ops, each in the order torch.optim's multi-tensor Adam runs
    them (on the CPU they fall back to the per-tensor ops of its single-tensor Adam); steps are
    CPU scalars, read on the host for the bias corrections 1 − βᵗ."""
    beta1, beta2 = betas
    lr = float(lr)
    torch._foreach_add_(steps, torch.tensor(1.0), alpha=1.0)
    if weight_decay != 0:
        if decoupled:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        else:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)  # a copy: p.grad stays the loss's
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    ts = [t.item() for t in steps]
    step_sizes = [(lr / (1 - beta1 ** t)) * -1 for t in ts]
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, [(1 - beta2 ** t) ** 0.5 for t in ts])
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, exp_avgs, denom, step_sizes)


class Adam:
    """Adam on `params` (tensors, or dicts {"params": [...], hyperparameter: value} for groups
    of their own rate or decay), with torch.optim.Adam's param_groups, state, step, zero_grad,
    state_dict and load_state_dict.

    fused: one kernel per step (cpu, cuda; torch.optim.Adam(fused=True)); otherwise foreach ops.
    capturable: the step runs no host code that reads a tensor, so a CUDA graph can record it;
    needs fused, and lr a one-element tensor on the device (filled in place before each step)."""

    decoupled = False  # AdamW: the decay scales θ instead of adding to g

    def __init__(self, params: Iterable, lr: float | torch.Tensor = 1e-3, betas: tuple[float, float] = BETAS,
                 eps: float = EPS, weight_decay: float = 0.0, *, fused: bool = False, capturable: bool = False):
        if capturable and not fused:
            raise ValueError("capturable Adam needs fused=True")
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("a tensor lr must have one element")
        if not (isinstance(lr, torch.Tensor) or lr >= 0) or eps < 0 or weight_decay < 0 \
                or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam hyperparameters lr={lr} betas={betas} eps={eps} λ={weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=self.decoupled, fused=fused, capturable=capturable)
        groups = list(params)
        if not groups:
            raise ValueError("Adam got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups = [{**defaults, **g, "params": list(g["params"])} for g in groups]
        self.state: dict[torch.Tensor, dict] = {}

    def params(self) -> list[torch.Tensor]:
        """Every parameter, group by group (the order state_dict numbers them in)."""
        return [p for g in self.param_groups for p in g["params"]]

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient; state is created at its first."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                if not self.state.get(p):
                    self.state[p] = new_state(p, group["fused"] or group["capturable"])
            states = [self.state[p] for p in params]
            update = fused_update if group["fused"] else foreach_update
            for ps, gs, ms, vs, ts in by_device_and_dtype(params, [p.grad for p in params],
                                                          [s["exp_avg"] for s in states],
                                                          [s["exp_avg_sq"] for s in states],
                                                          [s["step"] for s in states]):
                update(ps, gs, ms, vs, ts, lr=group["lr"], betas=group["betas"], eps=group["eps"],
                       weight_decay=group["weight_decay"], decoupled=group["decoupled_weight_decay"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every gradient (set_to_none) or zero it in place, detached, as torch.optim does."""
        for p in self.params():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
                continue
            if p.grad.grad_fn is not None:
                p.grad.detach_()
            else:
                p.grad.requires_grad_(False)
            p.grad.zero_()

    def state_dict(self) -> dict:
        """torch.optim's layout: {"state": {i: state of parameter i}, "param_groups": [hyperparameters
        and "params": [i, …]]}, parameters numbered group by group; tensors shared, not copied."""
        index = {p: i for i, p in enumerate(self.params())}
        return {"state": {index[p]: st for p, st in self.state.items() if p in index},
                "param_groups": [{**{k: v for k, v in g.items() if k != "params"},
                                  "params": [index[p] for p in g["params"]]} for g in self.param_groups]}

    def load_state_dict(self, saved: dict) -> None:
        """Restore a state_dict of this class or torch.optim.Adam/AdamW over the same parameters:
        the moments (as each parameter's dtype and device), the step counts (on the device when
        fused or capturable) and each group's lr (a tensor rate filled in place), betas, eps and
        weight decay."""
        groups = saved["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the saved state has other parameter groups than this optimiser")
        params = {i: p for g, mine in zip(groups, self.param_groups) for i, p in zip(g["params"], mine["params"])}
        on_device = {p: mine["fused"] or mine["capturable"] for mine in self.param_groups for p in mine["params"]}
        self.state = {}
        for i, st in saved["state"].items():
            p = params[i]
            self.state[p] = {k: self._placed(k, v, p, on_device[p]) for k, v in st.items()}
        for g, mine in zip(groups, self.param_groups):
            rate = mine["lr"]
            mine.update({k: g[k] for k in HYPER if k in g})
            if isinstance(rate, torch.Tensor):  # filled, not replaced: a captured CUDA graph reads this tensor
                mine["lr"] = rate.fill_(float(mine["lr"]))

    @staticmethod
    def _placed(key: str, value, p: torch.Tensor, on_device: bool):
        """A saved state entry where the step needs it: "step" as step_counter places it when
        on_device (else as saved); moments in p's dtype and device (no copy if already so)."""
        if key == "step":
            value = torch.as_tensor(value)
            return value.to(dtype=torch.float32, device=p.device) if on_device else value
        return value.to(dtype=p.dtype, device=p.device) if p.is_floating_point() else value.to(p.device)


class AdamW(Adam):
    """Adam with decoupled weight decay θ ← θ·(1 − γ·λ) (torch.optim.AdamW, default λ = 0.01)."""

    decoupled = True

    def __init__(self, params: Iterable, lr: float | torch.Tensor = 1e-3, betas: tuple[float, float] = BETAS,
                 eps: float = EPS, weight_decay: float = 1e-2, **kw):
        super().__init__(params, lr, betas, eps, weight_decay, **kw)
