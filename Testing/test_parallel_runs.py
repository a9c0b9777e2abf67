"""How `make test` splits the suite over pytest-xdist workers (Testing/conftest.py): whole files, and the files
that share the real nnU-Net run together in one unit, so that run is built once."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

TESTING = Path(__file__).resolve().parent
ROOT = TESTING.parent


def _conftest():
    spec = importlib.util.spec_from_file_location("testing_conftest", TESTING / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_files_that_use_the_nnunet_run_share_one_unit_and_other_files_are_their_own() -> None:
    conftest = _conftest()
    takes_it = re.compile(r"def test_\w+\([^)]*\bnnunet_run\b")   # a test with the fixture as an argument
    users = sorted(str(p.relative_to(ROOT)) for p in (TESTING / "segmentation").glob("test_*.py")
                   if takes_it.search(p.read_text(encoding="utf-8")))
    assert len(users) >= 2, users   # several files read the one trained model
    scopes = {conftest.xdist_scope(f"{name}::test_x[a-b]", ROOT) for name in users}
    assert scopes == {"Testing/segmentation:nnunet_run"}
    other = "Testing/cases/test_prepare.py"
    assert conftest.xdist_scope(f"{other}::test_y", ROOT) == other
    assert conftest.xdist_scope(f"{other}::test_z[1]", ROOT) == other


def test_make_test_runs_the_workers_and_pins_xdist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "TEST_WORKERS ?= 2" in makefile and "-m pytest -n $(TEST_WORKERS)" in makefile
    pins = (ROOT / "LNSynthLib" / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("pytest-xdist==") for line in pins)
