"""Standard terminology (SNOMED CT, DICOM master list) of the segments the module creates.

Codes are those of Slicer's `SegmentationCategoryTypeModifier-DICOM-Master.json`, so the Segment
Editor matches each segment to its terminology entry and recommended colour. Each of the 14
anatomy groups takes the code of its main structure (the grouping itself is
`LNSynthLib/anatomy/label_groups.json`).
"""

from __future__ import annotations

CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMICAL_STRUCTURE = ("SCT", "123037004", "Anatomical Structure")
TISSUE = ("SCT", "85756007", "Tissue")
BODY_SUBSTANCE = ("SCT", "91720002", "Body Substance")

# segment name -> (category, type)
CODES: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "lymph node": (ANATOMICAL_STRUCTURE, ("SCT", "59441001", "Lymph node")),
    "air": (BODY_SUBSTANCE, ("SCT", "74947009", "Gas")),
    "body": (TISSUE, ("SCT", "85756007", "Tissue")),
    "liver": (ANATOMICAL_STRUCTURE, ("SCT", "10200004", "Liver")),
    "spleen": (ANATOMICAL_STRUCTURE, ("SCT", "78961009", "Spleen")),
    "kidneys_adrenals": (ANATOMICAL_STRUCTURE, ("SCT", "64033007", "Kidney")),
    "pancreas": (ANATOMICAL_STRUCTURE, ("SCT", "15776009", "Pancreas")),
    "stomach_duodenum": (ANATOMICAL_STRUCTURE, ("SCT", "69695003", "Stomach")),
    "small_bowel": (ANATOMICAL_STRUCTURE, ("SCT", "30315005", "Small Intestine")),
    "colon": (ANATOMICAL_STRUCTURE, ("SCT", "71854001", "Colon")),
    "arteries": (ANATOMICAL_STRUCTURE, ("SCT", "51114001", "Artery")),
    "veins": (ANATOMICAL_STRUCTURE, ("SCT", "29092000", "Vein")),
    "bones": (TISSUE, ("SCT", "272673000", "Bone")),
    "muscles": (TISSUE, ("SCT", "71616004", "Muscle")),
    "other_organs": (TISSUE, ("SCT", "113343008", "Organ")),
}


def entry(segment_name: str) -> str:
    """Slicer's serialized terminology entry: context~category~type~modifier~region context~region~region modifier."""
    category, type_ = CODES[segment_name]
    return f"{CONTEXT}~{'^'.join(category)}~{'^'.join(type_)}~^^~~^^~^^"


LYMPH_NODE = entry("lymph node")
