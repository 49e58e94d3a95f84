"""The contrastive free-energy loss (paper eq. 4 and 6) for one RBM and for a DBN.

The paper's L = Σ F(v′) − Σ F(v) is a log-likelihood surrogate to *maximise*; an optimiser
therefore minimises  loss = mean F(v) − mean F(v′)  with v′ a constant. Its
gradient is the CD update: ∂loss/∂W = −⟨v f_h(x(v))⟩ + ⟨v′ f_h(x(v′))⟩.
"""

from __future__ import annotations

import torch

from rbmcli.model.dbn import DBN
from rbmcli.model.rbm import RBM
from rbmcli.model.sampling import negatives

MODES = ("joint", "detached", "greedy")


def contrastive_loss(rbm: RBM, v: torch.Tensor, v_neg: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    """mean_B F(v) − mean_B F(v′), a scalar; v′ is detached. Pass x = hidden_input(v) to reuse it."""
    return rbm.free_energy(v, x).mean() - rbm.free_energy(v_neg.detach()).mean()


def sparsity_penalty(rbm: RBM, h_mean: torch.Tensor, target: float) -> torch.Tensor:
    """(N_h/k_h) · P · Σ_c (p − q_c)²: q_c = mean over the batch and the P positions of unit c's
    activity f_h/N_h ∈ [0, 1], p the target (Lee, Ekanadham & Ng 2008; per channel for conv
    layers, as in Lee et al. 2009). h_mean (B, H) or (B, C, h, w) → scalar.

    Summed over all P·C hidden units like the free energy, and scaled by N_h/k_h like it (the
    free energy of shared-N units is N/k times the binary one), so a given weight λ means the
    same for every N and k and mean-field training stays invariant to a shared N and k."""
    units = rbm.spec.hidden_units
    dims = [0] + list(range(2, h_mean.dim()))  # batch and spatial positions
    q = h_mean.mean(dims) / units.n  # (C,) or (H,)
    positions = h_mean[0].numel() // q.numel()
    return (units.n / units.k) * positions * (target - q).pow(2).sum()


def dbn_losses(dbn: DBN, v0: torch.Tensor, method: str | list[str] = "meanfield", *, steps: int = 1,
               generator: torch.Generator | None = None, mode: str = "joint",
               chains: list[torch.Tensor] | None = None, layers: list[int] | None = None,
               sparsity: float = 0.0, sparsity_target: float = 0.1) -> list[torch.Tensor]:
    """The loss of each layer of the stack (sum them to train jointly, paper §4).

    v0: (B, *input_shape) data in 0..N_v. mode "joint" lets layer l+1's loss flow into layer l
    through its input f_h(x_l); "detached" and "greedy" cut it. `layers` limits which losses
    are computed (greedy: the current layer; the ones below only feed it, without autograd).
    method is one source of negatives for every layer, or a list with one per layer.
    For pcd and pt, chains[l] is layer l's chain state ((B, ...); pt: (K, B, ...)) and is replaced
    by its continuation in place.
    sparsity = λ > 0 adds λ · sparsity_penalty(layer, f_h(x), sparsity_target) to each layer's loss."""
    wanted = set(range(len(dbn.layers))) if layers is None else set(layers)
    top = max(wanted)
    losses, v = [], v0
    methods = [method] * len(dbn.layers) if isinstance(method, str) else method
    for i, layer in enumerate(dbn.layers[: top + 1]):
        method = methods[i]
        v = layer.flatten_input(v)
        if i not in wanted:
            with torch.no_grad():
                v = layer.hidden_mean(v)
            continue
        x = layer.hidden_input(v)
        h_mean = layer.spec.hidden_units.mean(x)
        chain = None
        if method == "pcd":  # a chain starts at the data the first time it is needed
            chain = chains[i] = v.detach().clone() if chains[i] is None else chains[i]
        chain = chains[i] if method == "pt" else chain  # pt: negatives() starts it (K copies of the data)
        v_neg = negatives(layer, v.detach(), method, steps=steps, generator=generator, chain=chain, h_mean=h_mean.detach())
        if method in ("pcd", "pt"):
            chains[i] = v_neg
            v_neg = v_neg[0] if method == "pt" else v_neg  # the β = 1 chain
        loss = contrastive_loss(layer, v, v_neg, x)
        losses.append(loss + sparsity * sparsity_penalty(layer, h_mean, sparsity_target) if sparsity else loss)
        v = h_mean if mode == "joint" else h_mean.detach()
    return losses
