"""Notebook 08's listening room, as a reader uses it: JupyterLab on 127.0.0.1, headless
Chromium (Debian's `chromium` and `chromium-driver`, driven by Selenium), Run All, then move the
SNR slider and switch the student. Exactly one figure and four players must be in the output,
with the new selection in the figure's title and in the conclusion.

Skipped, with the install command, where Chromium is not installed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from sekd.data.corpus import REPO_ROOT

INSTALL = "apt-get install chromium chromium-driver"
BROWSER, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (BROWSER and DRIVER), reason=f"needs Chromium and its driver: {INSTALL}"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of notebook 08; yields its URL."""
    shutil.copy(REPO_ROOT / "notebooks" / "08_listening_room.ipynb", tmp_path / "room.ipynb")
    port, token = _free_port(), "sekd-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield f"{base}/lab/tree/room.ipynb?token={token}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _room(driver):
    """The room's figures (images titled with the selection) and players in the notebook."""
    from selenium.webdriver.common.by import By

    images = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea img[alt*='teacher and']")
    players = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea audio")
    return images, players


def _wait_for_title(driver, text: str, seconds: float = 120):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # an output replaced while it is read is read again
    wait = WebDriverWait(driver, seconds, 0.5, ignored_exceptions=[StaleElementReferenceException])
    wait.until(lambda d: any(text in (img.get_attribute("alt") or "") for img in _room(d)[0]))


def test_listening_room_renders_each_selection_once_in_a_real_browser(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 120, poll_frequency=0.5)
    browser.get(lab)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"))
    wait.until(lambda d: d.find_elements(By.XPATH, "//*[contains(text(), 'Idle')]"))  # kernel up
    run_menu = wait.until(
        lambda d: next(
            (
                m
                for m in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                if m.text.strip() == "Run"
            ),
            None,
        )  # fmt: skip
    )
    run_menu.click()
    wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, "li[data-command='runmenu:run-all']")
    ).click()
    _wait_for_title(browser, "at 5 dB: teacher and student_mvat_dual_kd")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle"))

    handle = browser.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)  # one step of 2.5 dB
    _wait_for_title(browser, "at 7.5 dB: teacher and student_mvat_dual_kd")
    student = Select(browser.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")[-1])
    student.select_by_visible_text("student_baseline")
    _wait_for_title(browser, "at 7.5 dB: teacher and student_baseline")

    images, players = _room(browser)
    assert len(images) == 1, [i.get_attribute("alt") for i in images]
    assert len(players) == 4
    conclusion = browser.find_elements(By.XPATH, "//*[contains(text(), 'On this selection')]")
    assert conclusion and "student_baseline" in conclusion[-1].text
    # the four players fit the output's row: none is wider than a quarter of it
    row = images[0].find_element(By.XPATH, "./..")
    assert all(p.size["width"] <= row.size["width"] / 4 + 1 for p in players)
