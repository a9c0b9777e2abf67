"""Tissue classes of the phantom (codes of `Canvas.tissue`); their HU live in `parameters.TISSUE_HU`."""

from __future__ import annotations

AIR, SUBCUT_FAT, VISCERAL_FAT, WALL_MUSCLE, MUSCLE, BONE, CORTEX, DISC, CORD = range(9)
LIVER, GALLBLADDER, SPLEEN, KIDNEY, ADRENAL, PANCREAS, GI_WALL, GI_FLUID, GAS = range(9, 18)
ARTERY, VEIN, PORTAL, BLADDER, NODE, STOOL, RENAL_SINUS = range(18, 25)
# Lymph-node hilum (part of the LN label) and the hard negatives (never part of it).
NODE_HILUM, COLLAPSED_BOWEL, URETER, SMALL_VEIN = range(25, 29)

LN_TISSUES = (NODE, NODE_HILUM)
HARD_NEGATIVE_TISSUES = (COLLAPSED_BOWEL, URETER, SMALL_VEIN)
