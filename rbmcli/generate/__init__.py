"""Samples and reconstructions from a checkpoint (`rbm sample`, `rbm reconstruct`)."""
