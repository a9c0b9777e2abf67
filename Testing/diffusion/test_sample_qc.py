"""`lnsynth sample --qc` end to end: a real (barely trained) checkpoint, real sampling, qc.json next to the samples."""

from __future__ import annotations

import json
from pathlib import Path

from LNSynthLib.cli.main import main
from LNSynthLib.qc import QC_FILE


def test_sample_with_qc_scores_every_sample(straight_run: Path, phantom_cases: Path, tmp_path: Path, capsys,
                                            one_thread) -> None:  # noqa: ANN001
    out = tmp_path / "synthetic"
    code = main(["sample", "--checkpoint", str(straight_run), "--cases", str(phantom_cases), "--out", str(out),
                 "--samples-per-case", "1", "--steps", "2", "--device", "cpu", "--qc"])
    assert code == 0, capsys.readouterr().err
    qc = json.loads((out / QC_FILE).read_text(encoding="utf-8"))
    assert sorted(qc["samples"]) == sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert qc["n_samples"] == 3 and qc["real_model"] is None
    # A 4-step model paints noise, not nodes: quality control rejects its samples and says why.
    assert qc["n_rejected"] == 3
    for verdict in qc["samples"].values():
        assert verdict["reasons"] and verdict["scores"]["node_mean_hu"] is not None
    assert "QC: 3 of 3 synthetic samples rejected" in capsys.readouterr().out
