"""Measures of a trained model: SVM error, FID (with its Inception network), log-likelihood (exact or AIS) and the reconstruction demos."""
