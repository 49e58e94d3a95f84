"""The Table 1 protocol: features from a DBN, an SVM whose C never sees the test set."""

import numpy as np
import pytest
import torch

from rbmcli.dbn import DBN, build_specs
from rbmcli.errors import RbmError
from rbmcli.svm import extract_features, svm_error
from rbmcli.units import Units


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


def _dbn(arch, shape, n_v):
    vis = Units.make(n_v)
    specs = build_specs(arch, shape, vis, Units.make(1))
    return DBN(specs, init_std=0.3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch,n_v,dim", [("dense:7,dense:5", 1, 5), ("conv:3,dense:6", 1, 6), ("conv:4", 255, 4 * 4 * 4)])
def test_features_shape_mapping_and_batches(arch, n_v, dim):
    dbn = _dbn(arch, (1, 8, 8), n_v)
    images = torch.randint(0, 256, (37, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    one = extract_features(dbn, images, n_v, batch_size=512)
    small = extract_features(dbn, images.numpy(), n_v, batch_size=10)
    assert one.shape == (37, dim) and one.dtype == np.float32
    np.testing.assert_allclose(small, one, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # pixels → v = pixels · N_v / 255, then the top-layer mean activities
        expected = dbn.features(images.float() * n_v / 255).numpy()
    np.testing.assert_allclose(one, expected, rtol=1e-5, atol=1e-6)


def test_features_reject_non_uint8_images():
    with pytest.raises(RbmError, match="uint8"):
        extract_features(_dbn("dense:3", (1, 2, 2), 1), torch.rand(4, 1, 2, 2), 1)
