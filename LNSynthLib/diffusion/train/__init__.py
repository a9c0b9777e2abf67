"""Training: patch data, the training loop, EMA, checkpoints, multi-GPU setup, run folders and the loss plot."""
