"""The nnU-Net datasets a pipeline run can train: one row per dataset, its id, name and strategy.

The ids and names are nnU-Net's (`Dataset<id>_<name>` folders of a project); the strategy and the
report's Strategy/Method columns say what the dataset holds. Every caller reads a row by field name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetRow:
    """One nnU-Net dataset the pipeline can train."""

    dataset_id: int
    name: str              # nnU-Net's Dataset<id>_<name>
    strategy_label: str    # the report's Strategy column
    method: str            # the report's Method column
    strategy: str          # a pipeline strategy (`--strategies`)
    paste: bool            # synthetic patches pasted into the real CT (paper 000's variant)


# Real comes first: its model is the segmenter that quality control uses before the synthetic strategies
# are exported.
DATASETS = [
    DatasetRow(101, "Real", "Real", "-", "real", False),
    DatasetRow(105, "RealCopyPaste", "Real + copy-paste", "copy-paste", "real+copypaste", False),
    DatasetRow(102, "RealSynt", "Real + Synt", "LN-DDPM", "real+synt", False),
    DatasetRow(103, "RealSyntPasted", "Real + Synt", "LN-DDPM (pasted)", "real+synt", True),
    DatasetRow(104, "Synt", "Synt", "LN-DDPM", "synt", False),
    DatasetRow(106, "RealInCT", "Real + Synt", "LN-DDPM in-CT", "real+inct", False),
    DatasetRow(107, "SyntThenReal", "Synt → Real", "LN-DDPM pretraining, Real fine-tuning", "synt>real", False),
]
PIPELINE_STRATEGIES = tuple(dict.fromkeys(row.strategy for row in DATASETS))   # real, real+copypaste, real+synt, ...
COPY_PASTE = "real+copypaste"   # real cases + `synt_per_case` copy-paste cases each (augment/copy_paste.py)
IN_CT = "real+inct"   # real cases + `synt_per_case` cases each with LN-DDPM nodes synthesized into the real CT
MIXED = ("real+synt", COPY_PASTE, IN_CT)   # strategies whose datasets mix real and synthetic cases
PRETRAIN_FINETUNE = "synt>real"   # nnU-Net pretrained on the Synt dataset, then fine-tuned on the real cases
