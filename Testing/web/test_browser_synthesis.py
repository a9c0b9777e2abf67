"""The web app as a person uses it, in headless Chromium: load a phantom CT, coarse anatomy, paint a
node with the brush on the axial view, synthesize with a tiny LN-DDPM into this CT (in-CT, the default:
the CT comes back side by side with the original, changed only around the node), then as a patch
(paper 000), and see each result in the scene.

Then a long synthesis is cancelled, and a second tab gets its own session (own folder, empty scene)
into which a CT is uploaded. About 2 minutes on a 2-core machine (the session process, anatomy,
prepare and sample are real processes; the tiny checkpoint fixture trains for ~15 s).
Screenshots of every step go to the test's tmp folder (Resources/web_synthesis.png comes from the
real-CT test, test_browser_reading.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cases import LN_FILE, list_cases
from LNSynthLib.volumes.grid import resample_onto
from LNSynthLib.volumes.io import read_volume

from .conftest import browser_paths, require_web_extra, start_server, stop_server
from .page import (
    axial_view,
    by_id,
    choose,
    click,
    open_page,
    scene_rows,
    screenshot,
    text_of,
    type_into,
    wait_for,
    wait_job_done,
)

pytestmark = pytest.mark.browser
require_web_extra()  # skip the module before its fixtures train a checkpoint
browser_paths()
JOB_TIMEOUT_S = 300


@pytest.fixture
def served(tmp_path: Path, phantom_case: Path, tiny_checkpoint: Path):
    """The server with the phantom case and the checkpoint in its --data folders (the page names them by path)."""
    server = start_server(tmp_path / "work", tmp_path / "serve.log", "--data", str(phantom_case.parent),
                          "--data", str(tiny_checkpoint.parent))
    yield server
    stop_server(server.process)


def _painted_voxels(driver) -> int:
    return int(text_of(driver, "painted-voxels").split()[1])


def _paint_stroke(driver) -> None:
    """Press, drag a few pixels and release in the middle of the axial view (the brush follows the mouse)."""
    from selenium.webdriver.common.action_chains import ActionChains

    view = axial_view(driver)
    (ActionChains(driver).move_to_element(view).pause(0.5).click_and_hold().pause(0.3)
     .move_by_offset(2, 0).pause(0.3).move_by_offset(2, 0).pause(0.3).release().perform())


def _synthesize_into_the_ct(browser, session: Path, painted: int) -> Path:
    """In-CT, the page's default mode: the result is the full CT beside the original, changed near the node only."""
    assert "v-btn--active" in by_id(browser, "synthesis-mode-in-ct").get_attribute("class")
    assert by_id(browser, "transforms").get_attribute("disabled") is not None   # a patch-mode option
    click(browser, "synthesize")
    wait_job_done(browser, JOB_TIMEOUT_S)
    wait_for(browser, "the in-CT result", lambda: "in-CT result(s)" in text_of(browser, "status"))
    rows = scene_rows(browser)
    assert any(row.startswith("volume: ct in-CT 0 (64×64×48)") for row in rows), rows
    assert "v-btn--active" in by_id(browser, "view-side").get_attribute("class")
    assert text_of(browser, "result-qc").startswith("In-CT: your CT with the painted node(s) synthesized")
    (run,) = session.glob("synthesis-*")
    assert int(read_volume(run / "input" / LN_FILE).array.sum()) == painted
    (entry,) = json.loads((run / "inct" / "results.json").read_text())["results"]
    assert entry["changed_voxels"] > 0 and f"{entry['changed_voxels']} voxels changed" in text_of(browser, "status") \
        + text_of(browser, "result-qc")
    return run


