// clipviz PlotlyFigure: plotly.js figure whose state arrives as plain dicts plus diff messages.
// Hand-written ESM for anywidget, no build. See _plotly_widget.py for the wire format.

const LIBRARY_KEY = "__clipvizPlotly";
const TYPED = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
};
const EVENTS = ["plotly_selected", "plotly_deselect", "plotly_click", "plotly_hover"];
const STATES = new Map(); // figure uid -> {data, layout, rev, views}

// ------------------------------------------------------------------ plotly.js, once per page
function evaluateLibrary(source) {
  // source: the bytes as they arrived (or a string); put into the Blob as they are, so 4.8 MB
  // are neither decoded into a string nor encoded again.
  // A classic <script> from a blob: URL runs where anywidget's own blob: ESM import runs. The
  // wrapper hides CommonJS/AMD names so the bundle sets window.Plotly; a Plotly that was
  // already on the page (another version) is put back afterwards.
  const had = Object.prototype.hasOwnProperty.call(window, "Plotly");
  const previous = window.Plotly;
  const hadName = Object.prototype.hasOwnProperty.call(window, "moduleName");
  window.PlotlyConfig = window.PlotlyConfig || { MathJaxConfig: "local" };
  const parts = ["(function(define, module, exports){\n", source, "\n}).call(window);"];
  const url = URL.createObjectURL(new Blob(parts, { type: "text/javascript" }));
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.onload = () => {
      const Plotly = window.Plotly;
      if (had) window.Plotly = previous;
      if (!hadName) delete window.moduleName;
      URL.revokeObjectURL(url);
      script.remove();
      globalThis.__clipvizPlotlyLoads = (globalThis.__clipvizPlotlyLoads || 0) + 1;
      if (Plotly && Plotly.react) resolve(Plotly);
      else reject(new Error("clipviz: plotly.js ran but defined no Plotly object"));
    };
    script.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("clipviz: the page refused to run plotly.js from a blob: URL (Content-Security-Policy?)"));
    };
    document.head.appendChild(script);
  });
}

async function libraryModel(model) {
  const ref = model.get("_library");
  const id = typeof ref === "string" ? ref.replace(/^IPY_MODEL_/, "") : "";
  // The library model may be created just after this one (Voila creates all models at once).
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      return await model.widget_manager.get_model(id);
    } catch (err) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`clipviz: the plotly.js library widget ${id} never arrived`);
}

function loadPlotly(model) {
  if (!globalThis[LIBRARY_KEY]) {
    globalThis[LIBRARY_KEY] = (async () => {
      const lib = await libraryModel(model);
      return evaluateLibrary(lib.get("source"));
    })();
    globalThis[LIBRARY_KEY].catch(() => { globalThis[LIBRARY_KEY] = undefined; }); // retry later
  }
  return globalThis[LIBRARY_KEY];
}

// ------------------------------------------------------------------ state
const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v)
  && !(v instanceof ArrayBuffer);

function toTyped(spec, buffers) {
  const raw = typeof spec.buffer === "number" ? buffers[spec.buffer] : spec.buffer;
  const Ctor = TYPED[spec.dtype];
  if (!Ctor) throw new Error(`clipviz: unsupported array dtype ${spec.dtype}`);
  const ab = raw.buffer || raw;
  const offset = raw.byteOffset || 0;
  const bytes = raw.byteLength;
  const arr = offset % Ctor.BYTES_PER_ELEMENT === 0
    ? new Ctor(ab, offset, bytes / Ctor.BYTES_PER_ELEMENT)
    : new Ctor(ab.slice(offset, offset + bytes)); // unaligned view: copy once
  if (spec.shape.length !== 2) return arr;
  const [rows, cols] = spec.shape; // 2-D (heatmap z): an array of row views, no copy
  const out = new Array(rows);
  for (let r = 0; r < rows; r++) out[r] = arr.subarray(r * cols, (r + 1) * cols);
  return out;
}

function decode(value, buffers) {
  if (Array.isArray(value)) return value.map((v) => decode(v, buffers));
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 3 && typeof value.dtype === "string" && Array.isArray(value.shape) && "buffer" in value) {
    return toTyped(value, buffers);
  }
  const out = {};
  for (const k of keys) out[k] = decode(value[k], buffers);
  return out;
}

function merge(target, patch) {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || v === undefined) delete target[k];
    else if (isPlainObject(v) && isPlainObject(target[k])) merge(target[k], v);
    else target[k] = v;
  }
}

// Plotly mutates what it is given (ranges, uids, selections): give it fresh objects, but keep
// arrays by reference so Plotly.react sees unchanged data as unchanged.
function clone(v) {
  if (Array.isArray(v)) return v.length && isPlainObject(v[0]) ? v.map(clone) : v;
  if (!isPlainObject(v)) return v;
  const out = {};
  for (const k of Object.keys(v)) out[k] = clone(v[k]);
  return out;
}

function figureState(model) {
  const uid = model.get("_uid");
  let st = STATES.get(uid);
  if (!st) {
    st = {
      data: decode(model.get("_data") || [], []),
      layout: decode(model.get("_layout") || {}, []),
      rev: model.get("_rev") || 0,
      views: new Set(),
      asked: -1,
    };
    STATES.set(uid, st);
  }
  return st;
}

