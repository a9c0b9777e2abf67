"""nnU-Net v2 datasets, paste-back of synthetic patches, training and prediction through nnunetv2."""
