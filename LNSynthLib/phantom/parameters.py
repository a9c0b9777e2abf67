"""Every realistic number of the phantom, in one place, with where it comes from.

Units: millimetres, HU, cm³. The anatomy layout (`layout.py`) is described in fractions of the
body's half-widths instead, so one description serves every grid; the numbers here are the ones
a reader would check against real portal-venous abdominal CT.

Sources cited below:
- [LN60] the 60 public annotated abdominal lymph nodes summarised in issue 11: median volume
  ≈ 1.3 cm³, range 0.3–4.8 cm³ (short axes ≈ 5–20 mm).
- [HU] typical attenuation on portal-venous (≈ 70 s) abdominal CT, e.g. Lamba et al., "CT
  Hounsfield numbers of soft tissues on unenhanced abdominal CT scans" (AJR 2014) and standard
  radiology texts; lymph nodes 20–60 HU, fatty hilum −50…−100 HU (fat).
- [NPS] CT noise-power spectra of filtered back-projection with a soft-tissue kernel peak at
  ≈ 0.15–0.3 mm⁻¹ (Solomon, Christianson & Samei, Med Phys 2012; Boedeker et al., Phys Med Biol
  2007), noise σ ≈ 10–15 HU in soft tissue at routine dose.
- [MTF] a standard abdominal kernel has its 50 % MTF near 0.35–0.4 mm⁻¹, i.e. a Gaussian PSF of
  FWHM ≈ 1.1 mm in-plane; clinical reconstructions use 1–1.5 mm slices.
"""

from __future__ import annotations

import numpy as np

from LNSynthLib.phantom import tissues as T

# --- Tissue attenuation [HU]: mean HU, amplitude of smooth (≥ 6 mm) texture in HU -----------------------
TISSUE_HU: dict[int, tuple[float, float]] = {
    T.AIR: (-1000.0, 5.0), T.SUBCUT_FAT: (-105.0, 10.0), T.VISCERAL_FAT: (-95.0, 12.0),
    T.WALL_MUSCLE: (50.0, 6.0), T.MUSCLE: (55.0, 6.0), T.BONE: (260.0, 60.0), T.CORTEX: (750.0, 80.0),
    T.DISC: (85.0, 8.0), T.CORD: (35.0, 5.0), T.LIVER: (105.0, 6.0), T.GALLBLADDER: (12.0, 4.0),
    T.SPLEEN: (115.0, 6.0), T.KIDNEY: (165.0, 15.0), T.ADRENAL: (50.0, 8.0), T.PANCREAS: (90.0, 12.0),
    T.GI_WALL: (70.0, 8.0), T.GI_FLUID: (15.0, 8.0), T.GAS: (-900.0, 40.0), T.ARTERY: (175.0, 6.0),
    T.VEIN: (130.0, 6.0), T.PORTAL: (150.0, 6.0), T.BLADDER: (10.0, 4.0), T.STOOL: (-60.0, 60.0),
    T.RENAL_SINUS: (-60.0, 20.0),
    # Per-structure HU below overrides these means; the texture amplitude still comes from here.
    T.NODE: (40.0, 5.0), T.NODE_HILUM: (-75.0, 5.0), T.COLLAPSED_BOWEL: (35.0, 6.0), T.URETER: (30.0, 4.0),
    T.SMALL_VEIN: (65.0, 4.0),
}

# --- Lymph nodes [LN60] --------------------------------------------------------------------------------
NODE_COUNT_RANGE = (3, 8)                  # nodes per phantom when not given (inclusive)
NODE_VOLUME_MEDIAN_CM3 = 1.3               # [LN60] median
NODE_VOLUME_RANGE_CM3 = (0.3, 4.8)         # [LN60] min, max: the log-normal is truncated (redrawn) to it
# [LN60] 60 nodes span ±2.4 SD of a normal sample; ln(4.8/1.3) ≈ 1.31 and ln(1.3/0.3) ≈ 1.47 give SD ≈ 0.58.
NODE_VOLUME_LOG_SD = 0.6
NODE_HU_RANGE = (20.0, 60.0)               # [HU] per-node mean, drawn uniformly
NODE_ELONGATION = (1.0, 1.5)               # long / short semi-axis of an ordinary node
MIDDLE_AXIS_FRACTION = 0.8                 # the middle semi-axis is drawn in [1, this × long] short semi-axes
ALONG_VESSEL_FRACTION = 0.35               # share of nodes elongated along their vessel (e.g. para-aortic chains)
ALONG_VESSEL_ELONGATION = (1.5, 2.3)       # their long / short semi-axis
LOBULATED_FRACTION = 0.5                   # share of nodes made of several overlapping lobes
LOBE_COUNT_RANGE = (2, 4)                  # lobes of a lobulated node (inclusive, main lobe included)
LOBE_SIZE_RANGE = (0.45, 0.75)             # extra lobe semi-axes as a fraction of the main lobe's
LOBE_OFFSET_RANGE = (0.75, 1.1)            # extra lobe centre offset in main-lobe semi-axes
TOUCH_VESSEL_FRACTION = 0.35               # share of nodes placed against their vessel, with no fat between
HILUM_FRACTION = 0.3                       # share of large-enough nodes with a fatty hilum
HILUM_HU_RANGE = (-100.0, -50.0)           # [HU] hilum mean, drawn per node
HILUM_SIZE_RANGE = (0.3, 0.45)             # hilum semi-axes as a fraction of the main lobe's
HILUM_OFFSET = 0.55                        # hilum centre off the node centre, in short semi-axes: it opens
                                           # to the surface, where fat and vessels enter the node
