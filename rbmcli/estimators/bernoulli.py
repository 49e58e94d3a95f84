"""rbmcli.BernoulliRBM: a drop-in for sklearn.neural_network.BernoulliRBM over rbmcli's core.

The same parameters, defaults, methods and fitted attributes as scikit-learn's (binary visible
and hidden units, PCD-1 with persistent hidden chains `h_samples_`, the same Gaussian
initialisation drawn from the same random_state), plus `solver` and `device`:
- solver "sgd" (default): scikit-learn's update, plain SGD of the contrastive loss,
  in closed form (rbmcli.estimators.persistent_sgd): the same model, faster per step;
- solver "adam": Adam on the contrastive loss (rbmcli.model.loss.contrastive_loss, autograd),
  the update `rbm train` uses; `learning_rate` is then Adam's step size (0.001 to 0.01, not 0.1).
Transform, free energy and Gibbs sampling are the core RBM layer's (rbmcli.model.rbm.RBM with
N = 1, k = 1 units and weight scale 1, so its parameters are scikit-learn's W, a, b as they are).
"""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state, gen_even_slices
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from rbmcli.estimators.inputs import as_tensor, device_of, numpy_out, torch_dtype, torch_generator
from rbmcli.estimators.persistent_sgd import PersistentSGD, augment
from rbmcli.train.adam import Adam

SOLVERS = ("sgd", "adam")


def binary_layer(components: np.ndarray, hidden_bias: np.ndarray, visible_bias: np.ndarray,
                 dtype: torch.dtype, device: torch.device):
    """The core RBM layer with these parameters: dense, binary units, weight scale s = 1, so
    its natural parameters are the physical W = componentsᵀ (V, H), a (V,) and b (H,)."""
    from rbmcli.model.rbm import RBM, LayerSpec
    from rbmcli.model.units import Units

    H, V = components.shape
    unit = Units(1, 1.0, "sigmoid")
    spec = LayerSpec(kind="dense", visible_shape=(V,), hidden=H, visible_units=unit, hidden_units=unit,
                     fan_in_scale=False)
    layer = RBM(spec, 0.0, torch.Generator()).to(device, dtype)  # own generator: torch's global one stays untouched
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(components.T))
        layer.visible_bias.copy_(torch.as_tensor(visible_bias))
        layer.hidden_bias.copy_(torch.as_tensor(hidden_bias))
    return layer


class BernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli restricted Boltzmann machine, scikit-learn's interface on rbmcli's core.

    Parameters: as sklearn.neural_network.BernoulliRBM (n_components=256, learning_rate=0.1,
    batch_size=10, n_iter=10, verbose=0, random_state=None), and
    solver: "sgd" (scikit-learn's PCD-1 SGD update) or "adam" (Adam on the contrastive loss);
    device: "cpu", "cuda", "cuda:N", "mps" or "auto".
    Fitted attributes: components_ (n_components, n_features), intercept_hidden_,
    intercept_visible_, h_samples_ (batch_size, n_components), n_features_in_,
    feature_names_in_ (when X has string column names); their dtype follows X's (float32 or
    float64; other dtypes become float64).
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "solver": [StrOptions(set(SOLVERS))],
        "device": [str],
    }

    def __init__(self, n_components=256, *, learning_rate=0.1, batch_size=10, n_iter=10, verbose=0,
                 random_state=None, solver="sgd", device="cpu"):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.solver = solver
        self.device = device

    # --- the core layer ------------------------------------------------------------------
    def _layer(self, dtype: torch.dtype):
        return binary_layer(self.components_, self.intercept_hidden_, self.intercept_visible_, dtype,
                            device_of(self.device))

    def _check(self, X, dtype=(np.float64, np.float32)):
        check_is_fitted(self)
        return validate_data(self, X, accept_sparse="csr", reset=False, dtype=dtype)

    def _mean_hiddens(self, X) -> np.ndarray:
        """P(h = 1 | v) = σ(b + vW), (n, n_components), in X's precision."""
        out = np.result_type(X.dtype, self.components_.dtype)
        layer = self._layer(torch_dtype(out))
        with torch.inference_mode():
            h = layer.hidden_mean(as_tensor(X, torch_dtype(out), layer.weight.device))
        return numpy_out(h, out)

    def transform(self, X):
        """Hidden activation probabilities P(h = 1 | v = X), (n_samples, n_components)."""
        return self._mean_hiddens(self._check(X))

    def _free_energy(self, v) -> np.ndarray:
        """F(v) = −a·v − Σ_j softplus(b_j + (vW)_j), (n,), from the core layer."""
        dtype = torch_dtype(np.result_type(v.dtype, self.components_.dtype))
        layer = self._layer(dtype)
        with torch.inference_mode():
            return layer.free_energy(as_tensor(v, dtype, layer.weight.device)).cpu().numpy()

    def score_samples(self, X):
        """Pseudo-likelihood of X as scikit-learn defines it, (n_samples,): with one feature i
        per sample flipped at random (v → ṽ), V·log σ(F(ṽ) − F(v)). The feature drawn from a
        generator seeded by random_state at every call (the same indices as scikit-learn's)."""
        v = self._check(X)
        rng = check_random_state(self.random_state)
        ind = (np.arange(v.shape[0]), rng.randint(0, v.shape[1], v.shape[0]))
        v = v.toarray() if hasattr(v, "toarray") else np.array(v)
        v_ = v.copy()
        v_[ind] = 1 - v_[ind]
        return -v.shape[1] * np.logaddexp(0, -(self._free_energy(v_) - self._free_energy(v)))

    def gibbs(self, v):
        """One Gibbs step v → h ~ p(h | v) → v′ ~ p(v | h); a boolean array like v (as
        scikit-learn's). Draws come from random_state_ (created from random_state at first use)."""
        check_is_fitted(self)
        v = validate_data(self, v, accept_sparse="csr", reset=False, dtype=(np.float64, np.float32))
        if not hasattr(self, "random_state_"):
            self.random_state_ = check_random_state(self.random_state)
        dtype = torch_dtype(np.result_type(v.dtype, self.components_.dtype))
        layer = self._layer(dtype)
        g = torch_generator(self.random_state_, layer.weight.device)
        with torch.inference_mode():
            h = layer.sample_hidden(as_tensor(v, dtype, layer.weight.device), g)
            return layer.sample_visible(h, g).cpu().numpy() > 0.5

    # --- training ------------------------------------------------------------------------
    def _init_parameters(self, n_features: int, rng: np.random.RandomState, dtype) -> None:
        """scikit-learn's start: W ~ N(0, 0.01²) drawn from rng, zero biases, zero chains."""
        self.components_ = np.asarray(rng.normal(0, 0.01, (self.n_components, n_features)), order="F", dtype=dtype)
        self._n_features_out = self.components_.shape[0]
        self.intercept_hidden_ = np.zeros(self.n_components, dtype=dtype)
        self.intercept_visible_ = np.zeros(n_features, dtype=dtype)
        self.h_samples_ = np.zeros((self.batch_size, self.n_components), dtype=dtype)
        self._generator = torch_generator(rng, device_of(self.device))

    def _train(self, X, epochs: list[list[slice]], dtype) -> None:
        """Run the steps: for each epoch, one step per batch slice of X."""
        device = device_of(self.device)
        tdtype = torch_dtype(dtype)
        x1 = augment(as_tensor(X, tdtype, device))  # (n, V + 1): [v, 1]
        train = self._train_sgd if self.solver == "sgd" else self._train_adam
        begin = time.time()
        for epoch, slices in enumerate(epochs, 1):
            train(x1, slices, tdtype, device, np.dtype(dtype))
            if self.verbose:
                end = time.time()
                print(f"[{type(self).__name__}] Iteration {epoch}, pseudo-likelihood = "
                      f"{self.score_samples(X).mean():.2f}, time = {end - begin:.2f}s")
                begin = end

    def _train_sgd(self, x1, slices, tdtype, device, dtype) -> None:
        state = PersistentSGD(self.components_, self.intercept_hidden_, self.intercept_visible_, self.h_samples_,
                              dtype=tdtype, device=device)
        state.run(x1, slices, float(self.learning_rate), self._generator)
        self.components_, self.intercept_hidden_, self.intercept_visible_, self.h_samples_ = state.export(dtype)

    def _train_adam(self, x1, slices, tdtype, device, dtype) -> None:
        from rbmcli.model.loss import contrastive_loss

        layer = self._layer(tdtype)
        opt = Adam(layer.parameters(), lr=float(self.learning_rate), betas=(0.9, 0.999))  # torch.optim.Adam's update, without torch._dynamo
        if getattr(self, "_adam_state", None) is not None:
            opt.load_state_dict(self._adam_state)
        h = torch.as_tensor(self.h_samples_, dtype=tdtype, device=device)
        for s in slices:
            v = x1[s, :-1]
            with torch.no_grad():
                v_neg = layer.sample_visible(h, self._generator)
                h = layer.sample_hidden(v_neg, self._generator)  # before the update, as scikit-learn
            opt.zero_grad(set_to_none=True)
            contrastive_loss(layer, v, v_neg).backward()
            opt.step()
        self._adam_state = opt.state_dict()
        W, a, b = (t.detach().cpu().numpy().astype(dtype) for t in (layer.weight, layer.visible_bias, layer.hidden_bias))
        self.components_, self.intercept_visible_, self.intercept_hidden_ = np.asfortranarray(W.T), a, b
        self.h_samples_ = h.cpu().numpy().astype(dtype)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One training step on X as one batch (float64, as scikit-learn's partial_fit)."""
        first_pass = not hasattr(self, "components_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=first_pass)
        if not hasattr(self, "random_state_"):
            self.random_state_ = check_random_state(self.random_state)
        if first_pass:
            self._init_parameters(X.shape[1], self.random_state_, X.dtype)
        self._train(X, [[slice(0, X.shape[0])]], self.components_.dtype)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit to X: n_iter epochs over batch_size batches in order (scikit-learn's slices)."""
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32))
        rng = check_random_state(self.random_state)
        self._adam_state = None
        self._init_parameters(X.shape[1], rng, X.dtype)
        n_batches = int(np.ceil(X.shape[0] / self.batch_size))
        slices = list(gen_even_slices(n_batches * self.batch_size, n_batches, n_samples=X.shape[0]))
        self._train(X, [slices] * self.n_iter, X.dtype)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
