"""`lnsynth prepare --raw-cases DIR --shard i/n`: shards split the cases, each case is complete or absent, reruns skip.

Real NIfTI files: three small phantom cases (CT, LN mask, anatomy map), one folder each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cases import META_FILE, list_cases, load_case
from LNSynthLib.cli.main import EXIT_USER_ERROR, main
from LNSynthLib.jobs.progress import PROGRESS_ENV
from LNSynthLib.volumes.io import write_volume

CASE_IDS = ("patient_a", "patient_b", "patient_c")


@pytest.fixture(scope="module")
def raw_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three unprepared case folders `<case>/{ct,ln,anatomy}.nii.gz` (48×64×64 voxels, 1 mm)."""
    from LNSynthLib.phantom import generate_phantom

    raw = tmp_path_factory.mktemp("raw_cases")
    for seed, case_id in enumerate(CASE_IDS):
        phantom = generate_phantom(seed, (48, 64, 64))
        for name, volume in (("ct", phantom.ct), ("ln", phantom.ln), ("anatomy", phantom.anatomy)):
            write_volume(volume, raw / case_id / f"{name}.nii.gz")
    return raw


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "quiet")


def _prepare(raw: Path, out: Path, *extra: str) -> int:
    return main(["prepare", "--raw-cases", str(raw), "--out", str(out), "--anatomy-source", "file", *extra])


def _arrays(folder: Path) -> list[np.ndarray]:
    case = load_case(folder)
    return [case.ct.array, case.anatomy.array, case.ln.array]


def test_shards_split_the_cases_and_match_one_run(raw_cases: Path, tmp_path: Path) -> None:
    assert _prepare(raw_cases, tmp_path / "one") == 0
    assert _prepare(raw_cases, tmp_path / "sharded", "--shard", "1/2") == 0
    assert [p.name for p in list_cases(tmp_path / "sharded")] == ["patient_b"]   # cases 1, 3, ... of the sorted
    assert _prepare(raw_cases, tmp_path / "sharded", "--shard", "0/2") == 0
    shards, whole = list_cases(tmp_path / "sharded"), list_cases(tmp_path / "one")
    assert [p.name for p in shards] == [p.name for p in whole] == list(CASE_IDS)
    for mine, reference in zip(shards, whole, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(_arrays(mine), _arrays(reference), strict=True))
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir() if p.name.startswith(".")) == []


def test_a_rerun_skips_complete_cases(raw_cases: Path, tmp_path: Path) -> None:
    assert _prepare(raw_cases, tmp_path, "--shard", "0/3") == 0
    stamp = (tmp_path / "patient_a" / META_FILE).stat().st_mtime_ns
    assert _prepare(raw_cases, tmp_path, "--shard", "0/3") == 0
    assert (tmp_path / "patient_a" / META_FILE).stat().st_mtime_ns == stamp
    assert _prepare(raw_cases, tmp_path, "--shard", "0/3", "--overwrite") == 0   # ours: may be replaced
    assert (tmp_path / "patient_a" / META_FILE).stat().st_mtime_ns != stamp


KILLED = textwrap.dedent("""
    import os, sys
    import LNSynthLib.prepare as prepare
    from LNSynthLib.prepare_raw import prepare_raw_folder

    real_save = prepare.save_case
    def save_then_die(case, root, *args, **kwargs):
        real_save(case, root, *args, **kwargs)   # the whole case is written in its temporary folder...
        os._exit(9)                               # ...and the process is killed before it is moved into place
    prepare.save_case = save_then_die
    prepare_raw_folder(sys.argv[1], sys.argv[2], anatomy_source="file", shard=(0, 3))
""")


def test_a_killed_shard_leaves_no_case_and_the_rerun_completes_it(raw_cases: Path, tmp_path: Path) -> None:
    env = {**os.environ, PROGRESS_ENV: "quiet"}
    killed = subprocess.run([sys.executable, "-c", KILLED, str(raw_cases), str(tmp_path)], env=env,
                            capture_output=True, encoding="utf-8", errors="replace", timeout=600)
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert list_cases(tmp_path) == [] and not (tmp_path / "patient_a").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".patient_a")]   # the dead process's leftover
    assert _prepare(raw_cases, tmp_path, "--shard", "0/3") == 0
    assert [p.name for p in list_cases(tmp_path)] == ["patient_a"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".patient_a")] == []


@pytest.mark.parametrize("extra,message", [
    (["--ct", "{raw}/patient_a/ct.nii.gz"], "--ct is for one case"),
    (["--shard", "2/2"], "need 0 <= i < n"),
    (["--shard", "half"], "is not i/n"),
])
def test_folder_mode_refuses_bad_combinations(raw_cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              extra: list[str], message: str) -> None:
    assert _prepare(raw_cases, tmp_path / "out", *(a.format(raw=raw_cases) for a in extra)) == EXIT_USER_ERROR
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_one_case_mode_refuses_a_shard(raw_cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = raw_cases / "patient_a"
    code = main(["prepare", "--ct", str(case / "ct.nii.gz"), "--ln", str(case / "ln.nii.gz"), "--case-id", "c",
                 "--out", str(tmp_path / "o"), "--shard", "0/2"])
    assert code == EXIT_USER_ERROR and "--shard is for --raw-cases" in capsys.readouterr().err
