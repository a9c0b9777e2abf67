"""Connected components of a binary mask: what "one node" means everywhere (metrics, QC, checks, paste)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# 26-connectivity: touching voxels, even diagonally, belong to one node.
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (26-connectivity) of a binary mask."""
    labels, count = ndimage.label(np.asarray(mask) > 0, structure=CONNECTIVITY)
    return labels, int(count)
