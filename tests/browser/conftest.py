"""Browser-test plumbing: a Voila server on a test notebook and a headless system chromium.

Voila runs a notebook top to bottom without clicks and serves the widgets, which is all these
tests need (JupyterLab would add a UI to drive before any widget shows). Every wait is bounded.
The tests skip, saying why, where /usr/bin/chromium (or $CLIPVIZ_CHROMIUM) or Python playwright
is missing; CI installs both. Screenshots land in ``artifacts/screenshots/`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CLIPVIZ_CHROMIUM", "/usr/bin/chromium")  # the system one
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "tests" / "notebooks"
SCREENSHOTS = REPO / "artifacts" / "screenshots"
SERVER_START_TIMEOUT_S = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything in tests/browser as ``browser`` and skip it when chromium is absent."""
    reason = _missing_requirement()
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def _missing_requirement() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"browser tests need chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need Python playwright (pip install -e '.[test]')"
    if shutil.which("voila") is None and not _module_available("voila"):
        return "browser tests need voila (pip install -e '.[test]')"
    return None


def _module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VoilaServer:
    """A running ``voila`` process serving one notebook on 127.0.0.1."""

    def __init__(self, notebook: Path, workdir: Path) -> None:
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.log_path = workdir / "voila.log"
        self.notebook = workdir / notebook.name
        shutil.copy(notebook, self.notebook)
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        # Keep the kernel's cache away from the user's real one.
        env["CLIPVIZ_CACHE_DIR"] = str(workdir / "cache")
        cmd = [
            sys.executable,
            "-m",
            "voila",
            self.notebook.name,
            "--no-browser",
            f"--port={self.port}",
            "--Voila.ip=127.0.0.1",
            f"--Voila.token={self.token}",
            "--show_tracebacks=True",
            "--Voila.port_retries=0",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT_S) -> None:
        """Poll the static endpoint until the server answers (not the notebook: that runs later)."""
        deadline = time.monotonic() + timeout
        probe = f"http://127.0.0.1:{self.port}/api/kernels?token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # any HTTP answer means the server is up
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"voila did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def voila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], VoilaServer]]:
    """Factory: ``voila("name.ipynb")`` serves ``tests/notebooks/name.ipynb`` (once per session)."""
    servers: dict[str, VoilaServer] = {}

    def start(name: str) -> VoilaServer:
        if name not in servers:
            workdir = tmp_path_factory.mktemp(Path(name).stem)
            server = VoilaServer(NOTEBOOKS / name, workdir)
            servers[name] = server
            server.wait_ready()
        return servers[name]

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless system chromium (never a downloaded one: no ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageRecorder:
    """A page plus what it did: dialogs (alerts) raised, console errors, screenshots saved."""

    def __init__(self, page: object, prefix: str) -> None:
        self.page = page
        self.prefix = prefix
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))

    def _on_dialog(self, dialog: object) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _on_console(self, msg: object) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)

    def shot(self, step: str) -> Path:
        """Save a full-page PNG for this step and return its path."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}_{step}.png"
        self.page.screenshot(path=str(path), full_page=True, timeout=30_000)
        return path


@pytest.fixture
def recorder(browser: object, request: pytest.FixtureRequest) -> Iterator[PageRecorder]:
    """A fresh 1400x1000 page for one test, recording dialogs and console errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield PageRecorder(page, request.node.name)
    context.close()
