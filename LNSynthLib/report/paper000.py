"""Paper 000's own numbers (Tables 1-4), the one home of them, for the tables printed beside ours.

Table 2 lists every method of the paper; the five baselines other than Med-DDPM (Pix2pix, SPADE,
BrainLDM, NASDM, Echo from noise) are out of this project's scope, so their rows carry only the
paper's numbers. Med-DDPM is reproduced as the `med_ddpm` conditioning variant on the shared U-Net.
"""

from __future__ import annotations

from typing import Any

from LNSynthLib.metrics.segmentation import METRIC_NAMES

GENERATION_METRICS = ("MSE", "PSNR", "MS-SSIM", "LPIPS", "NodeRecall_synt")
OUT_OF_SCOPE = ("Pix2pix", "SPADE", "BrainLDM", "NASDM", "Echo from noise")
METHODS = ("Pix2pix", "SPADE", "BrainLDM", "Med-DDPM", "NASDM", "Echo from noise", "LN-DDPM")


def _rows(keys: tuple[str, ...], metrics: tuple[str, ...], table: list[tuple]) -> list[dict[str, Any]]:
    return [{**dict(zip(keys, row[:len(keys)], strict=True)), **dict(zip(metrics, row[len(keys):], strict=True))}
            for row in table]


TABLE1 = _rows(("method",), GENERATION_METRICS, [
    ("Pix2pix", 0.0421, 13.7912, 0.8317, 0.0176, 0.0177),
    ("SPADE", 0.0429, 13.7057, 0.8378, 0.0167, 0.3998),
    ("BrainLDM", 0.1351, 8.7033, 0.4062, 0.0731, 0.0207),
    ("Med-DDPM", 0.0896, 10.4908, 0.4008, 0.0761, 0.0649),
    ("NASDM", 0.1228, 9.1182, 0.3976, 0.0777, 0.4631),
    ("Echo from noise", 0.0452, 13.4908, 0.8140, 0.0168, 0.5005),
    ("LN-DDPM", 0.0488, 13.1356, 0.7539, 0.0289, 0.5258),
])

TABLE2 = _rows(("strategy", "method"), METRIC_NAMES, [
    ("Real", "-", 0.5273, 0.3960, 0.4936, 0.6447, 9.0027, 0.6405),
    ("Synt", "Pix2pix", 0.0898, 0.0582, 0.1097, 0.0952, 23.8107, 0.1710),
    ("Synt", "SPADE", 0.3444, 0.2452, 0.3475, 0.4081, 16.6340, 0.5525),
    ("Synt", "BrainLDM", 0.0700, 0.0398, 0.2482, 0.0466, 15.7442, 0.3029),
    ("Synt", "Med-DDPM", 0.0850, 0.0573, 0.0811, 0.1292, 25.7986, 0.1837),
    ("Synt", "NASDM", 0.4728, 0.3478, 0.5349, 0.5544, 9.4852, 0.6646),
    ("Synt", "Echo from noise", 0.5217, 0.3815, 0.5771, 0.5307, 9.7072, 0.7329),
    ("Synt", "LN-DDPM", 0.5376, 0.3958, 0.5830, 0.5547, 8.8986, 0.7486),
    ("Real + Synt", "Pix2pix", 0.4838, 0.3439, 0.4848, 0.5919, 8.0297, 0.6170),
    ("Real + Synt", "SPADE", 0.5012, 0.3637, 0.5147, 0.5591, 8.7973, 0.6425),
    ("Real + Synt", "BrainLDM", 0.1495, 0.0975, 0.2729, 0.1696, 13.8108, 0.3748),
    ("Real + Synt", "Med-DDPM", 0.5186, 0.3922, 0.5075, 0.5942, 7.8913, 0.6424),
    ("Real + Synt", "NASDM", 0.5323, 0.3955, 0.5336, 0.6396, 7.5384, 0.6824),
    ("Real + Synt", "Echo from noise", 0.5460, 0.4056, 0.5432, 0.6384, 8.2362, 0.6855),
    ("Real + Synt", "LN-DDPM", 0.5655, 0.4200, 0.5591, 0.6451, 7.1851, 0.7054),
])

# Table 3: GSCond w/ LN mask, GSCond w/ AS, LDCond (progressively integrated; all Synt-only)
TABLE3 = _rows(("gscond_ln", "gscond_as", "ldcond"), METRIC_NAMES, [
    (True, False, False, 0.3421, 0.2407, 0.4281, 0.3215, 13.4891, 0.5946),
    (True, True, False, 0.5255, 0.3898, 0.5680, 0.5539, 9.4574, 0.7209),
    (True, True, True, 0.5376, 0.3958, 0.5830, 0.5547, 8.8986, 0.7486),
])

TABLE4A = _rows(("multiple",), METRIC_NAMES, [   # Real + Synt (§5.3.2)
    (5, 0.5583, 0.4150, 0.5655, 0.6456, 7.6136, 0.7167),
    (10, 0.5655, 0.4200, 0.5591, 0.6451, 7.1851, 0.7054),
    (20, 0.5345, 0.3943, 0.5580, 0.5870, 8.3481, 0.7118),
])

TABLE4B = _rows(("transforms",), METRIC_NAMES, [   # Synt; sampling conditions transformed or not
    (False, 0.5227, 0.3807, 0.5722, 0.5379, 9.8697, 0.7468),
    (True, 0.5376, 0.3958, 0.5830, 0.5547, 8.8986, 0.7486),
])

TABLE4C = _rows(("mode",), METRIC_NAMES, [   # Synt; attention mode in the spatial transformer
    ("LD", 0.5376, 0.3958, 0.5830, 0.5547, 8.8986, 0.7486),
    ("LA", 0.5280, 0.3925, 0.5753, 0.5573, 9.0464, 0.7492),
    ("GA", 0.5156, 0.3765, 0.5760, 0.5141, 9.9408, 0.7568),
])
