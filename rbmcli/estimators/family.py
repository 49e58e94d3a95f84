"""rbmcli.RBM and rbmcli.DBN: the whole model family (multinary 0..N units with scale k, dense
and conv layers, recipes, negatives) as scikit-learn transformers.

X is (n, features) or (n, C, H, W) (C = 1 or 3), uint8 pixels 0..255 or intensities in [0, 1]
of any other dtype; both map onto the visible units 0..N_v as `rbm train` maps images
(rbmcli.estimators.fitting.to_visible_units). A 2-D X is one image (1, 1, features) per row
unless image_shape = (C, H, W) says how to fold it (conv layers need it). Models save to and
load from the checkpoints `rbm train` writes (safetensors), so they move between the two.
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from rbmcli.estimators.fitting import fit_dbn, make_config, to_visible_units
from rbmcli.estimators.inputs import device_of, numpy_out, usage_errors

PARAMETERS = ("visible_units", "hidden_units", "k", "activation", "recipe", "negatives", "gibbs_steps", "mode",
              "learning_rate", "batch_size", "n_iter", "image_shape", "options", "device", "random_state", "verbose")
CONSTRAINTS = {
    "arch": [str], "visible_units": [Interval(Integral, 1, 65535, closed="both")],
    "hidden_units": [Interval(Integral, 1, 65535, closed="both")], "k": [Interval(Real, 0, None, closed="neither"), None],
    "activation": [StrOptions({"sigmoid", "relu"})], "recipe": [StrOptions({"generate", "paper"})],
    "negatives": [StrOptions({"meanfield", "cd", "pcd"}), None], "gibbs_steps": [Interval(Integral, 1, None, closed="left")],
    "mode": [StrOptions({"detached", "joint", "greedy"})], "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
    "batch_size": [Interval(Integral, 1, None, closed="left")], "n_iter": [Interval(Integral, 1, None, closed="left"), None],
    "image_shape": [tuple, None], "options": [dict, None], "device": [str], "random_state": ["random_state"],
    "verbose": ["verbose"],
}


class DBN(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A deep belief network (a stack of RBMs) trained as `rbm train` trains it.

    arch: layers as `rbm train --arch` takes them ("dense:500,dense:200", "conv:16,conv:32,dense:500",
    a preset; an item may end in @N). visible_units / hidden_units: N of the data and hidden
    layers (1 = binary); k, activation, recipe ("generate" or "paper"), negatives (None: the
    recipe's; "meanfield", "cd", "pcd"), gibbs_steps, mode: as the CLI options of those names.
    learning_rate (Adam's; None: the recipe's), batch_size, n_iter (epochs; None: the recipe's),
    options: any other TrainConfig field by name, e.g. {"sparsity": 0.1}. random_state: an int
    is `rbm train --seed` (same data and seed, same weights). Fitted: model_ (the core
    rbmcli.model.dbn.DBN), config_ (its TrainConfig), input_shape_ (C, H, W), n_features_in_."""

    _parameter_constraints: dict = CONSTRAINTS

    def __init__(self, arch="small-dbn", *, visible_units=1, hidden_units=1, k=None, activation="sigmoid",
                 recipe="generate", negatives=None, gibbs_steps=1, mode="detached", learning_rate=None,
                 batch_size=128, n_iter=None, image_shape=None, options=None, device="cpu", random_state=None,
                 verbose=0):
        self.arch = arch
        for name, value in zip(PARAMETERS, (visible_units, hidden_units, k, activation, recipe, negatives, gibbs_steps,
                                            mode, learning_rate, batch_size, n_iter, image_shape, options, device,
                                            random_state, verbose)):
            setattr(self, name, value)

    def _arch(self) -> str:
        return self.arch

    # --- input -----------------------------------------------------------------------------
    def _images(self, X, reset: bool) -> tuple[np.ndarray, tuple]:
        """X checked, as (n, C, H, W) with its own dtype, and the (C, H, W) it has."""
        X4 = getattr(X, "ndim", 2) == 4
        if X4:
            X = check_array(X, allow_nd=True, dtype="numeric", ensure_min_samples=1)
            shape, flat = tuple(X.shape[1:]), math.prod(X.shape[1:])
            if reset:
                self.n_features_in_ = flat
            elif flat != self.n_features_in_:
                raise ValueError(f"X has {flat} features per sample, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
        else:
            X = validate_data(self, X, dtype="numeric", reset=reset)
            shape = tuple(self.image_shape) if self.image_shape else (1, 1, X.shape[1]) if reset else self.input_shape_
        if math.prod(shape) != math.prod(X.shape[1:]) or len(shape) != 3 or shape[0] not in (1, 3):
            raise ValueError(f"image_shape {shape} is not (1 or 3, H, W) with H·W·C = {math.prod(X.shape[1:])} "
                             "features")
        if not reset and shape != self.input_shape_:
            raise ValueError(f"X holds images of shape {shape}; the model was fit on {self.input_shape_}")
        return X.reshape(len(X), *shape), shape

    def _visible(self, X: np.ndarray) -> torch.Tensor:
        return to_visible_units(X, self.model_.specs[0].visible_units.n, next(self.model_.parameters()).device)

    def _seed(self) -> int:
        return seed_of(self.random_state)

    # --- fit -------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train a fresh model on X (n, features) or (n, C, H, W)."""
        X, shape = self._images(X, reset=True)
        device = device_of(self.device)
        seed = self._seed()
        params = {**self.get_params(deep=False), "arch": self._arch()}
        with usage_errors():
            cfg = make_config(params, str(device), seed)
            v = to_visible_units(X, cfg.visible_units, device)
            generator = torch.Generator(device=device).manual_seed(seed + 1)  # the trainer's generator
            self.model_, self.n_steps_ = fit_dbn(cfg, v, generator, self.verbose, type(self).__name__)
        self.config_, self.input_shape_ = cfg, shape
        self._n_features_out = math.prod(self.model_.specs[-1].hidden_shape)
        self._log_z = None
        return self

    # --- use -------------------------------------------------------------------------------
    def transform(self, X):
        """Top-layer mean activities as fractions of N_h, f_h/N_h in [0, 1] (BernoulliRBM's
        P(h = 1 | v) for binary units), (n, D) with conv maps flattened; float64 for float64 X,
        else float32."""
        check_is_fitted(self)
        X, _ = self._images(X, reset=False)
        with torch.inference_mode():
            top = self.model_.features(self._visible(X)) / self.model_.specs[-1].hidden_units.n
            return numpy_out(top, X.dtype)

    def reconstruct(self, X):
        """The mean pass up the stack and back down, in [0, 1] intensities, X's shape (float32)."""
        check_is_fitted(self)
        shape = np.shape(X)
        X, _ = self._images(X, reset=False)
        with torch.inference_mode():
            v = self.model_.down(self.model_.up(self._visible(X)))
        return (v / self.model_.specs[0].visible_units.n).clamp(0, 1).reshape(shape).cpu().numpy()

    def sample(self, n_samples=64, *, steps=1000, random_state=None):
        """n_samples model samples: a Gibbs chain of `steps` in the top RBM from noise, then the
        mean pass down (`rbm sample`), in [0, 1] intensities, (n, features) or (n, C, H, W) as fit."""
        from rbmcli.model.sampling import generate

        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1 or not isinstance(steps, Integral) or steps < 0:
            raise ValueError(f"need n_samples >= 1 and steps >= 0, got {n_samples} and {steps}")
        device = next(self.model_.parameters()).device
        seed = seed_of(random_state)  # an int: the samples of `rbm sample --seed` with that int
        with torch.inference_mode():
            pixels, _ = generate(self.model_, n_samples, steps, torch.Generator(device=device).manual_seed(seed),
                                 device=device)
        pixels = (pixels / self.model_.specs[0].visible_units.n).clamp(0, 1).cpu().numpy()
        return pixels.reshape(n_samples, *self.input_shape_) if self._four_d() else pixels.reshape(n_samples, -1)

    def _four_d(self) -> bool:
        return self.input_shape_[:2] != (1, 1) or bool(self.image_shape)

    def score_samples(self, X):
        """log p(x) per sample (n,) in nats under a one-layer model with binary visible units:
        −F(v) − log Z, log Z exact by enumeration when min(V, H) ≤ 20 (rbmcli.eval.partition),
        else by AIS (rbmcli.eval.ais: 100 runs, 14,501 temperatures, base rate of the fit data
        unavailable here: that of X). Multinary visible units and stacks have no tractable
        likelihood here: ValueError."""
        from rbmcli.eval.partition import log_likelihood

        check_is_fitted(self)
        layers = self.model_.layers
        if len(layers) != 1 or not layers[0].spec.is_dense or layers[0].spec.visible_units.n != 1:
            raise ValueError("score_samples needs one dense RBM layer with binary visible units (visible_units=1); "
                             f"this model has {len(layers)} layer(s) with visible units 0..{layers[0].spec.visible_units.n}")
        X, _ = self._images(X, reset=False)
        v = self._visible(X).reshape(len(X), -1)
        if getattr(self, "_log_z", None) is None:
            self._log_z = self._log_partition(layers[0], v)
        return log_likelihood(layers[0], v, self._log_z).cpu().numpy()

    @staticmethod
    def _log_partition(layer, v: torch.Tensor) -> float:
        from rbmcli.eval.ais import _exact_possible, ais_log_partition, base_rate_biases
        from rbmcli.eval.partition import exact_log_partition

        with usage_errors():
            if _exact_possible(layer):
                return exact_log_partition(layer)
            g = torch.Generator(device=v.device).manual_seed(0)
            return ais_log_partition(layer, base_rate_biases(v.cpu()), 100, generator=g, device=v.device).log_z

    # --- checkpoints -----------------------------------------------------------------------
    def save(self, path, *, force=False) -> Path:
        """Write the model as `rbm train` writes model.safetensors (rbmcli.train.checkpoint); an
        existing file is kept unless force. `rbm sample|reconstruct|info` read it."""
        from rbmcli.train.checkpoint import save_model

        check_is_fitted(self)
        path = Path(path)
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists; pass force=True to overwrite it")
        extra = {"config": self.config_.to_json(), "dataset": self.config_.dataset, "size": str(self.input_shape_[-1]),
                 "epoch": str(self.config_.epochs), "step": str(self.n_steps_)}
        with usage_errors():
            save_model(path, self.model_.cpu(), self.input_shape_, extra)
        self.model_.to(device_of(self.device))
        return path

    @classmethod
    def load(cls, path, *, device="cpu"):
        """A fitted estimator from a checkpoint written by `save` or by `rbm train`."""
        from rbmcli.train.checkpoint import load_model
        from rbmcli.train.config import TrainConfig

        with usage_errors():
            dbn, info = load_model(path)
            cfg = TrainConfig.from_json(json.dumps(info["config"]))
        est = cls(**{n: v for n, v in _params_of(cfg).items() if n in cls().get_params()}, device=device)
        if cls is RBM:
            if len(dbn.layers) != 1:
                raise ValueError(f"{path} holds {len(dbn.layers)} layers: load it with rbmcli.DBN.load")
            est.n_components = dbn.specs[0].hidden
        est.model_, est.config_, est.input_shape_ = dbn.to(device_of(device)).eval(), cfg, tuple(info["input_shape"])
        est.n_features_in_, est.n_steps_ = math.prod(est.input_shape_), int(info.get("step") or 0)
        est._n_features_out, est._log_z = math.prod(dbn.specs[-1].hidden_shape), None
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = self.random_state is None
        return tags


def seed_of(random_state) -> int:
    """An int random_state is the seed itself (as `--seed`); otherwise one 32-bit draw from it."""
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _params_of(cfg) -> dict:
    """Estimator parameters of a TrainConfig (the inverse of make_config)."""
    return dict(arch=cfg.arch, visible_units=cfg.visible_units, hidden_units=cfg.hidden_units, k=cfg.k,
                activation=cfg.activation, recipe=cfg.recipe, negatives=cfg.negatives, gibbs_steps=cfg.gibbs_steps,
                mode=cfg.mode, learning_rate=cfg.lr, batch_size=cfg.batch_size, n_iter=cfg.epochs, random_state=cfg.seed)


class RBM(DBN):
    """One RBM layer of the family: dense with n_components hidden units, or, with arch, any one
    layer `rbm train --arch` takes ("conv:16", "dense:300@1"). Other parameters as DBN's."""

    def __init__(self, n_components=256, *, arch=None, visible_units=1, hidden_units=1, k=None, activation="sigmoid",
                 recipe="generate", negatives=None, gibbs_steps=1, mode="detached", learning_rate=None,
                 batch_size=128, n_iter=None, image_shape=None, options=None, device="cpu", random_state=None,
                 verbose=0):
        super().__init__(arch, visible_units=visible_units, hidden_units=hidden_units, k=k, activation=activation,
                         recipe=recipe, negatives=negatives, gibbs_steps=gibbs_steps, mode=mode,
                         learning_rate=learning_rate, batch_size=batch_size, n_iter=n_iter, image_shape=image_shape,
                         options=options, device=device, random_state=random_state, verbose=verbose)
        self.n_components = n_components

    _parameter_constraints: dict = {**CONSTRAINTS, "arch": [str, None], "n_components": [Interval(Integral, 1, None, closed="left")]}

    def _arch(self) -> str:
        from rbmcli.model.dbn import parse_arch

        arch = self.arch or f"dense:{self.n_components}"
        with usage_errors():
            if len(parse_arch(arch)) != 1:
                raise ValueError(f"RBM takes one layer; arch {arch!r} has {len(parse_arch(arch))} (use DBN)")
        return arch
