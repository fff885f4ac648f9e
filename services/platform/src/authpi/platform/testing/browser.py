"""A headless Chromium for end-to-end tests: Debian's `chromium` and `chromium-driver` packages
(installed with apt-get when missing), driven through selenium. Screenshots go to
`tests/artifacts/` (not committed): the ones a test asks for, and one of every failed test."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
WINDOW = (1280, 900)
_FAILED = pytest.StashKey[bool]()
T = TypeVar("T")


def ensure_chromium() -> None:
    """Install Debian's Chromium and its driver unless both are there: `apt-get install`, and
    once more after `apt-get update` when the package lists were stale."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if _apt(["install", "-y", *PACKAGES]) != 0:
        _apt(["update"])
        _apt(["install", "-y", *PACKAGES])
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise RuntimeError(
            f"{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install {' '.join(PACKAGES)}"
        )


def _apt(args: list[str]) -> int:
    command = ["apt-get", "-q", *args]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return 1
        command = ["sudo", "-n", *command]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    return done.returncode


def chrome(profile: Path) -> webdriver.Chrome:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-sandbox",
        "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run", "--no-proxy-server",
        "--disable-extensions", "--disable-background-networking", "--lang=en-US",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_window_size(*WINDOW)
    driver.set_page_load_timeout(30)
    return driver


class Browser:
    """The WebDriver (`driver`) and the test's screenshots. The in-process platform serves on the
    test's own event loop, and every WebDriver call blocks until the page answers: an async test
    drives the browser through `run` (or `get`/`screenshot`), which call it from a thread, e.g.
    `await browser.get(url)`, then `title = await browser.run(lambda d: d.title)`."""

    def __init__(self, driver: webdriver.Chrome, artifacts: Path, test_name: str) -> None:
        self.driver = driver
        self.artifacts = artifacts
        self.test_name = test_name
        self._shots = 0

    async def run(self, steps: Callable[[webdriver.Chrome], T]) -> T:
        """`steps(driver)` in a worker thread, so the platform keeps serving meanwhile."""
        return await asyncio.to_thread(steps, self.driver)

    async def get(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def screenshot(self, label: str = "") -> Path:
        return await asyncio.to_thread(self.save_screenshot, label)

    def save_screenshot(self, label: str = "") -> Path:
        """A PNG of the window, saved as tests/artifacts/<test>-<n>[-<label>].png (blocking: for
        use inside `run` steps)."""
        self._shots += 1
        suffix = f"-{_safe(label)}" if label else ""
        path = self.artifacts / f"{self.test_name}-{self._shots:02d}{suffix}.png"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        if not self.driver.get_screenshot_as_file(str(path)):
            raise RuntimeError(f"the screenshot {path} was not written")
        return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120]


def artifacts_dir(config: pytest.Config) -> Path:
    return config.rootpath / "tests" / "artifacts"


@pytest.fixture(scope="session")
def chromium() -> None:
    """Chromium and chromedriver are installed (once per run)."""
    ensure_chromium()


@pytest.fixture
def browser(chromium: None, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """A fresh headless Chromium (own profile: no cookies shared between tests)."""
    with tempfile.TemporaryDirectory(prefix="authpi-chromium-") as profile:
        driver = chrome(Path(profile))
        session = Browser(driver, artifacts_dir(request.config), _safe(request.node.name))
        try:
            yield session
            if request.node.stash.get(_FAILED, False):
                session.save_screenshot("failed")
        finally:
            driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    """Marks a test whose body failed, so the browser fixture saves a screenshot of it."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report
