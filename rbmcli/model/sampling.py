"""Negative samples v′ for the contrastive loss, and Gibbs chains.

The loss does not care where v′ comes from; five sources:
- meanfield (the paper, end of §3.2): v′ = f_v(a + f_h(b + vW) Wᵀ), deterministic;
- cd (CD-k): k block-Gibbs steps from the data with sampled hiddens; intermediate visibles
  are sampled, the last one is its mean (Hinton's practical guide, §3.2: less noise);
- pcd: the same steps continue persistent chains kept across updates (Tieleman 2008);
- pt: persistent parallel-tempering chains (rbmcli.model.tempering): K chains per batch row,
  at inverse temperatures 1 > … > β_min, swapping states; v′ is the β = 1 chain;
- noise: k block-Gibbs steps from a fresh draw at zero input (the draw sampling starts from),
  the last visible a mean. The loss then matches the data to what exactly k steps from noise
  make, so the model is sampled with the same k (Decelle, Furtlehner & Seoane 2021: a model
  trained out of equilibrium reproduces the data with the dynamics it was trained with).
Samples for pictures: `generate` runs the top RBM's Gibbs chain (sampler "gibbs") or PT ("pt").
Everything here runs without autograd: v′ is a constant of the loss.
"""

from __future__ import annotations

from typing import Callable

import torch

from rbmcli.errors import RbmError
from rbmcli.model.rbm import RBM
from rbmcli.model.tempering import (DEFAULT_BETA_MIN, DEFAULT_TEMPERATURES, SwapCounts, check_units, ladder, stacked,
                                    pt_chain, pt_step, start_state, tempered_hidden, tempered_visible)

NEGATIVES = ("meanfield", "cd", "pcd", "pt", "noise")
SAMPLERS = ("gibbs", "pt")


@torch.no_grad()
def meanfield_reconstruction(rbm: RBM, v: torch.Tensor, h_mean: torch.Tensor | None = None) -> torch.Tensor:
    """v′ = f_v(a + f_h(b + vW)Wᵀ), shape of v. Pass h_mean = f_h(b + vW) to reuse it."""
    h = rbm.hidden_mean(v) if h_mean is None else h_mean
    return rbm.visible_mean(h)


@torch.no_grad()
def gibbs_step(rbm: RBM, v: torch.Tensor, generator: torch.Generator | None, mean_visible: bool = False) -> torch.Tensor:
    """One block-Gibbs step v → h ~ p(h|v) → v′ ~ p(v|h) (or E[v|h] if mean_visible)."""
    h = rbm.sample_hidden(v, generator)
    return rbm.visible_mean(h) if mean_visible else rbm.sample_visible(h, generator)


@torch.no_grad()
def gibbs_chain(rbm: RBM, v: torch.Tensor, steps: int, generator: torch.Generator | None,
                mean_last: bool = False) -> torch.Tensor:
    """`steps` Gibbs steps from v; the last visible is a mean if mean_last."""
    for i in range(steps):
        v = gibbs_step(rbm, v, generator, mean_visible=mean_last and i == steps - 1)
    return v


@torch.no_grad()
def negatives(rbm: RBM, v: torch.Tensor, method: str, *, steps: int, generator: torch.Generator | None,
              chain: torch.Tensor | None = None, h_mean: torch.Tensor | None = None) -> torch.Tensor:
    """v′ for the loss of one layer. For pcd, `chain` (B, *visible_shape) is the chain state
    to continue; the caller stores the returned state (a sample, not a mean). For pt, `chain`
    is the PT state (K, B, *visible_shape) (or None: K = DEFAULT_TEMPERATURES copies of v) and
    the returned value is its continuation, whose [0] (the β = 1 chain) is v′."""
    if method == "meanfield":
        return meanfield_reconstruction(rbm, v, h_mean)
    if method == "cd":
        return gibbs_chain(rbm, v, steps, generator, mean_last=True)
    if method == "pcd":
        return gibbs_chain(rbm, chain, steps, generator)
    if method == "noise":
        return gibbs_chain(rbm, noise_start(rbm, len(v), generator, v.device), steps, generator, mean_last=True)
    if method == "pt":
        k = DEFAULT_TEMPERATURES if chain is None or chain.dim() != v.dim() + 1 else chain.shape[0]
        if chain is None or chain.shape[1:] != v.shape or chain.dim() != v.dim() + 1:
            check_units(rbm.spec)
            chain = start_state(v, k)  # first use, or a pcd state of another shape
        betas = torch.tensor(ladder(k), device=v.device, dtype=v.dtype)
        return pt_chain(rbm, chain, steps, generator, betas)
    raise ValueError(f"unknown negatives {method!r}")


@torch.no_grad()
def noise_start(rbm: RBM, n: int, generator: torch.Generator | None, device=None) -> torch.Tensor:
    """A chain's start from noise, (n, *visible_shape): a draw of the visible units at zero
    input (mean N/2 for sigmoid units), where `rbm sample` and --negatives noise both begin."""
    zeros = torch.zeros(n, *rbm.spec.visible_shape, device=device)
    return rbm.spec.visible_units.sample(zeros, generator)


