"""The contrastive free-energy loss (paper eq. 4 and 6) for one RBM and for a DBN.

The paper's L = Σ F(v′) − Σ F(v) is a log-likelihood surrogate to *maximise*; an optimiser
therefore minimises  loss = mean F(v) − mean F(v′)  with v′ a constant (READING.md). Its
gradient is the CD update: ∂loss/∂W = −⟨v f_h(x(v))⟩ + ⟨v′ f_h(x(v′))⟩.
"""

from __future__ import annotations

import torch

from rbmcli.dbn import DBN
from rbmcli.rbm import RBM
from rbmcli.sampling import negatives

MODES = ("joint", "detached", "greedy")


def contrastive_loss(rbm: RBM, v: torch.Tensor, v_neg: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    """mean_B F(v) − mean_B F(v′), a scalar; v′ is detached. Pass x = hidden_input(v) to reuse it."""
    return rbm.free_energy(v, x).mean() - rbm.free_energy(v_neg.detach()).mean()


def dbn_losses(dbn: DBN, v0: torch.Tensor, method: str = "meanfield", steps: int = 1,
               generator: torch.Generator | None = None, mode: str = "joint",
               chains: list[torch.Tensor] | None = None, layers: list[int] | None = None) -> list[torch.Tensor]:
    """The loss of each layer of the stack (sum them to train jointly, paper §4).

    v0: (B, *input_shape) data in 0..N_v. mode "joint" lets layer l+1's loss flow into layer l
    through its input f_h(x_l); "detached" and "greedy" cut it. `layers` limits which losses
    are computed (greedy: the current layer; the ones below only feed it, without autograd).
    For pcd, chains[l] is layer l's chain state and is replaced by its continuation in place."""
    wanted = set(range(len(dbn.layers))) if layers is None else set(layers)
    top = max(wanted)
    losses, v = [], v0
    for i, layer in enumerate(dbn.layers[: top + 1]):
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
        v_neg = negatives(layer, v.detach(), method, steps, generator, chain, h_mean.detach())
        if method == "pcd":
            chains[i] = v_neg
        losses.append(contrastive_loss(layer, v, v_neg, x))
        v = h_mean if mode == "joint" else h_mean.detach()
    return losses