def test_paint_a_node_and_synthesize_in_the_browser(served, browser, phantom_case: Path, tiny_checkpoint: Path,
                                                    tmp_path: Path):
    shots, times = tmp_path / "screenshots", {}
    shots.mkdir()
    start = time.monotonic()

    def step(name: str) -> None:
        times[name] = round(time.monotonic() - start, 1)
        screenshot(browser, shots, f"{len(times):02d}_{name}")

    open_page(browser, served.url)
    wait_for(browser, "the page", lambda: "Files this page can read" in text_of(browser, "status"))
    step("open")

    type_into(browser, "ct-path", str(phantom_case / "ct.nii.gz"))
    click(browser, "load-ct")
    wait_for(browser, "the CT", lambda: text_of(browser, "status") == "Loaded ct")
    assert any(row.startswith("volume: ct (64×64×48)") for row in scene_rows(browser)), scene_rows(browser)
    step("loaded")

    choose(browser, "anatomy-method", "coarse")
    click(browser, "create-anatomy")
    wait_job_done(browser, JOB_TIMEOUT_S)
    wait_for(browser, "the anatomy", lambda: text_of(browser, "status").startswith("Anatomy ready"))
    step("anatomy")

    click(browser, "paint")
    wait_for(browser, "the brush", lambda: text_of(browser, "status").startswith("Paint"))
    _paint_stroke(browser)
    click(browser, "brush-off")
    painted = wait_for(browser, "painted voxels", lambda: _painted_voxels(browser))
    assert painted > 50, painted  # an 8 mm sphere brush on 1 mm voxels: a few hundred voxels
    step("painted")

    type_into(browser, "checkpoint", str(tiny_checkpoint))
    type_into(browser, "steps", "3")
    type_into(browser, "n-samples", "1")
    first_session = served.session_folder()
    inct_run = _synthesize_into_the_ct(browser, first_session, painted)
    step("synthesized_in_ct")

    click(browser, "synthesis-mode-patch")
    by_id(browser, "transforms").click()  # off: the synthetic node is the painted one
    click(browser, "synthesize")
    wait_for(browser, "the progress bar", lambda: by_id(browser, "job-progress").is_displayed())
    wait_for(browser, "the patch samples", lambda: "synthetic sample(s) in the full CT, side by side with the "
             "original" in text_of(browser, "status") or text_of(browser, "job-text") in ("Failed", "Cancelled"),
             JOB_TIMEOUT_S)
    wait_job_done(browser, JOB_TIMEOUT_S)
    step("synthesized")

    rows = scene_rows(browser)
    assert any(row.startswith("volume: ct synthetic 0 (16×16×16)") for row in rows), rows
    assert "segmentation: ct synthetic 0 segmentation (lymph node)" in rows, rows
    assert any(row.startswith("volume: ct + synthetic 0 (64×64×48)") for row in rows), rows

    # The painted node (exported from the scene by the synthesis chain) against the result's LN segment.
    (run,) = set(first_session.glob("synthesis-*")) - {inct_run}
    painted_mask = read_volume(run / "input" / LN_FILE)
    assert int(painted_mask.array.sum()) == painted
    (case,) = list_cases(run / "synthetic")
    result_ln = read_volume(case / LN_FILE)
    on_patch = resample_onto(painted_mask, result_ln, "nearest").array > 0
    result = result_ln.array > 0
    dice = 2 * (on_patch & result).sum() / (on_patch.sum() + result.sum())
    assert result.sum() > 0 and dice > 0.8, dice
    assert np.array_equal(result_ln.array.shape, (16, 16, 16))

    # Cancel: a long synthesis stops, says so, and leaves no run folder behind.
    type_into(browser, "n-samples", "200")
    click(browser, "synthesize")
    wait_for(browser, "the Cancel button", lambda: by_id(browser, "job-cancel").is_displayed())
    wait_for(browser, "the sampling step", lambda: "Sampling" in text_of(browser, "job-text"), JOB_TIMEOUT_S)
    click(browser, "job-cancel")
    wait_for(browser, "the cancel", lambda: text_of(browser, "job-text") == "Cancelled")
    step("cancelled")
    assert set(first_session.glob("synthesis-*")) == {inct_run, run}

    # Another tab is another session: its own work folder and an empty scene.
    browser.switch_to.new_window("tab")
    open_page(browser, served.url)
    wait_for(browser, "the second page", lambda: "Files this page can read" in text_of(browser, "status"))
    second_status = text_of(browser, "status")
    assert str(first_session) not in second_status and scene_rows(browser) == [], (second_status, scene_rows(browser))
    assert len(list(served.work.glob("session-*"))) == 2
    # ... where a CT can be uploaded from the browser's machine instead of named on the server.
    by_id(browser, "upload-ct").send_keys(str(phantom_case / "ct.nii.gz"))
    wait_for(browser, "the uploaded CT", lambda: text_of(browser, "status") == "Loaded ct")
    assert any(row.startswith("volume: ct (64×64×48)") for row in scene_rows(browser)), scene_rows(browser)
    step("second_tab_upload")
    times["total"] = round(time.monotonic() - start, 1)
    (tmp_path / "timings.json").write_text(json.dumps({**times, "dice": float(dice)}, indent=1))
    print(f"browser test steps (s since page open): {times}; Dice {dice:.3f}; screenshots in {shots}")
