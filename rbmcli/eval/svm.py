"""The paper's Table 1 protocol: top-layer DBN features → SVM → test error in %.

Features are the top hidden layer's mean activities for v = pixels·N_v/255 (binary models,
N_v = 1, see gray intensities in [0, 1] as visible probabilities). The SVM's C is chosen on a
stratified, seeded validation split of the *training* set; the model is then refit on the whole
training set with that C and scored once on the test set, which takes no part in any choice.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from rbmcli.model.dbn import DBN
from rbmcli.errors import RbmError
from rbmcli.eval.linear_svm import StandardisedLinearSVM
from rbmcli.eval.nystroem import NystroemRbfSVM

KERNELS = ("linear", "nystroem", "rbf")
# C grids, ascending. Linear: 10^-4..1 in half decades (measured: the optimum for 500 RBM
# features on 54k images sat at the old grid's lower edge, 0.01). Nyström (RBF features,
# squared hinge): 0.01..10 in half decades. Exact RBF: libsvm, 8–12 minutes per C on 54k × 2,304
# conv features at one thread (benchmarks/experiments/rbf_full.py); C = 10 was best of 3, 10, 30 for MNIST
# and Fashion-MNIST conv features (C = 1 was worse on the 10k screen).
C_GRIDS = {"linear": (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0),
           "nystroem": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), "rbf": (3.0, 10.0, 30.0)}
RBF_CACHE_MB = 2000  # libsvm kernel cache: ≈ 9,700 float32 kernel rows of a 54k problem (its default 200 MB: ≈ 970)
NYSTROEM_LANDMARKS = 4096


@dataclass(kw_only=True)
class SvmResult:
    test_error_percent: float
    best_c: float  # C picked on the validation split of the training set
    val_error_percent: float  # validation error at best_c
    seconds: float
    n_train: int
    n_test: int
    kernel: str
    landmarks: int | None = None  # Nyström landmarks (kernel "nystroem")
    scan: list = field(default_factory=list)  # per C: {C, val_error_percent, seconds, iterations}


@torch.inference_mode()
def extract_features(dbn: DBN, images_uint8, *, visible_units_n: int, batch_size: int = 512,
                     device: str | torch.device = "cpu",
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Top-layer mean activities f_h of images (n, C, H, W) uint8 → float32 array (n, D).

    The pixel → visible mapping is v = pixels · N_v / 255 (the training data's mapping)."""
    images = torch.as_tensor(images_uint8)
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise RbmError(f"expected uint8 images of shape (n, C, H, W), got {images.dtype} {tuple(images.shape)}")
    param = next(dbn.parameters())
    if param.device != torch.device(device):
        dbn = copy.deepcopy(dbn).to(device)  # leave the caller's model where it is
    out = []
    for start in range(0, len(images), batch_size):
        v = images[start:start + batch_size].to(device, param.dtype) * (visible_units_n / 255.0)
        out.append(dbn.features(v).float().cpu().numpy())  # (B, D)
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _model(kernel: str, c: float, *, seed: int, max_iter: int, init=None, landmarks: int = NYSTROEM_LANDMARKS):
    """Standardise (fit on the data the model is fit on), then an SVM with this C."""
    if kernel == "linear":  # liblinear's objective solved by L-BFGS in torch (rbmcli.eval.linear_svm)
        return StandardisedLinearSVM(c, init=init, max_iter=max_iter)
    if kernel == "nystroem":  # the RBF kernel through `landmarks` Nyström features, same solver
        return NystroemRbfSVM(c, landmarks=landmarks, seed=seed, init=init, max_iter=max_iter)
    # libsvm, one-vs-one: O(n²) kernel evaluations, minutes to hours on 60k. Run to convergence:
    # max_iter is an L-BFGS iteration cap; libsvm's iterations are single coordinate steps
    # (a cap of 300 stopped it far from the optimum, with a ConvergenceWarning).
    svm = SVC(C=c, kernel="rbf", gamma="scale", random_state=seed, cache_size=RBF_CACHE_MB)
    return make_pipeline(StandardScaler(), svm)


def _error_percent(model, x, y) -> float:
    return float(100.0 * np.mean(model.predict(x) != y))


def scan_c(fit_x, fit_y, val_x, val_y, *, kernel: str, c_grid, seed: int = 0, max_iter: int = 300,
           landmarks: int = NYSTROEM_LANDMARKS, patience: int = 0,
           progress: Callable[[int], None] | None = None) -> tuple[list, list[dict]]:
    """Fit one SVM per C of the ascending c_grid on (fit_x, fit_y) and score it on the
    validation data → (models, scan rows {C, val_error_percent, seconds, iterations}).
    Each fit starts from the previous C's solution (linear, Nyström: same optimum, fewer
    iterations); patience > 0 stops once the error has not improved for that many C values.
    progress(fits done) is called before each fit."""
    models, scan, init = [], [], None
    for c in c_grid:
        if progress is not None:
            progress(len(models))
        t0 = time.perf_counter()
        models.append(_model(kernel, c, seed=seed, max_iter=max_iter, init=init, landmarks=landmarks).fit(fit_x, fit_y))
        scan.append({"C": c, "val_error_percent": _error_percent(models[-1], val_x, val_y),
                     "seconds": round(time.perf_counter() - t0, 1), "iterations": getattr(models[-1], "n_iter", None)})
        init = getattr(models[-1], "wb", None)
        errors = [row["val_error_percent"] for row in scan]
        if patience and len(errors) - 1 - int(np.argmin(errors)) >= patience:
            break  # validation error rose `patience` grid steps past its minimum: larger C only overfits more
    return models, scan


