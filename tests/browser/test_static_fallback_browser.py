"""The static fallback: a notebook executed and saved, then read where no kernel runs.

nbconvert executes tests/notebooks/static_fallback.ipynb (which changes the prompts and the
selection after displaying the workbench) and writes HTML; chromium opens it with every network
request blocked (as on an offline machine, or where the widget scripts cannot load). The page
must show the workbench's last state as plain HTML, never "Error displaying widget".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import NOTEBOOKS, PageRecorder


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("static")
    shutil.copy(NOTEBOOKS / "static_fallback.ipynb", folder)
    env = dict(os.environ, HF_HUB_OFFLINE="1", CLIPVIZ_CACHE_DIR=str(folder / "cache"))
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute"]
    done = subprocess.run(
        [*cmd, "static_fallback.ipynb"], cwd=folder, env=env, capture_output=True, timeout=400
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return folder / "static_fallback.html"


def test_saved_html_shows_the_last_state_without_a_kernel(converted, browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    rec = PageRecorder(context.new_page(), "static_fallback")
    # Only the file itself loads: no CDN, so no widget manager and no kernel.
    rec.page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
    try:
        rec.page.goto(converted.as_uri(), wait_until="load")
        rec.page.wait_for_timeout(1500)
        snap = rec.page.locator(".clipviz-static").first
        snap.wait_for(state="visible")
        rec.shot("nbconvert_html")
        text = snap.inner_text()
        assert "3 prompts" in text  # set in the cell after the display: the last state
        assert "1 selected" in text
        assert 'a "quoted" shape' in text and "&quot;" not in text and "&#34;" not in text
        cells = snap.locator(".clipviz-cell")
        assert cells.count() == 20
        widths = rec.page.eval_on_selector_all(
            ".clipviz-static img.clipviz-thumb", "els => els.map(e => e.naturalWidth)"
        )
        assert len(widths) == 20 and min(widths) > 0  # data-URI thumbnails decode
        body = rec.page.locator("body").inner_text()
        assert "Error displaying widget" not in body
        assert rec.dialogs == []
    finally:
        context.close()
    assert converted.stat().st_size < 20_000_000
