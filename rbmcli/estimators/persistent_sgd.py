"""scikit-learn's BernoulliRBM update (PCD-1, plain SGD) in closed form, on one matrix.

One step on a batch v (B, V) with persistent hidden chains h (C, H) (Tieleman 2008):
    v′ ~ p(v | h),   h⁺ = σ(b + vW),   h⁻ = σ(b + v′W),
    W += r·(vᵀh⁺ − v′ᵀh⁻),  b += r·Σ(h⁺ − h⁻),  a += r·Σ(v − v′),   r = lr / B,
then h ~ p(h | v′) (drawn before the update, as scikit-learn does). The update is lr times the
negative gradient of rbmcli's contrastive loss mean_B F(v) − mean_B F(v′) for binary units
(rbmcli.model.loss.contrastive_loss; a test checks it against autograd). It is written out
rather than left to autograd because at scikit-learn's batch of 10 a step is a dozen tiny
operations whose fixed cost dominates: autograd and an optimiser add a multiple of it.

Layout: M = [[W, a], [b, ·]], shape (V + 1, H + 1). With v₁ = [v, 1] and h₁ = [h, 1],
v₁·M[:, :H] = b + vW and h₁·M[:V]ᵀ = a + hWᵀ, and the rank-B update
M += r·(v₁ᵀ[h⁺, 1] − v′₁ᵀ[h⁻, 1]) moves W and both biases in two calls (the corner entry
M[V, H] is never read). σ is the mean of a binary unit (rbmcli.model.units, N = 1, k = 1).
"""

from __future__ import annotations

import numpy as np
import torch

RANDOM_STEPS = 256  # steps whose uniforms are drawn in one call (C·(V + H) each)


class PersistentSGD:
    """The parameters and chains of one binary RBM while it trains, as the matrix M."""

    def __init__(self, components: np.ndarray, hidden_bias: np.ndarray, visible_bias: np.ndarray,
                 h_samples: np.ndarray, *, dtype: torch.dtype, device: torch.device):
        H, V = components.shape
        f = dict(dtype=dtype, device=device)
        self.M = torch.zeros(V + 1, H + 1, **f)
        self.M[:V, :H] = torch.as_tensor(components.T, **f)
        self.M[V, :H] = torch.as_tensor(hidden_bias, **f)
        self.M[:V, H] = torch.as_tensor(visible_bias, **f)
        self.to_hidden, self.to_visible = self.M[:, :H], self.M[:V].t()  # views: (V + 1, H), (H + 1, V)
        self.chains = torch.ones(len(h_samples), H + 1, **f)  # h₁ = [h, 1]
        self.chains[:, :H] = torch.as_tensor(h_samples, **f)
        self.negative = torch.ones(len(h_samples), V + 1, **f)  # v′₁ = [v′, 1]
        self.h_neg = torch.ones(len(h_samples), H + 1, **f)  # [h⁻, 1]
        self._h_pos: dict[int, torch.Tensor] = {}  # [h⁺, 1] per batch size
        self.V, self.H = V, H

    def h_pos(self, batch: int) -> torch.Tensor:
        """The [h⁺, 1] buffer of a batch of this size, (batch, H + 1)."""
        if batch not in self._h_pos:
            self._h_pos[batch] = torch.ones(batch, self.H + 1, dtype=self.M.dtype, device=self.M.device)
        return self._h_pos[batch]

    @torch.inference_mode()
    def run(self, x1: torch.Tensor, slices: list[slice], lr: float, generator: torch.Generator) -> None:
        """One PCD-1 SGD step per slice of x₁ = [x, 1] (n, V + 1), in order, in place. The
        uniforms of the samples are drawn RANDOM_STEPS steps at a time (a Bernoulli draw is
        then u < p: one cheap comparison instead of a generator call per tensor)."""
        V, H, M, to_hidden, to_visible = self.V, self.H, self.M, self.to_hidden, self.to_visible
        chains, negative, h_neg = self.chains, self.negative, self.h_neg
        v_neg, hn, hc = negative[:, :V], h_neg[:, :H], chains[:, :H]
        for start in range(0, len(slices), RANDOM_STEPS):
            block = slices[start:start + RANDOM_STEPS]
            u = torch.rand(len(block), len(chains), V + H, generator=generator, dtype=M.dtype, device=M.device)
            for i, s in enumerate(block):  # the hot loop: ten small operations per step, nothing else
                v1 = x1[s]
                h_pos = self.h_pos(v1.shape[0])
                torch.sigmoid(v1 @ to_hidden, out=h_pos[:, :H])  # h⁺ = σ(b + vW)
                torch.lt(u[i, :, :V], (chains @ to_visible).sigmoid_(), out=v_neg)  # v′ ~ p(v | h) = σ(a + hWᵀ)
                torch.sigmoid(negative @ to_hidden, out=hn)  # h⁻ = σ(b + v′W)
                torch.lt(u[i, :, V:], hn, out=hc)  # the chains' next h ~ p(h | v′)
                r = lr / v1.shape[0]
                M.addmm_(v1.t(), h_pos, alpha=r).addmm_(negative.t(), h_neg, alpha=-r)

    def export(self, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(components_ (H, V) in Fortran order, intercept_hidden_ (H,), intercept_visible_ (V,),
        h_samples_ (C, H)) as numpy arrays of dtype."""
        V, H = self.V, self.H
        M = self.M.cpu().numpy().astype(dtype, copy=False)
        chains = self.chains[:, :H].cpu().numpy().astype(dtype)
        return np.asfortranarray(M[:V, :H].T), M[V, :H].copy(), M[:V, H].copy(), chains


def augment(v: torch.Tensor) -> torch.Tensor:
    """[v, 1]: a column of ones appended, (n, V) → (n, V + 1)."""
    return torch.cat([v, torch.ones(len(v), 1, dtype=v.dtype, device=v.device)], 1)
