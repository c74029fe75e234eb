"""A real headless Chromium for the console's browser tests: Debian's `chromium` driven by
selenium through Debian's `chromium-driver` (nothing is downloaded at test time; a missing
binary is an error saying what to install).

Screenshots go to `MAILBOT_TEST_ARTIFACTS` (default `test-artifacts/` at the top of the
checkout), one PNG per page the test names, so a person can look at every page CI drove.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("MAILBOT_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parent.parent / "test-artifacts")


class Browser:
    """One Chromium window on the console at `url`."""

    def __init__(self, driver: webdriver.Chrome, url: str, shots: Path) -> None:
        self.driver = driver
        self.url = url
        self.shots = shots

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.url)

    def fill(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        self.find(css).click()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self._holds(condition):
            if time.monotonic() > deadline:
                self.shot("timeout")
                raise AssertionError(f"timed out waiting for {what} (at {self.path})")
            time.sleep(0.05)

    @staticmethod
    def _holds(condition: Callable[[], bool]) -> bool:
        """The condition, false while the page it reads is being replaced (a submitted form:
        the old page's elements go stale, the new page's are not there yet)."""
        try:
            return condition()
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    def login(self, name: str, password: str) -> None:
        self.open("/login")
        self.fill("#name", name)
        self.fill("#password", password)
        self.click("#login")
        self.wait_for(lambda: not self.path.startswith("/login"), f"{name} logged in")

    def shot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@contextmanager
def chromium(url: str, profile: Path, test_name: str) -> Iterator[Browser]:
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: apt-get install {package} "
                               "(scripts/test installs it when run as root)")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--lang=ja-JP", f"--user-data-dir={profile}", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    driver = None
    for attempt in range(3):  # a loaded machine may miss chromedriver's start-up deadline
        try:
            driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
            break
        except WebDriverException:
            if attempt == 2:
                raise
            shutil.rmtree(profile, ignore_errors=True)
    assert driver is not None
    driver.set_page_load_timeout(60)
    try:
        yield Browser(driver, url, ARTIFACTS / "screenshots" / test_name)
    finally:
        driver.quit()
