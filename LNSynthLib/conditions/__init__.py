"""Sampling-time condition transforms of LN-DDPM (paper 000 §3.2): new lymph-node shapes and
counts on unchanged anatomy, rejecting nodes that would overlap organs."""
