"""The Nyström RBF SVM: its kernel and feature map against scikit-learn, and what it buys."""

import numpy as np
import torch
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics.pairwise import rbf_kernel as sk_rbf_kernel
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from rbmcli.eval.nystroem import NystroemRbfSVM, nystroem_map, rbf_kernel
from rbmcli.eval.svm import svm_error


def test_rbf_kernel_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    got = rbf_kernel(torch.as_tensor(x), torch.as_tensor(y), 0.3).numpy()
    assert got.shape == (5, 7)
    np.testing.assert_allclose(got, sk_rbf_kernel(x, y, gamma=0.3), rtol=1e-12, atol=1e-14)


def test_all_points_as_landmarks_reproduce_the_gram_matrix():
    """m = n: φ(X) φ(X)ᵀ = K exactly, and for a new point φ(x)·φ(X)ᵀ = k(x, X)."""
    rng = np.random.default_rng(1)
    x, new = torch.as_tensor(rng.normal(size=(9, 3))), torch.as_tensor(rng.normal(size=(5, 3)))
    proj = nystroem_map(x, 0.5)
    phi, phi_new = rbf_kernel(x, x, 0.5) @ proj, rbf_kernel(new, x, 0.5) @ proj
    np.testing.assert_allclose((phi @ phi.T).numpy(), sk_rbf_kernel(x.numpy(), gamma=0.5), atol=1e-8)
    np.testing.assert_allclose((phi_new @ phi.T).numpy(), sk_rbf_kernel(new.numpy(), x.numpy(), gamma=0.5), atol=1e-8)


def test_few_landmarks_give_a_low_rank_approximation():
    rng = np.random.default_rng(2)
    x = torch.as_tensor(rng.normal(size=(61, 3)))
    exact = sk_rbf_kernel(x.numpy(), gamma=0.5)
    errs = []
    for m in (3, 15, 61):
        proj = nystroem_map(x[:m], 0.5)
        phi = rbf_kernel(x, x[:m], 0.5) @ proj
        assert phi.shape == (61, proj.shape[1]) and proj.shape[1] <= m
        errs.append(np.abs((phi @ phi.T).numpy() - exact).max())
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-6  # more landmarks, closer; all of them, exact


def test_same_predictions_as_scikit_learn_nystroem_pipeline():
    """All training points as landmarks: scikit-learn's map differs from ours by a rotation,
    which the L2-regularised SVM does not see, so the held-out predictions agree."""
    rng = np.random.default_rng(3)
    x, xt = rng.normal(size=(45, 5)), rng.normal(size=(300, 5))
    y = (np.linalg.norm(x, axis=1) > 2.1).astype(int)
    ours = NystroemRbfSVM(0.7, landmarks=45, tol=1e-8, max_iter=2000).fit(x, y)
    ref = make_pipeline(StandardScaler(), Nystroem(gamma=1 / 5, n_components=45, random_state=0),
                        LinearSVC(C=0.7, tol=1e-10, max_iter=100_000)).fit(x, y)
    assert set(ours.predict(xt)) == {0, 1}
    assert np.mean(ours.predict(xt) == ref.predict(xt)) >= 0.99


def test_rings_need_the_kernel():
    """Two concentric rings: no line separates them, the RBF kernel does."""
    def rings(n, seed):
        rng = np.random.default_rng(seed)
        y = np.arange(n) % 2
        r = np.where(y == 1, 3.0, 1.0) + rng.normal(scale=0.15, size=n)
        a = rng.uniform(0, 2 * np.pi, n)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1), y
    (xtr, ytr), (xte, yte) = rings(400, 0), rings(200, 1)
    lin = svm_error(xtr, ytr, xte, yte)
    rbf = svm_error(xtr, ytr, xte, yte, kernel="nystroem", landmarks=101)
    assert lin.test_error_percent > 25.0
    assert rbf.test_error_percent <= 1.0 and rbf.kernel == "nystroem" and rbf.landmarks == 101


def test_landmarks_are_seeded_and_capped_at_the_data():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 3)), np.arange(30) % 3
    a, b = NystroemRbfSVM(1.0, landmarks=500, seed=5).fit(x, y), NystroemRbfSVM(1.0, landmarks=500, seed=5).fit(x, y)
    assert a.landmarks.shape == (30, 3)
    torch.testing.assert_close(a.wb, b.wb)
    c, d = NystroemRbfSVM(1.0, landmarks=7, seed=6).fit(x, y), NystroemRbfSVM(1.0, landmarks=7, seed=5).fit(x, y)
    assert c.landmarks.shape == (7, 3) and not torch.equal(c.landmarks, d.landmarks)
