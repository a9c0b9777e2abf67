"""Folder given to nnU-Net as `nnUNet_extTrainer`: its modules are imported by nnU-Net's own trainer lookup."""