@torch.no_grad()
def top_chain_start(dbn, n: int, generator: torch.Generator | None, data: torch.Tensor | None = None,
                    device=None) -> torch.Tensor:
    """Initial visible state of the top RBM, (n, *visible_shape): data pushed up the stack,
    or (data=None) a draw of the top visible units at zero input (mean N/2 for sigmoid)."""
    top = dbn.layers[-1]
    if data is not None:
        return top.flatten_input(dbn.up(data, upto=len(dbn.layers) - 1))
    return noise_start(top, n, generator, device)


@torch.no_grad()
def to_pixels(dbn, v_top: torch.Tensor) -> torch.Tensor:
    """Mean pass from the top RBM's visible state (n, *visible_shape_top) down to the data
    layer's visible units 0..N_v, (n, *visible_shape₀)."""
    return v_top if len(dbn.layers) == 1 else dbn.down(v_top, start=len(dbn.layers) - 2)


@torch.no_grad()
def run_top_chain(dbn, v: torch.Tensor, steps: int, generator: torch.Generator | None, *, every: int = 0,
                  keep: int | None = None, on_step: Callable[[], None] | None = None, sampler: str = "gibbs",
                  temperatures: int = DEFAULT_TEMPERATURES, beta_min: float = DEFAULT_BETA_MIN,
                  counts: SwapCounts | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """`steps` block-Gibbs steps in the top RBM from v (n, *visible_shape_top), the last
    visible a mean, then the mean pass down (paper §4): pixels (n, *visible_shape₀). With
    every > 0 also the pixels of the first `keep` chains (all if None) after every `every`
    steps; on_step() is called after each step. sampler "pt" runs parallel tempering instead
    (`run_top_tempered`), adding its swaps to `counts` if given."""
    if sampler == "pt":
        return run_top_tempered(dbn, v, steps, generator, temperatures=temperatures, beta_min=beta_min,
                                every=every, keep=keep, on_step=on_step, counts=counts)
    if sampler != "gibbs":
        raise RbmError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}", usage=True)
    top, frames = dbn.layers[-1], []
    for i in range(steps):
        v = gibbs_step(top, v, generator, mean_visible=i == steps - 1)
        if every and keep != 0 and (i + 1) % every == 0:
            frames.append(to_pixels(dbn, v if keep is None else v[:keep]))
        if on_step is not None:
            on_step()
    return to_pixels(dbn, v), frames


@torch.no_grad()
def run_top_tempered(dbn, v: torch.Tensor, steps: int, generator: torch.Generator | None, *,
                     temperatures: int = DEFAULT_TEMPERATURES, beta_min: float = DEFAULT_BETA_MIN, every: int = 0,
                     keep: int | None = None, on_step: Callable[[], None] | None = None,
                     counts: SwapCounts | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """As run_top_chain, with parallel tempering in the top RBM: every chain of v
    (n, *visible_shape_top) becomes K chains on the ladder (tempering.ladder), all starting at
    v; pt steps alternate the swap parity; the β = 1 chains give the pixels, their last
    visible a mean (as Gibbs's)."""
    top, frames = dbn.layers[-1], []
    check_units(top.spec)
    betas = torch.tensor(ladder(temperatures, beta_min), device=v.device, dtype=v.dtype)
    state = start_state(v, temperatures)
    x = stacked(top.hidden_input, state)
    for i in range(steps):
        if i == steps - 1:  # the last step: the β = 1 chain only, its visible a mean
            h = tempered_hidden(top, x[:1], betas[:1], generator)
            state = tempered_visible(top, h, betas[:1], generator, mean=True)
        else:
            state, x = pt_step(top, state, x, betas, i % 2, generator, counts)
        if every and keep != 0 and (i + 1) % every == 0:
            frames.append(to_pixels(dbn, state[0] if keep is None else state[0, :keep]))
        if on_step is not None:
            on_step()
    return to_pixels(dbn, state[0]), frames


@torch.no_grad()
def generate(dbn, n: int, steps: int, generator: torch.Generator | None, *, data: torch.Tensor | None = None,
             every: int = 0, device=None, sampler: str = "gibbs", temperatures: int = DEFAULT_TEMPERATURES,
             beta_min: float = DEFAULT_BETA_MIN, counts: SwapCounts | None = None
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """n samples of the DBN in pixel units 0..N_v, (n, *input_shape): a chain from
    `top_chain_start` through `run_top_chain` (sampler "gibbs", or "pt": parallel tempering
    with `temperatures` K down to beta_min, its swaps added to `counts`); with every > 0 also
    every chain's pixels after every `every` steps (a list of (n, *input_shape))."""
    return run_top_chain(dbn, top_chain_start(dbn, n, generator, data, device), steps, generator, every=every,
                         sampler=sampler, temperatures=temperatures, beta_min=beta_min, counts=counts)
