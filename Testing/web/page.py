"""Small helpers to use the page the way a person does (ids from LNSynthScene/web/ui.py)."""

from __future__ import annotations

import time
from pathlib import Path

WAIT_S = 60


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def text_of(driver, element_id: str) -> str:
    return by_id(driver, element_id).get_attribute("textContent").strip()


def wait_for(driver, what: str, check, timeout_s: float = WAIT_S, interval_s: float = 0.25):
    """Poll `check()` until it returns something truthy; fail with the page's status and error."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # the element may not exist yet
            value = None
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}; status: {text_of(driver, 'status')!r}; "
                         f"error: {text_of(driver, 'error')!r}; job: {text_of(driver, 'job-text')!r}\n"
                         f"log: {text_of(driver, 'job-log')[-2000:]}")


def open_page(driver, url: str) -> None:
    """Open the server's start page and press its button: a new session, whose page then opens."""
    driver.get(url)
    click(driver, "new-session")
    wait_for(driver, "the session page", lambda: "/s/" in driver.current_url and by_id(driver, "status"))


def type_into(driver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    field = by_id(driver, element_id)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(text)
    field.send_keys(Keys.TAB)  # commits the value to the server before the next click
    wait_for(driver, f"{element_id} = {text!r}", lambda: by_id(driver, element_id).get_attribute("value") == text)
    time.sleep(0.5)


def choose(driver, element_id: str, item: str) -> None:
    """Open a select and click one of its items."""
    from selenium.webdriver.common.by import By

    field = by_id(driver, element_id).find_element(By.XPATH, "ancestor::div[contains(@class, 'v-field')]")
    field.click()
    option = wait_for(driver, f"option {item!r}", lambda: next(
        (e for e in driver.find_elements(By.CSS_SELECTOR, ".v-overlay .v-list-item")
         if e.text.strip() == item and e.is_displayed()), None))
    option.click()
    time.sleep(0.5)


def click(driver, element_id: str) -> None:
    wait_for(driver, f"{element_id} enabled", lambda: by_id(driver, element_id).is_enabled())
    by_id(driver, element_id).click()


def wait_job_done(driver, timeout_s: float) -> str:
    """Wait until the job panel says Done (fails on Failed/Cancelled with the log tail)."""
    def finished() -> str | None:
        text = text_of(driver, "job-text")
        if text in ("Failed", "Cancelled"):
            raise_failure(driver, text)
        return text if text == "Done" else None

    return wait_for(driver, "the job to finish", finished, timeout_s)


def raise_failure(driver, text: str) -> None:
    raise AssertionError(f"job {text}: {text_of(driver, 'error')}\n{text_of(driver, 'job-log')[-3000:]}")


def axial_view(driver):
    """The axial view's image (the first remote-rendered view of the layout)."""
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "img.image-display-area")[0]


def scene_rows(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("textContent").strip() for e in driver.find_elements(By.CSS_SELECTOR, ".scene-row")]


def screenshot(driver, folder: Path, name: str) -> Path:
    """The page with the side panel scrolled to its top (status, progress and log in sight)."""
    driver.execute_script("document.getElementById('status').scrollIntoView({block: 'start'})")
    time.sleep(0.5)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
