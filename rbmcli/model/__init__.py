"""The model: unit families, one RBM layer (dense or strided conv), the DBN stack, the contrastive free-energy loss and the Gibbs samplers. Pure tensors and parameters; no files."""