function onMessage(model, st, msg, buffers) {
  if (!msg || typeof msg !== "object") return;
  if (msg.type === "figure") {
    if (msg.rev < st.rev) return;
    st.data = decode(msg.data, buffers);
    st.layout = decode(msg.layout, buffers);
    st.rev = msg.rev;
  } else if (msg.type === "update") {
    if (msg.rev <= st.rev) return;
    if (msg.rev !== st.rev + 1) { // a message was missed: ask for the whole figure (once)
      if (st.asked !== msg.rev) { st.asked = msg.rev; model.send({ type: "sync", rev: st.rev }); }
      return;
    }
    for (const [i, patch] of Object.entries(msg.traces || {})) {
      st.data[+i] = st.data[+i] || {};
      merge(st.data[+i], decode(patch, buffers));
    }
    if (msg.layout) merge(st.layout, decode(msg.layout, buffers));
    st.rev = msg.rev;
  } else {
    return;
  }
  for (const view of st.views) view.redraw();
}

// ------------------------------------------------------------------ events
function pointInfo(pt) {
  const index = pt.pointNumber !== undefined ? pt.pointNumber : pt.pointIndex;
  const plain = (v) => (typeof v === "number" || typeof v === "string" ? v : null);
  return { trace: pt.curveNumber, index, x: plain(pt.x), y: plain(pt.y) };
}

function selectionMessage(gd, st, name, ev) {
  // Indices per trace from the event's points; traces plotly marked as searched (selectedpoints
  // set, maybe empty) are reported too. Sent as int32 buffers: a 100k-point lasso stays small.
  const perTrace = new Map();
  if (name !== "plotly_deselect") (gd.data || []).forEach((trace, i) => {
    if (trace.selectedpoints !== undefined && trace.selectedpoints !== null) perTrace.set(i, []);
  });
  for (const pt of (name !== "plotly_deselect" && ev && ev.points) || []) {
    const index = pt.pointIndex !== undefined ? pt.pointIndex : pt.pointNumber;
    if (typeof index !== "number") continue;
    if (!perTrace.has(pt.curveNumber)) perTrace.set(pt.curveNumber, []);
    perTrace.get(pt.curveNumber).push(index);
  }
  const groups = [];
  const buffers = [];
  st.data.forEach((trace, i) => {
    if (!perTrace.has(i)) { delete trace.selectedpoints; return; }
    const ints = Int32Array.from(perTrace.get(i));
    trace.selectedpoints = Array.from(ints); // mirror the page, so later redraws keep it
    groups.push({ trace: i, buffer: buffers.length });
    buffers.push(ints.buffer);
  });
  let selector = null;
  if (ev && ev.range) selector = { type: "box", range: ev.range };
  else if (ev && ev.lassoPoints) selector = { type: "lasso", points: ev.lassoPoints };
  return [{ type: "event", event: name, groups, selector }, buffers];
}

function wireEvents(gd, model, st) {
  for (const name of EVENTS) {
    gd.on(name, (ev) => {
      if (name === "plotly_selected" || name === "plotly_deselect") {
        const [msg, buffers] = selectionMessage(gd, st, name, ev);
        model.send(msg, undefined, buffers);
      } else if (ev && ev.points && ev.points.length) {
        model.send({ type: "event", event: name, points: ev.points.slice(0, 50).map(pointInfo) });
      }
    });
  }
}

// ------------------------------------------------------------------ widget
function initialize({ model }) {
  const st = figureState(model);
  const handler = (msg, buffers) => onMessage(model, st, msg, buffers);
  model.on("msg:custom", handler);
  return () => {
    model.off("msg:custom", handler);
    STATES.delete(model.get("_uid"));
  };
}

async function render({ model, el }) {
  const st = figureState(model);
  const gd = document.createElement("div");
  gd.className = "clipviz-plotly";
  gd.style.width = "100%";
  el.style.flex = "1 1 auto"; // take the free width of an HBox (plotly autosizes to it)
  el.style.minWidth = "320px"; // side by side with another view, never squeezed to nothing
  el.appendChild(gd);
  let Plotly;
  try {
    Plotly = await loadPlotly(model);
  } catch (err) {
    gd.textContent = String(err && err.message ? err.message : err);
    gd.style.color = "#b00";
    return () => {};
  }
  let chain = Promise.resolve();
  let queued = false;
  let wired = false;
  let disposed = false;
  const draw = () => {
    queued = false;
    if (disposed) return Promise.resolve();
    const config = { responsive: false, ...(model.get("_config") || {}) };
    return Plotly.react(gd, clone(st.data), clone(st.layout), config).then(() => {
      if (!wired) { wired = true; wireEvents(gd, model, st); }
      gd.dataset.rev = String(st.rev); // lets tests wait for a given revision
    });
  };
  const view = {
    redraw() {
      if (queued) return; // several messages before the next frame: draw once
      queued = true;
      // Wait a frame: the messages of one Python callback (prompts, then selection) then
      // cost one Plotly.react, and hidden tabs draw when shown.
      requestAnimationFrame(() => {
        chain = chain.then(draw).catch((err) => console.error("clipviz plotly:", err));
      });
    },
  };
  st.views.add(view);
  view.redraw();
  model.send({ type: "sync", rev: st.rev }); // the kernel answers only if we are behind

  let frame = 0;
  const observer = new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (!disposed && gd.offsetWidth > 0 && gd._fullLayout) Plotly.Plots.resize(gd);
    });
  });
  observer.observe(el);
  return () => {
    disposed = true;
    st.views.delete(view);
    observer.disconnect();
    cancelAnimationFrame(frame);
    Plotly.purge(gd);
  };
}

export default { initialize, render };
