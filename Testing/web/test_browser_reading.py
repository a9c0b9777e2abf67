"""Every button of the page on a real CT (../shared/data/totalseg_example), in headless Chromium.

Load by path, window presets and the views' labels, coarse anatomy then a TotalSegmentator file (one
anatomy layer, legend, hide and opacity), paint / erase / undo / redo with the HU check, add the case,
train LN-DDPM for two iterations, synthesize two results into the CT (in-CT, the default) and read them
side by side (linked) with the original, then two patch samples in the full CT side by side and faded,
browse and download them, export nnU-Net, train nnU-Net with the page's short run (1 epoch of 2
iterations on 64³ patches) on the one painted CT, cancel a job, upload a new CT (the old layers go) and
apply the model to it. About 30 minutes on a loaded 2-core machine (nnU-Net: 7 min training, 16 min
predicting); each step's time since the page opened goes to timings.json. With LNSYNTH_UPDATE_SCREENSHOTS=1 the side-by-side view replaces
Resources/web_synthesis.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from LNSynthLib.cases import CT_FILE, LN_FILE
from LNSynthLib.volumes.io import read_volume

from .conftest import REPO, browser_paths, require_web_extra, start_server, stop_server
from .page import (
    axial_view,
    by_id,
    choose,
    click,
    open_page,
    screenshot,
    text_of,
    type_into,
    wait_for,
    wait_job_done,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow,   # nnU-Net on a real CT: on demand (make test-all)
              pytest.mark.timeout(3600)]
require_web_extra()
browser_paths()
DATA = Path(os.environ.get("LNSYNTH_SHARED_DATA", REPO.parent / "shared" / "data")) / "totalseg_example"
if not (DATA / "example_ct.nii.gz").is_file():
    pytest.skip(f"the real example CT is not in {DATA}", allow_module_level=True)
JOB_TIMEOUT_S = 900


@pytest.fixture
def served(tmp_path: Path):
    server = start_server(tmp_path / "work", tmp_path / "serve.log", "--data", str(DATA))
    yield server
    stop_server(server.process)


def _run_job(driver, button: str) -> str:
    """Click a job's button and wait for that job (not the previous one's "Done") to finish."""
    click(driver, button)
    wait_for(driver, f"the job of {button} to start", lambda: text_of(driver, "job-text") != "Done"
             or by_id(driver, "job-cancel").is_displayed(), 30)
    return wait_job_done(driver, JOB_TIMEOUT_S)


def _voxels(driver) -> int:
    return int(text_of(driver, "painted-voxels").split()[1])


def _view_image(driver, index: int = 0) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "img.image-display-area")[index].get_attribute("src")


def _changes(driver, what: str, before: str, index: int = 0) -> str:
    return wait_for(driver, what, lambda: (src := _view_image(driver, index)) != before and src)


def _stroke(driver, dx: int = 0) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    (ActionChains(driver).move_to_element_with_offset(axial_view(driver), dx, 0).pause(0.5).click_and_hold()
     .pause(0.3).move_by_offset(3, 0).pause(0.3).move_by_offset(3, 0).pause(0.3).release().perform())


def _slice_number(driver, tag: str) -> int:
    return int(text_of(driver, f"view-label-{tag}").split("slice ")[1].split("/")[0])


def _scene_rows(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("textContent").strip() for e in driver.find_elements(By.CSS_SELECTOR, ".scene-row")]


def _layers(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("data-name") for e in driver.find_elements(By.CSS_SELECTOR, "#layers .layer")]


def test_every_button_on_a_real_ct(served, browser, tmp_path: Path):
    from selenium.webdriver.common.action_chains import ActionChains, ScrollOrigin
    from selenium.webdriver.common.by import By

    shots, downloads, times = tmp_path / "screenshots", tmp_path / "downloads", {}
    shots.mkdir()
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    start = time.monotonic()

    def step(name: str) -> None:
        times[name] = round(time.monotonic() - start, 1)
        screenshot(browser, shots, f"{len(times):02d}_{name}")

    open_page(browser, served.url)
    wait_for(browser, "the page", lambda: "Files this page can read" in text_of(browser, "status"))
    step("open")

    # 1. Load; the views say what they show; window presets.
    type_into(browser, "ct-path", "example_ct.nii.gz")
    click(browser, "load-ct")
    wait_for(browser, "the CT", lambda: text_of(browser, "status") == "Loaded example_ct")
    label = wait_for(browser, "the axial label", lambda: text_of(browser, "view-label-Red"))
    assert label.startswith("Axial · slice ") and "/112 · " in label, label
    assert text_of(browser, "view-label-Green").startswith("Coronal · slice ")
    assert [text_of(browser, f"view-edge-Red-{e}") for e in ("left", "right", "top", "bottom")] == list("RLAP")
    assert [text_of(browser, f"view-edge-Green-{e}") for e in ("left", "right", "top", "bottom")] == list("RLSI")
    assert by_id(browser, "window-preset").get_attribute("value") == "Abdomen"
    step("loaded")
    abdomen = _view_image(browser)
    choose(browser, "window-preset", "Bone")
    _changes(browser, "the bone window", abdomen)
    choose(browser, "window-preset", "Lung")
    choose(browser, "window-preset", "Abdomen")
    view = axial_view(browser)
    first_slice = _slice_number(browser, "Red")
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(view), 0, 300).perform()
    wait_for(browser, "the slice number to follow the wheel", lambda: _slice_number(browser, "Red") != first_slice)
    step("windowed")

    # 2. Anatomy: coarse, then a TotalSegmentator file replaces it (one anatomy layer, with its legend).
    choose(browser, "anatomy-method", "coarse")
    _run_job(browser, "create-anatomy")
    wait_for(browser, "the anatomy", lambda: text_of(browser, "status").startswith("Anatomy ready"))
    assert _layers(browser) == ["example_ct anatomy"], _layers(browser)
    type_into(browser, "totalseg-file", "example_seg_total.nii.gz")
    click(browser, "group-totalseg")
    wait_for(browser, "the grouped anatomy", lambda: text_of(browser, "status").startswith("Anatomy ready"))
    assert len(_layers(browser)) == 1, _layers(browser)
    legend = [e.get_attribute("textContent").strip()
              for e in browser.find_elements(By.CSS_SELECTOR, "#layers .legend-item")]
    assert "liver" not in legend or len(legend) < 15
    assert {"bone", "body"} & set(legend), legend
    step("anatomy")
    shown = _view_image(browser)
    browser.find_element(By.CSS_SELECTOR, "#layers .layer-visible input").click()
    _changes(browser, "the anatomy hidden", shown)
    hidden = _view_image(browser)
    browser.find_element(By.CSS_SELECTOR, "#layers .layer-visible input").click()
    _changes(browser, "the anatomy shown again", hidden)
    opaque = _view_image(browser)
    slider = browser.find_element(By.CSS_SELECTOR, "#layers .layer-opacity .v-slider-track")
    ActionChains(browser).move_to_element_with_offset(slider, -slider.size["width"] // 2 + 3, 0).click().perform()
    _changes(browser, "a fainter anatomy", opaque)
    step("layers")

    # 3. Paint, erase, undo, redo; the painted region's HU against the lymph-node range.
    click(browser, "paint")
    wait_for(browser, "the brush", lambda: text_of(browser, "status").startswith("Paint"))
    _stroke(browser)
    painted = wait_for(browser, "painted voxels", lambda: _voxels(browser))
    mean_hu = float(text_of(browser, "painted-hu").split(": ")[1].split()[0])
    warning = text_of(browser, "paint-warning") if by_id(browser, "paint-warning").is_displayed() else ""
    assert bool(warning) == (not 20 <= mean_hu <= 60), (mean_hu, warning)
    if warning:
        assert "lymph nodes are 20-60 HU" in warning
    click(browser, "undo")
    wait_for(browser, "the stroke undone", lambda: _voxels(browser) == 0)
    click(browser, "redo")
    wait_for(browser, "the stroke redone", lambda: _voxels(browser) == painted)
    click(browser, "erase")
    _stroke(browser, 3)
    erased = wait_for(browser, "an erasure", lambda: (n := _voxels(browser)) < painted and n + 1)
    click(browser, "undo")
    wait_for(browser, "the erasure undone", lambda: _voxels(browser) == painted)
    click(browser, "brush-off")
    step("painted")
    times["painted_voxels"], times["painted_mean_hu"], times["erased_to"] = painted, mean_hu, erased - 1

    # 4. LN-DDPM: the case, two training iterations (the checkpoint fills Synthesis), a cancelled run.
    _run_job(browser, "add-case")
    wait_for(browser, "the case", lambda: text_of(browser, "status").startswith("Training case added"))
    type_into(browser, "ddpm-iterations", "2")
    _run_job(browser, "train-ddpm")
    checkpoint = wait_for(browser, "the checkpoint", lambda: by_id(browser, "checkpoint").get_attribute("value"))
    assert checkpoint.endswith(".pt")
    step("trained_ddpm")

    # 5. Synthesis into this CT (the default): the full CT with the painted node synthesized, side by side
    # (linked) with the original, centred on the node; two results, loaded one at a time.
    type_into(browser, "steps", "3")
    type_into(browser, "n-samples", "2")
    _run_job(browser, "synthesize")
    wait_for(browser, "the in-CT result", lambda: "in-CT result(s)" in text_of(browser, "status"))
    wait_for(browser, "the result views", lambda: "example_ct_inct_0" in text_of(browser, "view-label-ResultAxial"))
    result_label = text_of(browser, "view-label-ResultAxial")
    assert "/112 · " in result_label and text_of(browser, "view-label-Red").endswith("original")   # the full CT
    assert _slice_number(browser, "Red") == _slice_number(browser, "ResultAxial")
    before = _slice_number(browser, "Red")
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(axial_view(browser)), 0, 300).perform()
    wait_for(browser, "both views to follow the wheel", lambda: _slice_number(browser, "Red") != before
             and _slice_number(browser, "Red") == _slice_number(browser, "ResultAxial"))
    assert text_of(browser, "result-qc").startswith("In-CT: your CT with the painted node(s) synthesized")
    step("side_by_side")
    if os.environ.get("LNSYNTH_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shots / f"{len(times):02d}_side_by_side.png", REPO / "Resources" / "web_synthesis.png")
    click(browser, "result-next")
    wait_for(browser, "the second in-CT result", lambda: "example_ct_inct_1" in
             text_of(browser, "view-label-ResultAxial"))
    assert sum(row.startswith("volume: example_ct in-CT") for row in _scene_rows(browser)) == 1   # one at a time

    # ... and as patches (paper 000) pasted into the CT: browse, QC marks, download, fade.
    click(browser, "synthesis-mode-patch")
    _run_job(browser, "synthesize")
    wait_for(browser, "the patch samples", lambda: "synthetic sample(s) in the full CT" in text_of(browser, "status"))
    wait_for(browser, "the result views", lambda: "example_ct_synt_0" in text_of(browser, "view-label-ResultAxial"))
    assert "/112 · " in text_of(browser, "view-label-ResultAxial")
    step("patch_side_by_side")
    qc_texts = [text_of(browser, "result-qc")]
    click(browser, "result-next")
    wait_for(browser, "the second sample", lambda: "example_ct_synt_1" in text_of(browser, "view-label-ResultAxial"))
    qc_texts.append(text_of(browser, "result-qc"))
    qc = json.loads(next(served.session_folder().glob("synthesis-*/synthetic/qc.json")).read_text())["samples"]
    for name, text in zip(("example_ct_synt_0", "example_ct_synt_1"), qc_texts, strict=True):
        assert text.startswith("Rejected by quality control") == (not qc[name]["passed"]), (name, text)
    click(browser, "download-result")
    archive = wait_for(browser, "the download", lambda: next(downloads.glob("example_ct_synt_1.zip"), None), 60)
    time.sleep(1)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path / "unzipped")
    ct = read_volume(tmp_path / "unzipped" / "example_ct_synt_1" / CT_FILE)
    ln = read_volume(tmp_path / "unzipped" / "example_ct_synt_1" / LN_FILE)
    assert ct.shape == (112, 101, 122) and ln.shape == ct.shape and ln.array.any()
    click(browser, "result-prev")
    wait_for(browser, "the first sample", lambda: "example_ct_synt_0" in text_of(browser, "view-label-ResultAxial"))
    click(browser, "view-fade")
    wait_for(browser, "the fade", lambda: "fade 50%" in text_of(browser, "view-label-Red"))
    faded = _view_image(browser)
    fade = by_id(browser, "fade").find_element(By.XPATH, "ancestor::div[contains(@class, 'v-slider')]")
    track = fade.find_element(By.CSS_SELECTOR, ".v-slider-track")
    ActionChains(browser).move_to_element_with_offset(track, track.size["width"] // 2 - 2, 0).click().perform()
    wait_for(browser, "the fade to the result", lambda: "fade 100%" in text_of(browser, "view-label-Red")
             or "fade 95%" in text_of(browser, "view-label-Red"))
    _changes(browser, "the faded image", faded)
    step("fade")
    click(browser, "view-ct")
    wait_for(browser, "the CT alone", lambda: text_of(browser, "view-label-Red").endswith("mm"))

    # 6. nnU-Net: the panel's short run by default; quality control's refusal names the checkbox.
    assert by_id(browser, "nnunet-epochs").get_attribute("value") == "5"
    assert by_id(browser, "nnunet-iterations").get_attribute("value") == "30"
    # The in-CT results (no quality-control verdict) go into the dataset whatever the patch samples' verdicts.
    _run_job(browser, "nnunet-export")
    wait_for(browser, "the dataset", lambda: text_of(browser, "status").startswith("nnU-Net dataset"))
    exported = json.loads(next(served.session_folder().glob("nnunet/**/dataset.json")).read_text())
    assert exported["numTraining"] >= 2, exported   # the real case and synthetic ones
    type_into(browser, "nnunet-epochs", "1")
    type_into(browser, "nnunet-iterations", "2")
    # The planned 128³ patch trained for an hour on a CPU; 64³ (multiples of the plan's 32) trains in minutes.
    type_into(browser, "nnunet-patch", "64 64 64")
    step("exported")
    _run_job(browser, "nnunet-train")
    model = wait_for(browser, "the model", lambda: by_id(browser, "nnunet-model").get_attribute("value"))
    assert list(Path(model).glob("fold_all/checkpoint_final.pth")), model   # one painted CT: fold `all`
    step("trained_nnunet")

    # Cancel, 3D, and a new CT by upload: the old CT's layers leave the list.
    type_into(browser, "ddpm-iterations", "100000")
    click(browser, "train-ddpm")
    wait_for(browser, "the Cancel button", lambda: by_id(browser, "job-cancel").is_displayed())
    click(browser, "job-cancel")
    wait_for(browser, "the cancel", lambda: text_of(browser, "job-text") == "Cancelled", 60)
    by_id(browser, "volume-rendering").click()
    time.sleep(1)
    by_id(browser, "upload-ct").send_keys(str(DATA / "example_ct_sm.nii.gz"))
    wait_for(browser, "the uploaded CT", lambda: text_of(browser, "status") == "Loaded example_ct_sm")
    wait_for(browser, "no layers of the old CT", lambda: _layers(browser) == [])
    step("new_ct")
    # The model applied to that CT (30 of the first CT's 112 slices: nnU-Net predicts at 1 mm with half-overlapping
    # windows, over 300 of them for the whole first CT on a CPU).
    click(browser, "nnunet-predict")
    wait_for(browser, "the prediction to start", lambda: text_of(browser, "job-text") != "Cancelled", 30)
    wait_job_done(browser, 2 * JOB_TIMEOUT_S)
    wait_for(browser, "the prediction", lambda: text_of(browser, "status").startswith("Prediction"))
    assert any("example_ct_sm nnU-Net lymph nodes" in name for name in _layers(browser)), _layers(browser)
    step("predicted")
    times["total"] = round(time.monotonic() - start, 1)
    (tmp_path / "timings.json").write_text(json.dumps(times, indent=1))
    print(f"page timings (s since page open): {times}; screenshots in {shots}")
