"""Sampling: synthetic cases from a checkpoint, sampling windows, provenance and condition-fidelity checks."""
