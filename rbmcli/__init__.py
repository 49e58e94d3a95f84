"""rbmcli: restricted Boltzmann machines trained by backprop (contrastive free energy).

Paper: "Differentiable loss functions for binary and multinary RBMs" (docs/theory.md explains the model).
The scikit-learn estimators BernoulliRBM, RBM and DBN (rbmcli.estimators) are exported here
lazily: `import rbmcli` and `rbm --help` import neither torch nor scikit-learn.
"""

__version__ = "0.1.0"

ESTIMATORS = ("BernoulliRBM", "RBM", "DBN")
__all__ = ["__version__", *ESTIMATORS]


def __getattr__(name: str):
    """rbmcli.BernoulliRBM, rbmcli.RBM and rbmcli.DBN, imported on first use."""
    if name in ESTIMATORS:
        import rbmcli.estimators

        return getattr(rbmcli.estimators, name)
    raise AttributeError(f"module 'rbmcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *ESTIMATORS])
