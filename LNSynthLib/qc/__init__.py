"""Quality control of synthetic pairs: score each against the real training cases, record why it fails.

`score_synthetic` writes `<synthetic_root>/qc.json` (`qc/score.py`); `nnunet export` leaves the
rejected samples out while QC is on (`qc/verdicts.rejected_cases`).
"""

from LNSynthLib.qc.score import QCReport, score_synthetic
from LNSynthLib.qc.thresholds import QCThresholds
from LNSynthLib.qc.verdicts import QC_FILE, rejected_cases

__all__ = ["QC_FILE", "QCReport", "QCThresholds", "rejected_cases", "score_synthetic"]
