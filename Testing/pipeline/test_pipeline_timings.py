"""A resumed pipeline run adds its stage times to the earlier run's instead of hiding them."""

from __future__ import annotations

import json
from pathlib import Path

from LNSynthLib.pipeline import _record_timings


def test_resumed_run_keeps_the_work_of_the_first(tmp_path: Path) -> None:
    path = tmp_path / "timings.json"
    _record_timings(path, {"ln_ddpm": 140.0, "nnunet": 390.0}, {"seed": 0}, "cpu")
    _record_timings(path, {"ln_ddpm": 0.1, "nnunet": 4.4}, {"seed": 0}, "cpu")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["stages_s"] == {"ln_ddpm": 140.1, "nnunet": 394.4}
    assert len(data["runs"]) == 2 and data["runs"][0]["nnunet"] == 390.0
