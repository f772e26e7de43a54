"""Where a warm reopen's browser time goes: a Chrome trace of the Voila page until every view shows.

Serves the same notebook as ``workbench_reopen.py`` (a kept ``--workdir`` whose cache is warm),
records a browser-wide CDP trace from the page request until all four panes are drawn, and lists
the renderer main thread's long tasks (start, duration, the scripts and steps inside them) next
to the moment each pane was first seen. Used to decide what to cut; writes
benchmarks/results/workbench_reopen_trace.json.

    python benchmarks/workbench_reopen_trace.py --workdir DIR [--n 50000] [--top 25]
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
import workbench_reopen as wr  # noqa: E402
from _cdp_trace import start_trace  # noqa: E402

CATEGORIES = ["devtools.timeline", "v8", "v8.execute", "blink", "blink.user_timing", "toplevel",
              "loading", "disabled-by-default-devtools.timeline"]  # fmt: skip
# each pane's first sighting also becomes a performance mark, so it lands in the trace
TRACED_JS = wr.ALL_VISIBLE_JS.replace(
    "seen[name] = Date.now();", "{ seen[name] = Date.now(); performance.mark('seen-' + name); }"
)


def _label(e: dict) -> str:
    data = (e.get("args") or {}).get("data") or {}
    where = data.get("url") or data.get("functionName") or ""
    if where:
        where = where.rsplit("/", 1)[-1][:60]
    return f"{e['name']}({where})" if where else e["name"]


def summarise(events: list[dict], top: int) -> dict:
    """The renderer main thread's longest tasks, what ran inside them, and the pane marks."""
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}  # fmt: skip
    count = collections.Counter((e["pid"], e["tid"]) for e in events if e.get("ph") == "X")
    main = max((k for k, v in names.items() if v == "CrRendererMain"), key=lambda k: count[k])
    spans = sorted((e for e in events if (e["pid"], e["tid"]) == main and e.get("ph") == "X"),
                   key=lambda e: e["ts"])  # fmt: skip
    marks = {e["name"]: e["ts"] for e in events
             if e.get("cat", "").startswith("blink.user_timing") and e["pid"] == main[0]}  # fmt: skip
    t0 = marks.get("navigationStart") or min(e["ts"] for e in spans)
    tasks = [e for e in spans if e["name"] == "RunTask"]
    busy = sum(e.get("dur", 0) for e in tasks) / 1e3
    long = sorted(tasks, key=lambda e: -e.get("dur", 0))[:top]
    rows = []
    for task in sorted(long, key=lambda e: e["ts"]):
        end = task["ts"] + task.get("dur", 0)
        inner = collections.Counter()
        for e in spans:
            if task["ts"] <= e["ts"] < end and e is not task and e.get("dur", 0) > 5_000:
                inner[_label(e)] += e["dur"] / 1e3
        rows.append({
            "start_s": round((task["ts"] - t0) / 1e6, 3),
            "dur_ms": round(task.get("dur", 0) / 1e3, 1),
            "inside_ms": {k: round(v, 1) for k, v in inner.most_common(8)},
        })  # fmt: skip
    by_name = collections.Counter()
    for e in spans:
        if e["name"] in ("EvaluateScript", "v8.compile", "v8.compileModule", "FunctionCall",
                         "ParseHTML", "Layout", "UpdateLayoutTree", "Paint", "MajorGC",
                         "MinorGC", "v8.parseOnBackground", "XHRReadyStateChange"):  # fmt: skip
            by_name[_label(e)] += e.get("dur", 0) / 1e3
    return {
        "t0_s": t0 / 1e6,
        "main_thread_busy_ms": round(busy, 1),
        "marks_s": {
            k: round((v - t0) / 1e6, 3) for k, v in sorted(marks.items(), key=lambda i: i[1])
        },
        "long_tasks": rows,
        "top_steps_ms": {k: round(v, 1) for k, v in by_name.most_common(30)},
    }


def profile_summary(profile: dict, top: int) -> dict:
    """Self time of the page's JavaScript by script and by function (CDP ``Profiler``)."""
    nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
    self_ms: collections.Counter = collections.Counter()
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        self_ms[node_id] += delta / 1e3
    by_script: collections.Counter = collections.Counter()
    by_function: collections.Counter = collections.Counter()
    for node_id, ms in self_ms.items():
        frame = nodes[node_id]
        script = (frame["url"] or "(native)").rsplit("/", 1)[-1][:50]
        by_script[script] += ms
        by_function[
            f"{frame['functionName'] or '(anonymous)'} @ {script}:{frame['lineNumber']}"
        ] += ms
    return {
        "by_script_ms": {k: round(v, 1) for k, v in by_script.most_common(top)},
        "by_function_ms": {k: round(v, 1) for k, v in by_function.most_common(top)},
    }