HILUM_MIN_SHORT_AXIS_MM = 8.0              # smaller nodes show no hilum at CT resolution
HILUM_MIN_SHORT_AXIS_VOXELS = 6.0          # ... nor on coarse grids
NODE_MIN_SHORT_AXIS_MM = 5.0               # below 5 mm a node is not reported; the floor after scaling
NODE_MIN_SHORT_AXIS_VOXELS = 2.5           # a node must be a few voxels wide to be a node on coarse grids
NODE_GAP_MM = 2.0                          # fat kept between a node and organs, other nodes, hard negatives
NODE_NEAR_VESSEL_MM = (0.0, 1.0)           # extra distance beyond the gap, in node short semi-axes

# The body ellipse's half-widths as fractions of the field of view (x, y): the layout's frame.
BODY_HALF_WIDTH_FRACTIONS = (0.45, 0.37)
# Outlines: smooth low-frequency bumps of the radius (relative amplitude) so that organs and the
# body are organic rather than perfect ellipses; smooth, so no facets. Judged by eye against real CT.
ORGAN_OUTLINE_BUMPS = 0.12
BODY_OUTLINE_BUMPS = 0.05
# Small phantoms are scaled-down abdomens: below this smaller body half-width (mm) node and
# hard-negative sizes shrink linearly with the body (then the floors above apply), so the demo's
# 64³ and 96×128×128 grids at 1 mm (half-widths ≈ 24 and 47 mm) get proportionate nodes. From
# 60 mm on, volumes are the real ones; the largest (≈ 20 mm) nodes find room in the fat beside the
# vessels only from ≈ 80 mm on (a 224 mm field of view), and a node that finds no room is left out.
REAL_SIZE_BODY_HALF_WIDTH_MM = 60.0

# --- Hard negatives: node-like tubes seen in cross-section, never labelled LN [HU] --------------------
COLLAPSED_BOWEL_COUNT = (8, 14)            # unopacified, collapsed small-bowel segments beside the vessels
COLLAPSED_BOWEL_RADIUS_MM = (4.0, 7.0)     # collapsed jejunum/ileum ≈ 8–14 mm across
COLLAPSED_BOWEL_LENGTH_MM = (10.0, 30.0)   # the segment between gas/fluid-filled parts
COLLAPSED_BOWEL_HU = (20.0, 50.0)          # [HU] bowel wall and collapsed content without oral contrast
URETER_RADIUS_MM = (2.0, 3.5)              # [HU] ureter ≈ 4–7 mm across, unopacified in portal-venous phase
URETER_HU = (20.0, 40.0)
SMALL_VEIN_COUNT = (4, 8)                  # mesenteric and lumbar branches beside the large vessels
SMALL_VEIN_RADIUS_MM = (1.5, 3.0)          # gonadal and mesenteric veins ≈ 3–6 mm across
SMALL_VEIN_LENGTH_MM = (20.0, 60.0)
SMALL_VEIN_HU = (40.0, 90.0)               # [HU] incompletely mixed / partial-volume opacification
HARD_NEGATIVE_MIN_RADIUS_VOXELS = 1.0      # keep them visible on coarse grids
SMALL_VEIN_TILT = 0.3                      # SD of their direction's deviation from the vessel axis (unit vector)
COLLAPSED_BOWEL_TILT = 0.4
LOOKALIKE_BEND = 0.1                       # mid-point bend of a look-alike, as a fraction of its length
LOOKALIKE_SPREAD_MM = 25.0                 # small veins / bowel segments lie up to this far beyond the gap
HARD_NEGATIVE_TRIES = 300                  # positions tried for each small vein / bowel segment (placement only)

# --- Rendering -----------------------------------------------------------------------------------------
NOISE_SD_HU = 12.0                         # [NPS] quantum noise in soft tissue at routine dose
NPS_PEAK_PER_MM = 0.2                      # [NPS] peak of the in-plane NPS ∝ f·exp(−f²/fc²), fc = √2·peak
SLICE_FWHM_MM = 1.5                        # [MTF] slice sensitivity profile: z correlation of noise, z blur
PSF_FWHM_MM = 1.1                          # [MTF] in-plane point-spread function
TEXTURE_CELL_MM = 6.0                      # smooth per-tissue texture (parenchyma, fat lobules)
NOISE_SLICES_PER_CHUNK = 32                # memory bound of the noise FFT (slices at a time), not a realism value

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def hu_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup arrays tissue code -> mean HU and -> texture amplitude."""
    n = max(TISSUE_HU) + 1
    mean = np.zeros(n, np.float32)
    amp = np.zeros(n, np.float32)
    for code, (m, a) in TISSUE_HU.items():
        mean[code], amp[code] = m, a
    return mean, amp
