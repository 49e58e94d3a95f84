"""scikit-learn estimators over rbmcli's core: BernoulliRBM (a drop-in for scikit-learn's),
RBM and DBN (the whole model family: multinary units, conv layers, recipes).

Importing this package imports torch and scikit-learn; `import rbmcli` does not (the names
are exported from there lazily)."""

from rbmcli.estimators.bernoulli import BernoulliRBM
from rbmcli.estimators.family import DBN, RBM

__all__ = ["BernoulliRBM", "DBN", "RBM"]
