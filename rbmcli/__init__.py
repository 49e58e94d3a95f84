"""rbmcli: restricted Boltzmann machines trained by backprop (contrastive free energy).

Paper: "Differentiable loss functions for binary and multinary RBMs" (shared/paper).
"""

__version__ = "0.1.0"
