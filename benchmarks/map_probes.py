"""Timing a WebGL scatter map in headless chromium, the same way for any library.

``PROBES`` is injected before any page script: it wraps WebGL draw calls (a draw covering all N
points is a "full" draw) and runs a requestAnimationFrame loop recording every frame. The
functions below drive one mounted widget (a ``WidgetPage`` from tests/browser/widget_bridge.py)
with wheel notches, a wheel gesture and a drag-pan, and read frame times back from the page.
Used by ``map_render.py`` and ``map_drag_trace.py``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from widget_bridge import WidgetPage

ZOOM_REPEATS = 5
GESTURE_NOTCHES, GESTURE_PAUSE_MS = 10, 40
FULL_FRAME_WAIT_S = 60.0

PROBES = """
window.__frames = []; window.__big = []; window.__bigFrames = []; window.__minCount = 1e12;
window.__anyFrames = []; window.__counts = []; window.__lastMove = 0;
for (const type of ["wheel", "mousemove"]) {  // when the last camera-moving input was made
  window.addEventListener(type, (e) => {
    if (type === "wheel" || e.buttons & 1) window.__lastMove = e.timeStamp;
  }, { capture: true, passive: true });
}
(function loop(t) { window.__frames.push(performance.now()); requestAnimationFrame(loop); })();
const wrap = (gl) => {
  if (!gl || gl.__probed) return gl;
  gl.__probed = true;
  const mark = (count) => {
    if (count >= 1000) {  // a draw of the points (not the hovered one, not a line)
      window.__counts.push([performance.now(), count]);
      requestAnimationFrame(() => window.__anyFrames.push(performance.now()));
    }
    if (count >= window.__minCount) {
      window.__big.push(performance.now());
      window.__fullAfterMove = window.__fullAfterMove || [];
      const input = window.__lastMove;
      requestAnimationFrame(() => window.__fullAfterMove.push([input, performance.now()]));
      requestAnimationFrame(() => window.__bigFrames.push(performance.now()));
    }
  };
  const da = gl.drawArrays.bind(gl);
  gl.drawArrays = (mode, first, count) => { da(mode, first, count); mark(count); };
  const de = gl.drawElements.bind(gl);
  gl.drawElements = (mode, count, type, offset) => { de(mode, count, type, offset); mark(count); };
  const ext = gl.getExtension.bind(gl);
  gl.getExtension = (name) => {
    const e = ext(name);
    if (e && name === "ANGLE_instanced_arrays" && !e.__probed) {
      e.__probed = true;
      const di = e.drawArraysInstancedANGLE.bind(e);
      e.drawArraysInstancedANGLE = (m, f, c, n) => { di(m, f, c, n); mark(c * n); };
    }
    return e;
  };
  return gl;
};
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (type, opts) {
  const ctx = getContext.call(this, type, opts);
  return type && type.startsWith("webgl") ? wrap(ctx) : ctx;
};
"""


def wait_for(wp: WidgetPage, js: str, deadline: float) -> bool:
    while time.perf_counter() < deadline:
        wp.pump()
        if wp.page.evaluate(js):
            return True
        wp.page.wait_for_timeout(50)
    return False


def settle(wp: WidgetPage, deadline: float) -> float:
    """Wait until no full draw happened for 0.5 s (at most 10 s); returns draws/s while idle."""
    start = wp.page.evaluate("[performance.now(), window.__big.length]")
    limit = min(deadline, time.perf_counter() + 10)
    while time.perf_counter() < limit:
        wp.page.wait_for_timeout(250)
        if wp.page.evaluate("performance.now() - (window.__big.at(-1) || 0) > 500"):
            break
    end = wp.page.evaluate("[performance.now(), window.__big.length]")
    return (end[1] - start[1]) / max(1e-3, (end[0] - start[0]) / 1000)


def centre(wp: WidgetPage) -> tuple[float, float]:
    box = wp.page.evaluate(
        "(() => { const cs = [...document.querySelectorAll('#root canvas')];"
        "const c = cs.sort((a, b) => b.clientWidth * b.clientHeight - a.clientWidth * a.clientHeight)[0];"
        "const r = c.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    return float(box[0]), float(box[1])


def page_now(wp: WidgetPage) -> float:
    return float(wp.page.evaluate("performance.now()"))


def first_after(wp: WidgetPage, array: str, t: float, deadline: float) -> float | None:
    """Page time of the first entry of ``window.<array>`` after ``t`` (waits for it)."""
    if not wait_for(wp, f"window.{array}.some((f) => f > {t})", deadline):
        return None
    return float(wp.page.evaluate(f"Math.min(...window.{array}.filter((f) => f > {t}))"))


def full_after_last_move(wp: WidgetPage, deadline: float) -> float | None:
    """Seconds from the last wheel or drag move to the first full frame drawn after it."""
    js = ("(() => { const m = window.__lastMove; const f = (window.__fullAfterMove || [])"
          ".find(([input]) => input >= m); return f ? f[1] - m : null; })()")  # fmt: skip
    limit = min(deadline, time.perf_counter() + FULL_FRAME_WAIT_S)
    while time.perf_counter() < limit:
        wp.pump()
        after = wp.page.evaluate(js)
        if after is not None:
            return float(after) / 1000
        wp.page.wait_for_timeout(50)
    return None


def longest_gap(wp: WidgetPage, start: float, stop: float) -> float:
    js = f"window.__frames.filter((f) => f >= {start} && f <= {stop})"
    frames = np.array(wp.page.evaluate(js))
    return float(np.diff(frames).max() / 1000) if len(frames) > 1 else float("nan")


def zoom_notches(wp: WidgetPage, deadline: float) -> dict[str, float | list[float]]:
    firsts, fulls = [], []
    for _ in range(ZOOM_REPEATS):  # the median of a few: the machine is shared
        settle(wp, deadline)
        before = page_now(wp)
        wp.page.mouse.wheel(0, -120)
        full = first_after(wp, "__bigFrames", before, deadline)
        first = first_after(wp, "__anyFrames", before, deadline)
        if full is None or first is None:
            raise TimeoutError("zoom redraw did not finish in time")
        firsts.append((first - before) / 1000)
        fulls.append((full - before) / 1000)
    return {"zoom_first_frame_s": float(np.median(firsts)), "zoom_redraw_s": float(np.median(fulls)),
            "zoom_first_frame_all_s": firsts, "zoom_redraw_all_s": fulls}  # fmt: skip


def zoom_gesture(wp: WidgetPage, deadline: float) -> dict[str, float]:
    settle(wp, deadline)
    start = page_now(wp)
    for k in range(GESTURE_NOTCHES):
        wp.page.mouse.wheel(0, -60 if k % 2 else 60)  # in and out: the view stays comparable
        wp.page.wait_for_timeout(GESTURE_PAUSE_MS)
    last = page_now(wp)
    after = full_after_last_move(wp, deadline)
    if after is None:
        raise TimeoutError("zoom gesture: no full frame in time")
    full = float(wp.page.evaluate("window.__lastMove")) + after * 1000
    return {"zoom_gesture_longest_frame_gap_s": longest_gap(wp, start, last),
            "zoom_gesture_longest_frame_gap_incl_full_s": longest_gap(wp, start, max(full, last)),
            "zoom_gesture_full_frame_after_s": after,
            "zoom_gesture_points_drawn_max": most_drawn(wp, start, last)}  # fmt: skip


def drag(wp: WidgetPage, x: float, y: float, deadline: float) -> dict[str, float]:
    settle(wp, deadline)
    wp.page.mouse.move(x, y)
    start = page_now(wp)
    t1 = time.perf_counter()
    wp.page.mouse.down()
    for k in range(1, 31):
        wp.page.mouse.move(x + 6 * k, y + 3 * k)
        if time.perf_counter() > deadline:
            raise TimeoutError("drag-pan did not finish in time")
    last = page_now(wp)
    wp.page.mouse.up()
    wp.page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    out = {"drag_pan_s": time.perf_counter() - t1}
    after = full_after_last_move(wp, deadline)
    if after is None:
        raise TimeoutError("drag-pan: no full frame in time")
    full = float(wp.page.evaluate("window.__lastMove")) + after * 1000
    out["drag_longest_frame_gap_s"] = longest_gap(wp, start, last)
    out["drag_longest_frame_gap_incl_release_s"] = longest_gap(wp, start, max(full, last))
    out["drag_full_frame_after_s"] = after
    out["points_drawn_while_moving_max"] = most_drawn(wp, start, last)
    return out


def most_drawn(wp: WidgetPage, start: float, stop: float) -> int:
    """The most points one draw call covered between ``start`` and ``stop`` (page times)."""
    js = f"window.__counts.filter(([t]) => t >= {start} && t <= {stop}).map(([, c]) => c)"
    counts = wp.page.evaluate(js)
    return int(max(counts)) if counts else 0
