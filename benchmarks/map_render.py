"""Map rendering: clipviz's EmbeddingMap vs jupyter-scatter, same chromium, same points.

For 10k, 100k and 1M points (8 clusters, 8 categories) each widget is mounted in headless
chromium (software GL: --disable-gpu) through the same kernel-less bridge
(tests/browser/widget_bridge.py: the widget's real state and messages, base64 over CDP).
Probes injected before any script (``map_probes.py``) wrap WebGL draw calls and run a
requestAnimationFrame loop, so both libraries are timed the same way:

- first render: from mounting (state serialised in Python) to the first frame after a draw call
  covering all N points;
- zoom, one wheel notch (median of 5): ``zoom_first_frame_s`` to the first frame after any draw
  of the points (clipviz draws a sample of them while the camera moves), ``zoom_redraw_s`` to
  the first frame after a draw of all N (full fidelity);
- zoom gesture: 10 wheel notches 40 ms apart; the longest gap between frames during it, the
  same up to the full frame after it, and the time from the last notch to the full frame;
- drag-pan: 30 mouse moves with the button down; total time, the longest gap between frames
  while the button is down, the same including the release and the full frame after it, and
  the time from the last move to the first full frame; at 100k (``--umap-drag``) the drag
  again while a UMAP fit runs in another process (``umap_*`` keys), as the Workbench's
  background projection does in the kernel.

Frames come from a requestAnimationFrame loop; a draw is "full" when one draw call covers N
points, so a sampled frame never counts as the full one.

What the two sides pay (see ``FAIRNESS`` in the JSON): both draw with regl-scatterplot 1.16 at
devicePixelRatio 1, the same point size and density opacity. jupyter-scatter's renderer is as
large as the window (940 x 720 here) and crops to its 900 x 520 canvas; clipviz's is sized to
the map, and clipviz also places an SVG overlay of 8 prompt stars on every camera move. Each is
what a user of that library gets. clipviz's level of detail is timed in full: a sample frame, the
wait for stillness and the filter switch all count towards ``zoom_redraw_s`` and the
``*_full_frame_after_s`` keys. In software GL the frame's cost is the GPU process executing the
WebGL commands; the page's main thread waits for it in the read-back (a CDP trace of a 10k drag:
9.9 of 13.2 s main-thread time in ``GLES2::ReadPixels``), so on a loaded machine every frame time
grows with the load, and ratios from one run are the measure.

Writes benchmarks/results/map_render.json with ratios clipviz / jupyter-scatter. Each size has a
fixed timeout; a run that does not finish is recorded as such. The machine's load is recorded
(``os.getloadavg``): compare the ratios, measured in one run, not the absolute times.

Usage: ``python benchmarks/map_render.py [--sizes 10000 100000 1000000] [--timeout 300] [--umap-drag 100000]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))
from map_probes import PROBES, centre, drag, settle, wait_for, zoom_gesture, zoom_notches  # noqa: E402
from widget_bridge import WidgetPage  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
WIDTH, HEIGHT = 900, 520
UMAP_WARMUP_S = 8.0
UMAP_JOB = (  # a long fit, like the Workbench's background UMAP of a large collection
    "import numpy as np, umap; x = np.random.default_rng(0).normal(size=(30000, 64));"
    "umap.UMAP(n_epochs=2000, random_state=0).fit(x)"  # seeded, one thread, as projection.py
)
CHOICE = (
    "regl-scatterplot vendored in clipviz's own anywidget, not jscatter.Scatter: both draw "
    "with regl-scatterplot 1.16.0, so per-frame costs match (ratios here are within the "
    "noise of a loaded machine); around it jupyter-scatter sends all points in its state "
    "(largest_message_mb 17.4 at 1M, over the server's 10 MB limit), ships a 2 MB bundle, "
    "needs a pandas copy, and does not expose its camera, which the prompt overlay, the "
    "camera fit on a new projection and kernel-served hover thumbnails need"
)
LOD = (
    "while the camera moves clipviz draws a fixed seeded random sample of 20k points plus every "
    "selected point (regl-scatterplot's filter), and all N once a wheel zoom has been still for "
    "250 ms or a drag's button is released; a lone wheel notch (no notch or frame in the 250 ms "
    "before it) draws all N at once, with no sample frame: zoom_redraw_s is one full frame on "
    "both sides, the gesture and drag keys time the sample and the full frame after it; "
    "jupyter-scatter always draws all N"
)
FAIRNESS = (
    "same library (regl-scatterplot 1.16), devicePixelRatio 1, point size and density opacity on "
    "both sides; jupyter-scatter renders a window-sized 940x720 buffer cropped to its canvas, "
    "clipviz a map-sized 900x520 one (each library's own behaviour); clipviz also moves an SVG "
    "overlay of 8 prompt markers on each camera change; clipviz's sample frame, stillness wait "
    "and filter switch are inside its full-frame times"
)

RATIO_KEYS = (
    "first_render_s",
    "zoom_first_frame_s",
    "zoom_redraw_s",
    "zoom_gesture_longest_frame_gap_s",
    "zoom_gesture_longest_frame_gap_incl_full_s",
    "zoom_gesture_full_frame_after_s",
    "drag_pan_s",
    "drag_longest_frame_gap_s",
    "drag_longest_frame_gap_incl_release_s",
    "drag_full_frame_after_s",
)

UMAP_RATIO_KEYS = ("drag_longest_frame_gap_s", "drag_full_frame_after_s")


def points(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 2)) * 3
    xy = centres[np.arange(n) % 8] + rng.normal(size=(n, 2))
    return xy.astype(np.float32), [f"class {k % 8}" for k in range(n)]


def clipviz_widget(xy: np.ndarray, labels: list[str]):
    from clipviz.views.embedding_map import EmbeddingMap

    view = EmbeddingMap(height=HEIGHT)
    view.set_points(xy, [f"i{k}" for k in range(len(xy))], labels, xy[:8], labels[:8])
    return view.map_widget


def jscatter_widget(xy: np.ndarray, labels: list[str]):
    import jscatter
    import pandas as pd

    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "label": pd.Categorical(labels)})
    size = 6 if len(xy) <= 20_000 else 3 if len(xy) <= 200_000 else 2  # the same as clipviz's
    plot = jscatter.Scatter(data=df, x="x", y="y", color_by="label", size=size,
                            opacity_by="density", height=HEIGHT)  # fmt: skip
    return plot.widget


def largest_message_bytes(widget) -> int:
    """The largest comm message the widget needs to show its points (state or a point chunk)."""
    from clipviz.views._plotting import record_messages

    state = widget.get_state()
    binary = sum(len(v) for v in state.values() if isinstance(v, bytes | memoryview))
    nested = [v["view"] for v in state.values() if isinstance(v, dict) and "view" in v]
    binary += sum(memoryview(v).nbytes for v in nested)
    largest = binary + len(json.dumps({k: v for k, v in state.items()
                                       if isinstance(v, str | int | float | list)}))  # fmt: skip
    if hasattr(widget, "_lib"):  # clipviz: points come as messages after the state
        with record_messages(widget) as sent:
            widget._handle_custom_msg({"type": "request_points"}, [])
        largest = max([largest, *(j + b for j, b in sent)])
    return largest


@contextlib.contextmanager
def _umap_in_background() -> Iterator[None]:
    """A UMAP fit in another process for the block's duration: the kernel's background work."""
    proc = subprocess.Popen([sys.executable, "-c", UMAP_JOB])
    try:
        time.sleep(UMAP_WARMUP_S)  # past the imports: numba compiles and fits
        if proc.poll() is not None:
            raise RuntimeError(f"the background UMAP fit ended early (exit {proc.returncode})")
        yield
    finally:
        proc.kill()
        proc.wait()


def measure(
    browser, make, n: int, timeout: float, with_umap: bool = False
) -> dict[str, float | str]:
    xy, labels = points(n)
    widget = make(xy, labels)
    out: dict[str, float | str] = {"largest_message_mb": largest_message_bytes(widget) / 2**20}
    deadline = time.perf_counter() + timeout
    t0 = time.perf_counter()
    wp = WidgetPage(browser, widget, width=WIDTH, height=HEIGHT + 200,
                    init_script=PROBES.replace("1e12", str(n)))  # fmt: skip
    try:
        if not wait_for(wp, "window.__bigFrames.length > 0", deadline):
            return {"status": f"no full frame within {timeout:.0f} s"}
        out["first_render_s"] = time.perf_counter() - t0
        x, y = centre(wp)
        wp.page.mouse.move(x, y)
        out["idle_full_draws_per_s"] = settle(wp, deadline)
        try:
            out |= zoom_notches(wp, deadline)
            out |= zoom_gesture(wp, deadline)
            out |= drag(wp, x - 90, y - 45, deadline)
            if with_umap:
                with _umap_in_background():
                    busy = drag(wp, x - 90, y - 45, deadline)
                out |= {f"umap_{k}": v for k, v in busy.items()}
        except TimeoutError as e:
            return out | {"status": str(e)}
        out["page_errors"] = "; ".join(wp.errors)[:300]
        out["status"] = "ok"
        return out
    finally:
        wp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per size and widget")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "map_render.json"))
    parser.add_argument("--umap-drag", type=int, nargs="*", default=[100_000],
                        help="sizes at which a second drag runs while UMAP fits in another process")  # fmt: skip
    parser.add_argument("--note", default="compare ratios from one run",
                        help="what else ran on the machine")  # fmt: skip
    args = parser.parse_args()
    import jscatter
    from playwright.sync_api import sync_playwright

    results: dict[str, dict] = {}
    load_before = os.getloadavg()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for n in args.sizes:
            row = {}
            for name, make in (("clipviz", clipviz_widget), ("jupyter_scatter", jscatter_widget)):
                row[name] = measure(browser, make, n, args.timeout, n in args.umap_drag)
                print(n, name, row[name], flush=True)
            ratios = {}
            for key in (*RATIO_KEYS, *(f"umap_{k}" for k in UMAP_RATIO_KEYS)):
                a, b = row["clipviz"].get(key), row["jupyter_scatter"].get(key)
                if isinstance(a, float) and isinstance(b, float) and b > 0:
                    ratios[key] = round(a / b, 3)
            row["ratio_clipviz_over_jupyter_scatter"] = ratios
            results[str(n)] = row
        browser.close()
    report = {
        "benchmark": "map_render",
        "what": "clipviz EmbeddingMap (vendored regl-scatterplot 1.16) vs jupyter-scatter "
        f"{jscatter.__version__} in the same headless chromium (software GL), same points",
        "harness": "kernel-less bridge (tests/browser/widget_bridge.py): real widget state and "
        "messages delivered base64 over CDP; WebGL draw calls and rAF frames probed in the page",
        "targets": {
            "first_render_100k": "<= 1.0x",
            "first_render_1M": "<= 1.2x",
            "zoom_redraw": "<= 1.0x",
            "drag_longest_frame_gap_100k_s": "<= 0.3",
        },  # fmt: skip
        "choice": CHOICE,
        "level_of_detail": LOD,
        "fairness": FAIRNESS,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "note": args.note,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps(
            {n: r["ratio_clipviz_over_jupyter_scatter"] for n, r in results.items()}, indent=1
        )
    )


if __name__ == "__main__":
    main()
