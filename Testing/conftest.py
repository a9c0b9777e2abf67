"""Fixtures shared by all suites: the real example data in ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LNSYNTH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SLOW_TIMEOUT_S = 7200


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow end-to-end runs get two hours instead of the default per-test limit of pyproject.toml."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real example CTs; tests that need it skip with a message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real example data not found at {SHARED_DATA} (set LNSYNTH_SHARED_DATA to its folder)")
    return SHARED_DATA


def _shared_file(folder: Path, relative: str) -> Path:
    path = folder / relative
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def example_ct(shared_data: Path) -> Path:
    return _shared_file(shared_data, "totalseg_example/example_ct.nii.gz")


@pytest.fixture(scope="session")
def example_totalseg(shared_data: Path) -> Path:
    return _shared_file(shared_data, "totalseg_example/example_seg_total.nii.gz")
