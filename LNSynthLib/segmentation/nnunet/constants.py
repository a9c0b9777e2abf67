"""nnU-Net settings that code outside the job processes reads (the Slicer panel, the web page).

This module imports nothing, so reading a default never pulls in the job modules (`runner`, and
through the trainers torch and nnunetv2: a freeze in Slicer's process, a crash of the web page's process).
"""

from __future__ import annotations

STANDARD_EPOCHS = 1000   # nnU-Net's standard trainer (`nnUNetTrainer`): 1000 epochs of 250 iterations
