"""Defaults of in-CT synthesis (`inpaint.py`), importable without torch (pipeline settings, front ends)."""

from __future__ import annotations

DEFAULT_MARGIN_MM = 4.0        # generated neighbourhood around each node: its border with the fat around it
WINDOW_BORDER_VOXELS = 3       # real context kept on every side of a window, never generated
INCT_SAMPLERS = ("ddpm", "ddim", "dpmpp")   # samplers with an x0 form (rectified flow has none)
INCT_TAG = "_inct_"            # case folder `<case>_inct_<k>`
SYNTHESIS_MODES = ("patch", "in-ct")   # `lnsynth sample --mode`: paper 000's patches, or nodes in the real CT
