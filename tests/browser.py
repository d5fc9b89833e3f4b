"""Debian's headless Chromium for the browser tests, driven through Debian's chromedriver.

Both come from tests/system_packages.sh (run by `make pytest`). Giving selenium
the driver's path keeps Selenium Manager from downloading a driver or a
browser, and the flags keep Chromium's own background traffic off.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from tests.nodes import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Screenshots a person may look at after a run (git-ignored).
ARTIFACTS = REPO / "test-artifacts"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,800",
)
# Every host name resolves to nothing (the rules apply to address literals
# too, so 127.0.0.1 is left out), and every request that is not for a loopback
# address goes to a proxy that is not there (Chromium never proxies loopback):
# a page that needs anything but the node on 127.0.0.1 breaks.
OFFLINE_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://192.0.2.1:9",
)
# How long a page may take to show what a test waits for.
PATIENCE = 10.0


@contextlib.contextmanager
def chromium(profile: Path, *flags: str, network_log: bool = False) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in `profile`; with `network_log`, `requested_urls` works."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    assert not missing, f"{', '.join(missing)} missing: run tests/system_packages.sh (`make pytest` does)"
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *flags):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the page asked for since the last call (DevTools' Network.requestWillBeSent), failed ones included."""
    urls = []
    for entry in driver.get_log("performance"):  # type: ignore[no-untyped-call]  # untyped in selenium
        event = json.loads(entry["message"])["message"]
        if event.get("method") == "Network.requestWillBeSent":
            urls.append(event["params"]["request"]["url"])
    return urls
