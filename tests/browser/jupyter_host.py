"""JupyterLab and Notebook 7 servers for the browser tests, and running a notebook's cells there.

Each server gets its own user settings (windowing off, so every output is in the DOM; a theme;
no news toast over the page) and no user config, on a copy of one test notebook.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from conftest import NOTEBOOKS, _free_port

DARK = "JupyterLab Dark"
LIGHT = "JupyterLab Light"
START_TIMEOUT_S = 90.0


def lab_settings(folder: Path, theme: str) -> Path:
    """A JupyterLab user-settings folder: windowing off, ``theme``, no news fetched."""
    files = {
        ("notebook-extension", "tracker"): {"windowingMode": "none"},
        ("apputils-extension", "themes"): {"theme": theme},
        ("apputils-extension", "notification"): {"fetchNews": "false"},
    }
    for (plugin, name), value in files.items():
        path = folder / "@jupyterlab" / plugin / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return folder


@contextlib.contextmanager
def jupyter_server(
    app: str, folder: Path, notebook: str, theme: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``app`` ("jupyterlab" or "notebook") serving a copy of ``notebook`` in ``folder``;
    yields the notebook's URL. ``env`` adds to the server's (and its kernels') environment."""
    shutil.copy(NOTEBOOKS / notebook, folder)
    port, token = _free_port(), secrets.token_hex(16)
    full_env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
    full_env["JUPYTERLAB_SETTINGS_DIR"] = str(lab_settings(folder / "settings", theme))
    full_env["JUPYTER_CONFIG_DIR"] = str(folder / "config")  # no user extensions or settings
    cmd = [sys.executable, "-m", app, "--allow-root", "--no-browser", f"--port={port}"]
    cmd += [f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"]
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=folder, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            path = "lab/tree" if app == "jupyterlab" else "notebooks"
            yield f"{base}/{path}/{notebook}?token={token}"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def run_all(page) -> None:
    """Run every cell from the Run menu (answering "Select Kernel"; the file browser hidden)."""
    page.locator(".jp-Notebook").first.wait_for(state="visible", timeout=90_000)
    page.wait_for_timeout(2000)  # the kernel connects
    select = page.locator(".jp-Dialog button", has_text="Select")
    if select.count():  # "Select Kernel" on first open
        select.first.click()
        page.wait_for_timeout(1000)
    if page.locator("#jp-left-stack").count() and page.locator("#jp-left-stack").is_visible():
        page.locator(".jp-Notebook").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+b")  # hide the file browser, as at 1500 px people do
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def accept_kernel(page, timeout_ms: int) -> None:
    """Notebook 7 may ask "Select Kernel" several seconds after the page shows: answer it."""
    page.locator(".jp-Notebook").first.wait_for(state="visible", timeout=timeout_ms)
    select = page.locator(".jp-Dialog button", has_text="Select")
    try:
        select.first.wait_for(state="visible", timeout=12_000)
        select.first.click()
    except Exception:  # noqa: BLE001 - a playwright timeout: no dialog this time
        pass
