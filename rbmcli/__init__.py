"""rbmcli: restricted Boltzmann machines trained by backprop (contrastive free energy).

Paper: "Differentiable loss functions for binary and multinary RBMs" (docs/theory.md explains the model).
"""

__version__ = "0.1.0"
