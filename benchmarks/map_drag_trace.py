"""Where a drag-pan's frame time goes on the map: a CDP trace of the page's main thread.

Mounts clipviz's map (or jupyter-scatter's) as ``map_render.py`` does, records a Chrome trace
(playwright's CDP session, ``Tracing``) over the same 30-move drag-pan, and sums the main
thread's time by what it was doing: waiting for the GPU process in the WebGL read-back
(``GLES2::ReadPixels``, where software GL spends a frame), garbage collection, style and layout,
input event dispatch, and script outside the read-back. Writes
benchmarks/results/map_drag_trace.json; on a loaded machine the totals grow, the shares are
the measure.

Usage: ``python benchmarks/map_drag_trace.py [--sizes 10000 100000] [--widget clipviz]``
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import map_probes as probes  # noqa: E402
import map_render as mr  # noqa: E402
from _cdp_trace import start_trace  # noqa: E402

CATEGORIES = ["devtools.timeline", "v8", "blink", "gpu", "toplevel",
              "disabled-by-default-devtools.timeline"]  # fmt: skip
GROUPS = {  # trace event name -> what it is; nested events are counted once, in their group
    "GLES2::ReadPixels": "gpu_readback_wait",
    "MajorGC": "gc", "MinorGC": "gc", "V8.GCScavenger": "gc", "V8.GCFinalizeMC": "gc",
    "UpdateLayoutTree": "style_layout", "Layout": "style_layout", "PrePaint": "style_layout",
    "Paint": "paint", "EventDispatch": "input_events",
}  # fmt: skip


def summarise(events: list[dict]) -> dict[str, float]:
    """Milliseconds of the renderer main thread, by group, plus busy time and frame count."""
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}  # fmt: skip
    mains = [k for k, v in names.items() if v == "CrRendererMain"]
    by_thread = collections.Counter((e["pid"], e["tid"]) for e in events if e.get("ph") == "X")
    main = max(mains, key=lambda k: by_thread[k])
    spans = [e for e in events if (e["pid"], e["tid"]) == main and e.get("ph") == "X"]
    out: dict[str, float] = collections.defaultdict(float)
    for e in spans:
        if e["name"] == "RunTask":
            out["busy_ms"] += e.get("dur", 0) / 1000
        elif e["name"] == "FireAnimationFrame":
            out["animation_frame_callbacks"] += 1
        group = GROUPS.get(e["name"])
        if group:
            out[f"{group}_ms"] += e.get("dur", 0) / 1000
    out["script_outside_readback_ms"] = (
        sum(e.get("dur", 0) / 1000 for e in spans if e["name"] == "FunctionCall")
        - out["gpu_readback_wait_ms"]
    )
    return {k: round(v, 1) for k, v in out.items()}


def trace_drag(browser, make, n: int) -> dict[str, float]:
    xy, labels = mr.points(n)
    wp = mr.WidgetPage(browser, make(xy, labels), width=mr.WIDTH, height=mr.HEIGHT + 200,
                       init_script=probes.PROBES.replace("1e12", str(n)))  # fmt: skip
    try:
        deadline = time.perf_counter() + 300
        if not probes.wait_for(wp, "window.__bigFrames.length > 0", deadline):
            raise TimeoutError(f"no full frame at {n}")
        x, y = probes.centre(wp)
        wp.page.mouse.move(x, y)
        cdp = wp.page.context.new_cdp_session(wp.page)
        events, done = start_trace(cdp, CATEGORIES)
        drag = probes.drag(wp, x - 90, y - 45, deadline)
        cdp.send("Tracing.end")
        while not done and time.perf_counter() < deadline:
            wp.page.wait_for_timeout(100)
        return {"drag_longest_frame_gap_s": drag["drag_longest_frame_gap_s"],
                "drag_pan_s": drag["drag_pan_s"], **summarise(events)}  # fmt: skip
    finally:
        wp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--widget", choices=["clipviz", "jupyter_scatter"], default="clipviz")
    parser.add_argument(
        "--out", default=str(mr.REPO / "benchmarks" / "results" / "map_drag_trace.json")
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    make = mr.clipviz_widget if args.widget == "clipviz" else mr.jscatter_widget
    load_before = os.getloadavg()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=mr.CHROMIUM, headless=True, args=mr.ARGS)
        results = {str(n): trace_drag(browser, make, n) for n in args.sizes}
        browser.close()
    report = {"benchmark": "map_drag_trace", "widget": args.widget, "results": results,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "note": "shared 2-core machine under load: compare shares, not totals"}  # fmt: skip
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