def validation_split(x, y, fraction: float = 0.1, seed: int = 0):
    """The Table 1 protocol's split of the training set: stratified, seeded →
    (fit_x, val_x, fit_y, val_y), with `fraction` of the images in the validation part."""
    return train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)


def ovo_vote(decisions: np.ndarray, n_classes: int) -> np.ndarray:
    """Classes elected by one-vs-one decision values: (n, K(K-1)/2) → (n,) class indices.

    Column k holds pair (i, j), i < j, in libsvm's order (0,1), (0,2), …, (0,K-1), (1,2), …
    (scikit-learn's `SVC(decision_function_shape="ovo")`); a value > 0 is a vote for i, else
    for j. The class with the most votes wins, ties to the lower index, as libsvm's predict.
    Summing the decision values of several SVMs before the vote makes them one ensemble."""
    votes = np.zeros((decisions.shape[0], n_classes), dtype=np.int64)
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    if decisions.shape[1] != len(pairs):
        raise RbmError(f"{decisions.shape[1]} decision columns do not make the pairs of {n_classes} classes")
    for k, (i, j) in enumerate(pairs):
        wins_i = decisions[:, k] > 0
        votes[wins_i, i] += 1
        votes[~wins_i, j] += 1
    return votes.argmax(axis=1)


def check_svm_data(train_y, val_fraction: float = 0.1, n_classes: int | None = None) -> None:
    """Refuse training labels the protocol cannot use: unlabelled images, fewer than 2 classes,
    a class with a single image, or a validation part smaller than the number of classes
    (n_classes: the dataset's, when known, sizes the --limit-train suggested)."""
    y = np.asarray(train_y)
    labelled = y[y >= 0]
    classes, counts = np.unique(labelled, return_counts=True)
    n_val = int(np.ceil(val_fraction * len(y)))
    needed = int(np.ceil(max(len(classes), n_classes or 0, 2) / val_fraction))
    if len(labelled) < len(y) or len(classes) < 2 or counts.min() < 2 or n_val < len(classes) \
            or len(y) - n_val < len(classes):
        raise RbmError(f"the SVM protocol needs labelled training images of at least 2 classes, each at least "
                       f"twice, and a {val_fraction:.0%} validation part holding every class; got {len(y)} images "
                       f"({len(labelled)} labelled) of {len(classes)} classes: use --limit-train {needed} or more",
                       usage=True)


def svm_error(train_x, train_y, test_x, test_y, *, kernel: str = "linear", c_grid=None,
              val_fraction: float = 0.1, seed: int = 0, max_iter: int = 300, patience: int = 0,
              landmarks: int = NYSTROEM_LANDMARKS, progress: Callable[[int, int], None] | None = None) -> SvmResult:
    """Test error (%) of an SVM on standardised features, C chosen on a stratified
    validation split (val_fraction of the training set, seeded), refit on all training data.
    c_grid defaults to C_GRIDS[kernel]; linear fits along the grid start from the previous C's
    solution (same optimum, fewer iterations). patience > 0 stops the scan once the validation
    error has not improved for that many consecutive C values (off by default: at small C the
    error sits on a noisy plateau, which a patience rule can mistake for the optimum).
    kernel "nystroem" is the RBF kernel (γ = 1/D on standardised features) through `landmarks`
    Nyström features (rbmcli.eval.nystroem); "rbf" is libsvm's exact solver (small data only)."""
    c_grid = C_GRIDS.get(kernel, ()) if c_grid is None else tuple(sorted(c_grid))
    if kernel not in KERNELS:
        raise RbmError(f"unknown SVM kernel {kernel!r}; choose one of {KERNELS}", usage=True)
    if not c_grid or not 0 < val_fraction < 1:
        raise RbmError("svm_error needs a non-empty C grid and 0 < val_fraction < 1", usage=True)
    start = time.perf_counter()
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    check_svm_data(train_y, val_fraction)
    fit_x, val_x, fit_y, val_y = validation_split(train_x, train_y, val_fraction, seed)
    models, scan = scan_c(fit_x, fit_y, val_x, val_y, kernel=kernel, c_grid=c_grid, seed=seed, max_iter=max_iter, landmarks=landmarks, patience=patience,
                          progress=None if progress is None else lambda done: progress(done, len(c_grid) + 1))
    val_errors = [row["val_error_percent"] for row in scan]
    best = int(np.argmin(val_errors))  # ties: the smallest C
    init = getattr(models[best], "wb", None)
    if progress is not None:
        progress(len(c_grid), len(c_grid) + 1)
    model = _model(kernel, c_grid[best], seed=seed, max_iter=max_iter, init=init, landmarks=landmarks).fit(train_x, train_y)
    if progress is not None:
        progress(len(c_grid) + 1, len(c_grid) + 1)
    return SvmResult(test_error_percent=_error_percent(model, test_x, test_y), best_c=float(c_grid[best]), val_error_percent=val_errors[best],
                     seconds=time.perf_counter() - start, n_train=len(train_y), n_test=len(test_y), kernel=kernel,
                     landmarks=landmarks if kernel == "nystroem" else None, scan=scan)
