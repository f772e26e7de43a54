"""Show a real Python anywidget in headless chromium without a kernel, messages both ways.

The page holds a minimal widget model (get/set/on/off/save_changes/send) fed with the widget's
real ``get_state()``; what the Python widget sends (trait updates, custom messages with binary
buffers) is delivered to the page, and what the page sends (``save_changes``, ``model.send``)
queues in ``window.__outbox`` until ``pump()`` hands it to the Python widget, exactly as the
comm would. Used by tests/browser/test_map_browser.py and benchmarks/map_render.py (the same
harness for clipviz's map and jupyter-scatter, so their timings compare).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

HOST = "http://clipviz.test"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body { margin: 0; font-family: sans-serif; } #root { width: __W__px; } __CSS__
</style></head><body><div id="root"></div><script type="module">
const decode = (v) => {
  if (v && typeof v === "object" && "__b64__" in v) {
    const bin = atob(v.__b64__); const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return new DataView(u8.buffer);
  }
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)]));
  return v;
};
const b64 = (buf) => {
  const u8 = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let s = ""; for (let i = 0; i < u8.length; i += 8192) s += String.fromCharCode(...u8.subarray(i, i + 8192));
  return btoa(s);
};
window.__outbox = [];
window.__bridge = {
  async mount(state, esm, css) {
    const handlers = {}; const dirty = {};
    const st = decode(state);
    const fire = (e, ...a) => (handlers[e] || []).slice().forEach((f) => f(...a));
    const model = {
      get: (k) => st[k],
      set: (k, v) => { st[k] = v; dirty[k] = v; fire("change:" + k); },
      on: (e, f) => { for (const n of e.split(" ")) (handlers[n] = handlers[n] || []).push(f); },
      off: (e, f) => { for (const n of Object.keys(handlers)) if (!e || n === e) handlers[n] = handlers[n].filter((g) => !f || g !== f); },
      save_changes: () => { const s = { ...dirty }; for (const k in dirty) delete dirty[k];
        window.__outbox.push({ kind: "state", state: JSON.parse(JSON.stringify(s, (k, v) => ArrayBuffer.isView(v) ? { __b64__: b64(v) } : v)) }); },
      send: (content, callbacks, buffers) => window.__outbox.push({ kind: "custom", content, buffers: (buffers || []).map(b64) }),
    };
    window.__model = model;
    window.__deliver = (msg) => {
      const m = decode(msg);
      if (m.kind === "update") for (const [k, v] of Object.entries(m.state)) { st[k] = v; fire("change:" + k); }
      else fire("msg:custom", m.content, m.buffers);
    };
    const style = document.createElement("style"); style.textContent = css; document.head.append(style);
    const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
    const mod = await import(url);
    window.__t0 = performance.now();
    await mod.default.render({ model, el: document.getElementById("root") });
    window.__mounted = performance.now();
  },
};
window.__ready = true;
</script></body></html>"""


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__b64__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__b64__" in value:
        return memoryview(base64.b64decode(value["__b64__"]))
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class WidgetPage:
    """One anywidget mounted in a fresh chromium page, bridged to its Python object."""

    def __init__(
        self,
        browser: Any,
        widget: Any,
        *,
        width: int = 900,
        height: int = 700,
        page_css: str = "",
        init_script: str = "",
    ) -> None:
        from ipywidgets.widgets.widget import _put_buffers

        self.widget = widget
        self._put_buffers = _put_buffers
        self.page = browser.new_page(viewport={"width": width + 40, "height": height})
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        html = PAGE.replace("__W__", str(width)).replace("__CSS__", page_css)
        if init_script:  # e.g. a benchmark's frame and draw-call probes, before any script
            self.page.add_init_script(init_script)
        self.page.route(
            f"{HOST}/**", lambda route: route.fulfill(body=html, content_type="text/html")
        )
        self.page.goto(f"{HOST}/index.html")
        self.page.wait_for_function("window.__ready === true")
        widget._send = self._to_page  # what the comm would carry to the front end
        state = {k: v for k, v in widget.get_state().items() if k not in ("_esm", "_css")}
        esm, css = _asset(widget, "_esm"), _asset(widget, "_css")
        self.page.evaluate(
            "([s, e, c]) => window.__bridge.mount(s, e, c)", [_encode(state), esm, css]
        )

    def _to_page(self, msg: dict[str, Any], buffers: Any = None) -> None:
        method = msg.get("method")
        if method == "update":
            state = dict(msg["state"])
            self._put_buffers(state, msg.get("buffer_paths", []), list(buffers or []))
            payload = {"kind": "update", "state": state}
        elif method == "custom":
            payload = {"kind": "custom", "content": msg["content"], "buffers": list(buffers or [])}
        else:
            return
        self.page.evaluate("(m) => window.__deliver(m)", _encode(payload))

    def pump(self, rounds: int = 20) -> int:
        """Hand the page's queued messages to the Python widget (and its answers back)."""
        handled = 0
        for _ in range(rounds):
            out = self.page.evaluate("window.__outbox.splice(0)")
            if not out:
                break
            for item in out:
                if item["kind"] == "state":
                    self.widget.set_state(_decode(item["state"]))
                else:
                    buffers = [memoryview(base64.b64decode(b)) for b in item["buffers"]]
                    self.widget._handle_custom_msg(item["content"], buffers)
                handled += 1
        return handled

    def close(self) -> None:
        self.page.close()


def _asset(widget: Any, name: str) -> str:
    value = getattr(widget, name)
    if isinstance(value, Path):
        return value.read_text(encoding="utf-8")
    path = Path(str(value))
    if len(str(value)) < 500 and path.exists():
        return path.read_text(encoding="utf-8")
    return str(value)
