"""A one-vs-rest linear SVM solved in the primal with L-BFGS in torch.

It minimises, for every class c with targets y_ic = ±1, liblinear's L2-regularised
squared-hinge objective (scikit-learn's `LinearSVC` defaults, bias regularised like
liblinear's intercept feature of scale 1):

    J_c(w, b) = ½ (‖w‖² + b²) + C Σ_i max(0, 1 − y_ic (w·x_i + b))²

J_c is convex and continuously differentiable, so L-BFGS converges to liblinear's optimum;
the classes are independent, so all are solved at once as one (D+1, K) matrix. On 60k × 500
features this takes seconds where liblinear took minutes per C, which is what lets the Table 1
protocol scan a wide C grid. The test compares against `LinearSVC` on held-out predictions.
"""

from __future__ import annotations

import numpy as np
import torch


def ovr_targets(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class indices (n,) → ±1 targets (n, K): +1 in the sample's own column."""
    t = -torch.ones(len(y), n_classes)
    t[torch.arange(len(y)), y] = 1.0
    return t


def squared_hinge_objective(wb: torch.Tensor, x: torch.Tensor, t: torch.Tensor, c: float) -> torch.Tensor:
    """Σ_c J_c: wb (D+1, K) with the bias in the last row, x (n, D), t (n, K) ±1 targets → scalar."""
    margin = (1.0 - t * decision_function(wb, x)).clamp_min(0.0)  # (n, K)
    return 0.5 * wb.pow(2).sum() + c * margin.pow(2).sum()


def squared_hinge_gradient(wb: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                           c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(ΣJ_c, ∂ΣJ_c/∂wb) with ∂ΣJ_c/∂wb = wb + [xᵀ; 1ᵀ] r, r = −2C·t·m, m = max(0, 1 − t·s) (n, K):
    the objective comes free with the margins m, so one evaluation is two passes over x.

    Written out rather than left to autograd because autograd forms xᵀr as a transposed
    (D, n)·(n, K) product, which torch's CPU path runs ≈ 7× slower than (rᵀx)ᵀ (measured on
    60k × 2304 float32: 590 vs 88 ms); the test checks it against autograd."""
    margin = (1.0 - t * decision_function(wb, x)).clamp_min(0.0)  # (n, K)
    r = -2.0 * c * t * margin
    loss = 0.5 * wb.pow(2).sum() + c * margin.pow(2).sum()
    return loss, wb + torch.cat([(r.T @ x).T, r.sum(0, keepdim=True)])


def fit_linear_svm(x: torch.Tensor, t: torch.Tensor, c: float, *, init: torch.Tensor | None = None,
                   tol: float = 1e-4, max_iter: int = 300,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, int]:
    """Minimise Σ_c J_c for features x (n, D) and ±1 targets t (n, K) → (wb (D+1, K) in dtype,
    L-BFGS iterations used).

    Stops when the largest gradient entry falls below tol × its value at the start (relative,
    like liblinear's stopping rule) or after max_iter L-BFGS iterations (as liblinear caps its
    own; along a warm-started C grid the cap only binds at the largest C, where it trades the
    last digits of an overfitting solution for minutes). Each evaluation reads x twice (scores,
    gradient); float32 is ample for tol ≥ 1e-5."""
    x, t = x.to(dtype).contiguous(), t.to(dtype)
    wb = init.to(dtype).clone() if init is not None else torch.zeros(x.shape[1] + 1, t.shape[1], dtype=dtype)
    g0 = squared_hinge_gradient(wb, x, t, c)[1].abs().max().item()
    opt = torch.optim.LBFGS([wb], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=max(tol * g0, 1e-12), tolerance_change=1e-14)

    def closure():
        loss, wb.grad = squared_hinge_gradient(wb, x, t, c)
        return loss

    with torch.no_grad():
        opt.step(closure)
    return wb, int(opt.state[wb].get("n_iter", 0))


def decision_function(wb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Scores w_c·x + b_c: x (n, D) → (n, K); the prediction is the arg-max class."""
    return torch.addmm(wb[-1], x.to(wb.dtype), wb[:-1])


class Standardiser:
    """x ↦ (x − mean) / std with the fit data's mean and std (σ = 0 → 1): scikit-learn's
    `StandardScaler`, statistics in float64."""

    def __init__(self, x, dtype: torch.dtype = torch.float32):
        xt = torch.as_tensor(np.asarray(x)).double()
        self.mean, std = xt.mean(0), xt.std(0, unbiased=False)
        self.std = torch.where(std > 0, std, torch.ones_like(std))
        self.dtype = dtype

    def __call__(self, x) -> torch.Tensor:
        return ((torch.as_tensor(np.asarray(x)).double() - self.mean) / self.std).to(self.dtype)


class StandardisedLinearSVM:
    """Standardise with the fit data's mean and std, then one-vs-rest SVM.
    The drop-in for the scikit-learn pipeline `StandardScaler() → LinearSVC(C)`."""

    def __init__(self, c: float, init: torch.Tensor | None = None, tol: float = 1e-4, max_iter: int = 300,
                 dtype: torch.dtype = torch.float32):
        self.c, self.init, self.tol, self.max_iter, self.dtype = c, init, tol, max_iter, dtype

    def fit(self, x, y) -> StandardisedLinearSVM:
        x = torch.as_tensor(np.asarray(x)).double()  # converted once, for the statistics and the fit
        self.standardise = Standardiser(x, self.dtype)
        self.classes, y_idx = np.unique(np.asarray(y), return_inverse=True)
        t = ovr_targets(torch.as_tensor(y_idx), len(self.classes))
        self.wb, self.n_iter = fit_linear_svm(self.standardise(x), t, self.c, init=self.init, tol=self.tol, max_iter=self.max_iter, dtype=self.dtype)
        return self

    def predict(self, x) -> np.ndarray:
        scores = decision_function(self.wb, self.standardise(x))
        return self.classes[scores.argmax(1).numpy()]
