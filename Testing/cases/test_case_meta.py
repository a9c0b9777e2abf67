"""`cases.read_meta` is the one reader of case.json; `is_synthetic` asks it, not the folder name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LNSynthLib.cases import META_FILE, is_synthetic, read_meta
from LNSynthLib.errors import InputDataError


def test_read_meta_and_is_synthetic(tmp_path: Path) -> None:
    real, synt, named = tmp_path / "case_a", tmp_path / "case_a_0", tmp_path / "case_b_synt_0"
    for folder, meta in ((real, {"synthetic": False}), (synt, {"synthetic": True, "source_case": "case_a"}),
                         (named, {"case_id": "case_b_synt_0"})):
        folder.mkdir()
        (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    assert read_meta(synt)["source_case"] == "case_a"
    assert is_synthetic(synt) and not is_synthetic(real)
    assert not is_synthetic(named)        # a real case whose name happens to hold the tag


@pytest.mark.parametrize("text,problem", [(None, "no case.json"), ("{broken", "not valid JSON"),
                                          ("[1, 2]", "not hold a JSON object")])
def test_damaged_case_json_names_the_file(tmp_path: Path, text: str | None, problem: str) -> None:
    if text is not None:
        (tmp_path / META_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(InputDataError, match=problem) as info:
        read_meta(tmp_path)
    assert info.value.path == tmp_path / META_FILE and info.value.fix
