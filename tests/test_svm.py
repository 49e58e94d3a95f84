"""The Table 1 protocol: features from a DBN, an SVM whose C never sees the test set."""

import numpy as np
import pytest
import torch

from rbmcli.model.dbn import DBN, build_specs
from rbmcli.errors import RbmError
from rbmcli.eval.svm import extract_features, ovo_vote, svm_error
from rbmcli.model.units import Units


def blobs(n, seed, shift=4.0, d=5):
    """Two Gaussian classes 2·shift apart along every axis: linearly separable with margin."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, d)) + np.where(y[:, None] == 1, shift, -shift)
    return x, y


def test_separable_data_gives_zero_error():
    (xtr, ytr), (xte, yte) = blobs(400, 0), blobs(200, 1)
    res = svm_error(xtr, ytr, xte, yte)
    assert res.test_error_percent == 0.0 and res.val_error_percent == 0.0
    assert (res.n_train, res.n_test, res.kernel) == (400, 200, "linear")
    assert svm_error(xtr, ytr, xte, yte, kernel="rbf", c_grid=(1,)).test_error_percent == 0.0


def test_shuffled_labels_give_chance():
    rng = np.random.default_rng(2)
    xtr, xte = rng.normal(size=(600, 20)), rng.normal(size=(400, 20))
    ytr, yte = rng.permutation(np.arange(600) % 2), rng.permutation(np.arange(400) % 2)
    res = svm_error(xtr, ytr, xte, yte)
    assert 30.0 <= res.test_error_percent <= 70.0


def test_c_is_chosen_without_the_test_set():
    rng = np.random.default_rng(3)
    w = rng.normal(size=10)
    xtr, xte = rng.normal(size=(500, 10)), rng.normal(size=(300, 10))
    ytr = (xtr @ w + rng.normal(scale=2.0, size=500) > 0).astype(int)  # noisy labels: C matters
    yte = (xte @ w > 0).astype(int)
    a = svm_error(xtr, ytr, xte, yte, seed=1)
    b = svm_error(xtr, ytr, xte, 1 - yte, seed=1)  # every test label flipped
    assert (a.best_c, a.val_error_percent) == (b.best_c, b.val_error_percent)
    assert a.test_error_percent == pytest.approx(100.0 - b.test_error_percent)
    with pytest.raises(RbmError):
        svm_error(xtr, ytr, xte, yte, kernel="poly")


def test_ovo_vote_is_libsvm_predict():
    """The vote over one-vs-one decision values elects what libsvm's predict elects, on
    overlapping classes where votes split; a wrong pair order or sign fails it loudly."""
    from sklearn.svm import SVC

    rng = np.random.default_rng(5)
    k, d = 5, 7
    centres = rng.normal(scale=0.8, size=(k, d))
    y = np.arange(700) % k
    x = centres[y] + rng.normal(size=(700, d))
    svm = SVC(C=3.0, decision_function_shape="ovo").fit(x[:400], y[:400])
    dec = svm.decision_function(x[400:])
    assert dec.shape == (300, k * (k - 1) // 2)
    predicted = svm.predict(x[400:])
    assert 0.1 < (predicted != y[400:]).mean() < 0.6  # classes overlap: the vote is not trivial
    np.testing.assert_array_equal(ovo_vote(dec, k), predicted)
    np.testing.assert_array_equal(ovo_vote(3.0 * dec, k), predicted)  # a sum of equal members changes nothing
    assert (ovo_vote(-dec, k) != predicted).mean() > 0.5
    with pytest.raises(RbmError):
        ovo_vote(dec[:, :7], k)


def _dbn(arch, shape, n_v):
    vis = Units.make(n_v)
    specs = build_specs(arch, shape, vis, Units.make(1))
    return DBN(specs, init_std=0.3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch,n_v,dim", [("dense:7,dense:5", 1, 5), ("conv:3,dense:6", 1, 6), ("conv:4", 255, 4 * 4 * 4)])
def test_features_shape_mapping_and_batches(arch, n_v, dim):
    dbn = _dbn(arch, (1, 8, 8), n_v)
    images = torch.randint(0, 256, (37, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    one = extract_features(dbn, images, visible_units_n=n_v, batch_size=512)
    small = extract_features(dbn, images.numpy(), visible_units_n=n_v, batch_size=10)
    assert one.shape == (37, dim) and one.dtype == np.float32
    np.testing.assert_allclose(small, one, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # pixels → v = pixels · N_v / 255, then the top-layer mean activities
        expected = dbn.features(images.float() * n_v / 255).numpy()
    np.testing.assert_allclose(one, expected, rtol=1e-5, atol=1e-6)


def test_features_reject_non_uint8_images():
    with pytest.raises(RbmError, match="uint8"):
        extract_features(_dbn("dense:3", (1, 2, 2), 1), torch.rand(4, 1, 2, 2), visible_units_n=1)


@pytest.mark.parametrize("c", [0.01, 0.3, 3.0])
def test_lbfgs_solver_matches_liblinear(c):
    """The torch solver reaches liblinear's optimum (LinearSVC, primal, tight tolerance):
    5 classes, 13 features, 301 samples, a bias that is regularised like liblinear's."""
    from sklearn.svm import LinearSVC

    from rbmcli.eval.linear_svm import fit_linear_svm, ovr_targets

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 301)
    x = rng.normal(size=(301, 13)) + np.pad(2.0 * np.eye(5)[y], ((0, 0), (0, 8))) + 0.7
    ref = LinearSVC(C=c, dual=False, tol=1e-12, max_iter=100_000).fit(x, y)
    wb, _ = fit_linear_svm(torch.tensor(x), ovr_targets(torch.tensor(y), 5), c, tol=1e-10, max_iter=5000,
                           dtype=torch.float64)
    wb = wb.numpy()
    np.testing.assert_allclose(wb[:-1].T, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(wb[-1], ref.intercept_, atol=1e-6)


def test_protocol_matches_the_scikit_learn_pipeline():
    """Same C grid and split → same chosen C and test error as StandardScaler → LinearSVC."""
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(4)
    w = rng.normal(size=(11, 3))
    xtr, xte = rng.normal(size=(700, 11)) * 3 + 1, rng.normal(size=(300, 11)) * 3 + 1
    ytr = (xtr @ w + rng.normal(scale=2.0, size=(700, 3))).argmax(1)
    yte = (xte @ w).argmax(1)
    grid = (0.001, 0.01, 0.1, 1.0)
    res = svm_error(xtr, ytr, xte, yte, c_grid=grid, seed=5, patience=len(grid))
    fx, vx, fy, vy = train_test_split(xtr, ytr, test_size=0.1, stratify=ytr, random_state=5)
    pipe = lambda c: make_pipeline(StandardScaler(), LinearSVC(C=c, dual=False, tol=1e-10, max_iter=100_000))
    val = [100 * np.mean(pipe(c).fit(fx, fy).predict(vx) != vy) for c in grid]
    best = grid[int(np.argmin(val))]
    assert (res.best_c, res.val_error_percent) == (best, min(val))
    assert res.test_error_percent == pytest.approx(100 * np.mean(pipe(best).fit(xtr, ytr).predict(xte) != yte))


def test_written_out_gradient_equals_autograd():
    from rbmcli.eval.linear_svm import squared_hinge_gradient, squared_hinge_objective

    g = torch.Generator().manual_seed(1)
    x, wb = torch.randn(11, 7, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64)
    t = torch.where(torch.rand(11, 3, generator=g) < 0.5, -1.0, 1.0).double()
    wb.requires_grad_(True)
    objective = squared_hinge_objective(wb, x, t, 0.7)
    (auto,) = torch.autograd.grad(objective, wb)
    loss, grad = squared_hinge_gradient(wb.detach(), x, t, 0.7)
    torch.testing.assert_close(grad, auto)
    torch.testing.assert_close(loss, objective.detach())
