"""An RBF-kernel SVM that fits 60k training images on a CPU: the Nyström feature map.

The Gaussian (RBF) kernel k(x, y) = exp(−γ‖x − y‖²) on n points needs an n × n Gram matrix
(60k² floats = 14 GB) and libsvm's O(n²) solver: hours per C on two cores. Nyström (Williams
& Seeger, 2001) picks m landmarks L from the fit data and maps

    φ(x) = k(x, L) · U · S^(-1/2),   K_LL = k(L, L) = U S Uᵀ (eigendecomposition),

so that φ(x)·φ(y) = k(x, L) K_LL⁻¹ k(L, y): exact for the landmarks, the best rank-m
approximation through them elsewhere. A linear SVM on φ is then an RBF SVM with the Gram
matrix Φ Φᵀ in place of K. With m = n landmarks Φ Φᵀ = K exactly (the test checks this against
scikit-learn's `rbf_kernel`).
"""

from __future__ import annotations

import numpy as np
import torch

from rbmcli.eval.linear_svm import Standardiser, decision_function, fit_linear_svm, ovr_targets


def rbf_kernel(x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """k(x_i, y_j) = exp(−γ‖x_i − y_j‖²): x (n, D), y (m, D) → (n, m), via
    ‖x‖² + ‖y‖² − 2 x·y (one GEMM), clamped at 0 against rounding."""
    d2 = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1) - 2.0 * (x @ y.T)
    return torch.exp(-gamma * d2.clamp_min(0.0))


def nystroem_map(landmarks: torch.Tensor, gamma: float, rcond: float = 1e-6) -> torch.Tensor:
    """The projection P = U S^(-1/2) (m, r) of K_LL = U S Uᵀ, landmarks (m, D); φ(x) = k(x, L) P.

    Eigenvalues below rcond × the largest are dropped (r ≤ m columns): K_LL of near-duplicate
    landmarks is singular, and their directions carry no information."""
    k = rbf_kernel(landmarks.double(), landmarks.double(), gamma)  # (m, m), float64 for the eigensolver
    s, u = torch.linalg.eigh(k)
    keep = s > rcond * s.max()
    return (u[:, keep] / s[keep].sqrt()).to(landmarks.dtype)


class NystroemRbfSVM:
    """Standardise → Nyström features of the RBF kernel → one-vs-rest squared-hinge SVM
    (rbmcli.eval.linear_svm). γ = gamma_scale / D on standardised features: scikit-learn's
    `gamma="scale"` (1 / (D · Var x), Var = 1 after standardising) when gamma_scale = 1.
    Landmarks: `landmarks` fit images drawn without replacement (seeded)."""

    def __init__(self, c: float, *, landmarks: int = 4096, gamma_scale: float = 1.0, seed: int = 0,
                 init: torch.Tensor | None = None, tol: float = 1e-4, max_iter: int = 300, chunk: int = 8192):
        self.c, self.n_landmarks, self.gamma_scale, self.seed = c, landmarks, gamma_scale, seed
        self.init, self.tol, self.max_iter, self.chunk = init, tol, max_iter, chunk

    def _phi(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised z (n, D) → φ(z) (n, r), in chunks so k(z, L) never exceeds chunk × m floats."""
        return torch.cat([rbf_kernel(z[i:i + self.chunk], self.landmarks, self.gamma) @ self.proj
                          for i in range(0, len(z), self.chunk)])

    def fit(self, x, y) -> NystroemRbfSVM:
        x = torch.as_tensor(np.asarray(x)).double()  # converted once, for the statistics and the map
        self.standardise = Standardiser(x)
        z = self.standardise(x)
        g = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(len(z), generator=g)[:min(self.n_landmarks, len(z))]
        self.landmarks, self.gamma = z[idx].contiguous(), self.gamma_scale / z.shape[1]
        self.proj = nystroem_map(self.landmarks, self.gamma)
        phi = self._phi(z)
        self.classes, y_idx = np.unique(np.asarray(y), return_inverse=True)
        t = ovr_targets(torch.as_tensor(y_idx), len(self.classes))
        # A warm start only helps when the basis is the same (same fit data and seed along a C grid);
        # elsewhere it is merely a starting point of the convex problem, and a misfitting one is dropped.
        init = self.init if self.init is not None and self.init.shape[0] == phi.shape[1] + 1 else None
        self.wb, self.n_iter = fit_linear_svm(phi, t, self.c, init=init, tol=self.tol, max_iter=self.max_iter)
        return self

    def predict(self, x) -> np.ndarray:
        scores = decision_function(self.wb, self._phi(self.standardise(x)))
        return self.classes[scores.argmax(1).numpy()]