def _frame(direction: str, e: dict) -> dict:
    """One kernel websocket frame: when, how big, its message type (and a custom type)."""
    import base64
    import re

    payload = e["response"]["payloadData"]
    raw = base64.b64decode(payload) if e["response"]["opcode"] == 2 else payload.encode()
    kind = re.search(rb'"msg_type":\s*"(\w+)"', raw)
    method = re.search(rb'"(?:method|type)":\s*"(\w+)"', raw[kind.end() :] if kind else raw)
    # a custom message's own type ("thumbs", "request_points", "points"), to tell views apart
    own = re.search(rb'"content":\s*\{[^{}]*?"type":\s*"(\w+)"', raw) if method else None
    return {"t": e["timestamp"], "dir": direction, "bytes": len(raw),
            "msg": (kind.group(1).decode() if kind else "?")
            + (f"/{method.group(1).decode()}" if method else "")
            + (f":{own.group(1).decode()}" if own else "")}  # fmt: skip


def _frame_rows(frames: list[dict], t0: float) -> list[dict]:
    """Frames in order, in seconds on the trace's clock from ``t0``; a run of one type merged."""
    rows: list[dict] = []
    for f in frames:
        last = rows[-1] if rows else None
        if (
            last
            and last["dir"] == f["dir"]
            and last["msg"] == f["msg"]
            and f["t"] - t0 - last["t_end"] < 0.05
        ):
            last.update(
                n=last["n"] + 1, bytes=last["bytes"] + f["bytes"], t_end=round(f["t"] - t0, 3)
            )
            continue
        rows.append({"t": round(f["t"] - t0, 3), "t_end": round(f["t"] - t0, 3), "dir": f["dir"],
                     "msg": f["msg"], "n": 1, "bytes": f["bytes"]})  # fmt: skip
    return rows


def trace_open(
    browser, notebook: Path, workdir: Path, timeout_s: float, top: int, raw_profile: Path | None
) -> dict:
    server = wr.VoilaServer(notebook, workdir)
    try:
        server.wait_ready(timeout=300)
        page = browser.new_page(viewport=wr.VIEWPORT)
        cdp = browser.new_browser_cdp_session()
        events, done = start_trace(cdp, CATEGORIES)
        t = time.perf_counter()
        page.goto(server.url, timeout=int(timeout_s * 1000), wait_until="commit")
        profiler = page.context.new_cdp_session(page)  # the page's JavaScript, sampled
        profiler.send("Profiler.enable")
        profiler.send("Profiler.setSamplingInterval", {"interval": 500})
        profiler.send("Profiler.start")
        frames: list[dict] = []
        profiler.on("Network.webSocketFrameSent", lambda e: frames.append(_frame("sent", e)))
        profiler.on("Network.webSocketFrameReceived", lambda e: frames.append(_frame("got", e)))
        profiler.send("Network.enable")
        page.wait_for_function(TRACED_JS, timeout=int(timeout_s * 1000), polling=100)
        visible_s = round(time.perf_counter() - t, 2)
        cdp.send("Tracing.end")
        profile = profiler.send("Profiler.stop")["profile"]
        js = profile_summary(profile, top)
        if raw_profile is not None:  # for DevTools' Performance panel
            raw_profile.write_text(json.dumps(profile))

        deadline = time.perf_counter() + 120
        while not done and time.perf_counter() < deadline:
            page.wait_for_timeout(100)
        map_stats = page.evaluate("""() => {
          const el = [...document.querySelectorAll('*')].find(e => e.__clipvizMap);
          return el ? el.__clipvizMap.stats : null;
        }""")
        shot = wr.REPO / "artifacts" / "screenshots" / "reopen_trace.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        page.close()
        (workdir / "kernel_timing.json").unlink(missing_ok=True)
        summary = summarise(events, top)
        return {"all_views_visible_s": visible_s, **summary, "javascript": js, "map_stats": map_stats,
                "websocket_frames": _frame_rows(frames, summary["t0_s"]),
                "screenshot": str(shot)}  # fmt: skip
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="a warm workbench_reopen workdir")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=wr.RESULTS / "workbench_reopen_trace.json")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    base = args.workdir.resolve()
    folder, workdir = base / f"images-{args.n}", base / f"kernel-{args.n}"
    if not (workdir / "cache").is_dir():
        raise SystemExit(f"{workdir} has no warm cache: run workbench_reopen.py --workdir first")
    notebook = base / "reopen.ipynb"
    wr.write_notebook(notebook)
    os.environ["CLIPVIZ_REOPEN_FOLDER"] = str(folder)
    load_before = os.getloadavg()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=wr.CHROMIUM, headless=True,
                                    args=wr.CHROMIUM_ARGS)  # fmt: skip
        result = trace_open(browser, notebook, workdir, args.timeout, args.top,
                            args.out.with_suffix(".cpuprofile"))  # fmt: skip
        browser.close()
    result.update(load_avg_before=load_before, load_avg_after=os.getloadavg())
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
