"""Figures of Pascanu et al. (2013) computed from the single-unit RNN."""
