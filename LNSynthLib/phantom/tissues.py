"""Tissue classes of the phantom and their HU: (mean, texture amplitude), portal-venous phase values."""

from __future__ import annotations

import numpy as np

AIR, SUBCUT_FAT, VISCERAL_FAT, WALL_MUSCLE, MUSCLE, BONE, CORTEX, DISC, CORD = range(9)
LIVER, GALLBLADDER, SPLEEN, KIDNEY, ADRENAL, PANCREAS, GI_WALL, GI_FLUID, GAS = range(9, 18)
ARTERY, VEIN, PORTAL, BLADDER, NODE, STOOL, RENAL_SINUS = range(18, 25)

# mean HU, amplitude of smooth texture (HU)
HU = {
    AIR: (-1000.0, 5.0), SUBCUT_FAT: (-105.0, 10.0), VISCERAL_FAT: (-95.0, 12.0), WALL_MUSCLE: (50.0, 8.0),
    MUSCLE: (55.0, 8.0), BONE: (260.0, 60.0), CORTEX: (750.0, 80.0), DISC: (85.0, 8.0), CORD: (35.0, 5.0),
    LIVER: (105.0, 10.0), GALLBLADDER: (12.0, 4.0), SPLEEN: (115.0, 10.0), KIDNEY: (165.0, 15.0),
    ADRENAL: (50.0, 8.0), PANCREAS: (90.0, 15.0), GI_WALL: (70.0, 10.0), GI_FLUID: (15.0, 8.0),
    GAS: (-900.0, 40.0), ARTERY: (175.0, 6.0), VEIN: (130.0, 6.0), PORTAL: (150.0, 6.0), BLADDER: (10.0, 4.0),
    NODE: (40.0, 10.0), STOOL: (-60.0, 60.0), RENAL_SINUS: (-60.0, 20.0),
}


def hu_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup arrays tissue code -> mean HU and -> texture amplitude."""
    n = max(HU) + 1
    mean = np.zeros(n, np.float32)
    amp = np.zeros(n, np.float32)
    for code, (m, a) in HU.items():
        mean[code], amp[code] = m, a
    return mean, amp
