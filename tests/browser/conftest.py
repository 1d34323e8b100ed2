"""Shared pieces of the browser tier: a real Streamlit server and Debian Chromium.

Tests here carry the `browser` marker; tests/conftest.py skips them, with instructions, when
/usr/bin/chromium is missing (Playwright's own browser download does not work here).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out on this closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
STARTUP_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"streamlit did not become healthy in {STARTUP_TIMEOUT_S}s:\n{log.read_text()}")


@pytest.fixture()
def streamlit_server(tmp_path: Path) -> Iterator[Callable[[str, Path], str]]:
    """`start(script, workspace) -> base URL`: serves `script` on a free loopback port with
    $CMKD_WORKSPACE set; every server started is stopped at teardown."""
    servers: list[subprocess.Popen] = []

    def start(script: str, workspace: Path) -> str:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / f"streamlit-{port}.log"
        env = {**os.environ, "CMKD_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "streamlit", "run", script,
               "--server.headless", "true", "--server.address", "127.0.0.1",
               "--server.port", str(port), "--browser.gatherUsageStats", "false"]  # fmt: skip
        with log.open("w") as out:
            server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        servers.append(server)
        _wait_for_health(url, server, log)
        return url

    yield start
    for server in servers:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture()
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def open_app(chromium: Any) -> Callable[..., Any]:
    """`open_app(url, timeout_ms, height=1100, **page_options) -> page`: a new 1400-px-wide
    page whose Playwright actions wait up to `timeout_ms`, on `url`, once the app has
    rendered."""

    def run(url: str, timeout_ms: int, height: int = 1100, **page_options: Any) -> Any:
        page = chromium.new_page(viewport={"width": 1400, "height": height}, **page_options)
        page.set_default_timeout(timeout_ms)
        page.goto(url)
        page.wait_for_selector('[data-testid="stApp"]')
        return page

    return run


BROWSER_PASSWORD = "browser test passphrase"  # the password make_account gives every account


@pytest.fixture()
def make_account() -> Callable[[Path, str, str], str]:
    """`make(workspace, name, role) -> password`: an account ready to sign in (its one-time
    password already replaced), created in the workspace's store before the server starts."""
    from workbench.auth import AuthConfig, AuthService
    from workbench.roles import User
    from workbench.workspace import Workspace

    def make(workspace: Path, name: str, role: str) -> str:
        auth = AuthService.from_workspace(Workspace(workspace), AuthConfig(bcrypt_rounds=4))
        otp = auth.add_user(User("browser-test", "admin"), name, role)
        auth.change_password(name, otp, BROWSER_PASSWORD)
        return BROWSER_PASSWORD

    return make


@pytest.fixture()
def sign_in() -> Callable[..., None]:
    """`sign_in(page, name, password=BROWSER_PASSWORD)`: fill the shell's sign-in form (the
    page must show it) and wait until the sidebar shows the sign-out button."""
    from playwright.sync_api import expect

    from workbench.i18n import catalog

    en = catalog("en")

    def run(page: Any, name: str, password: str = BROWSER_PASSWORD) -> None:
        page.get_by_label(en["auth.name"]).fill(name)
        page.get_by_label(en["auth.password"], exact=True).fill(password)
        page.get_by_role("button", name=en["auth.submit"], exact=True).click()
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_role("button", name=en["auth.sign_out"])).to_be_visible()

    return run
