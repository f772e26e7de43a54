// EmbeddingMap in the page: regl-scatterplot (WebGL) for the images, an SVG overlay above it
// for the prompt markers, a lone selected point and the selection count. Points arrive as
// binary chunks ({type: "points"}); the selection goes back as one uint32 buffer; hovering a
// point asks the kernel for that image's thumbnail. Every user string is set as textContent.
// While the camera moves, large maps draw a fixed sample of their points (LevelOfDetail).
const LIB_KEY = "__clipvizReglScatterplot_1_16_0";
const SVG = "http://www.w3.org/2000/svg";
const MODES = [["pan", "pan / zoom"], ["lasso", "lasso"], ["box", "box"]];
// In software GL a frame costs a fixed part (canvas passes, the read-back into the visible
// canvas) plus a part that grows with the points drawn: measured on a loaded 2-core machine,
// a frame of 2k points 0.27 s, 25k 0.32 s, 100k 0.45 s (and 1M several seconds).
const LOD_POINTS = 20000;
const LOD_IDLE_MS = 250; // after a wheel zoom, camera still this long: draw every point

function library(model) {
  // The vendored bundle is evaluated once per page, whatever the number of maps.
  if (!globalThis[LIB_KEY]) {
    const blob = new Blob([model.get("_lib")], { type: "text/javascript" });
    globalThis[LIB_KEY] = import(URL.createObjectURL(blob));
  }
  return globalThis[LIB_KEY];
}

function node(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function cssColour(el, name, fallback) {
  // Resolve a theme variable ("white", "#111", "rgb(..)") to #rrggbb for WebGL.
  const value = getComputedStyle(el).getPropertyValue(name).trim() || fallback;
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.fillStyle = fallback;
  ctx.fillStyle = value;
  return ctx.fillStyle.startsWith("#") ? ctx.fillStyle : fallback;
}

function typed(dataView, dtype) {
  const Type = { float32: Float32Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array }[dtype];
  const { buffer, byteOffset, byteLength } = dataView;
  if (byteOffset % Type.BYTES_PER_ELEMENT === 0) return new Type(buffer, byteOffset, byteLength / Type.BYTES_PER_ELEMENT);
  return new Type(buffer.slice(byteOffset, byteOffset + byteLength));
}

function rowsOf(model) {
  const dv = model.get("selected");
  return dv && dv.byteLength ? Array.from(typed(dv, "uint32")) : [];
}

function pointSize(n) {
  return n <= 20000 ? 6 : n <= 200000 ? 3 : 2;
}

function buildDom(el) {
  el.classList.add("clipviz-map-view");
  const bar = node("div", "clipviz-map-toolbar");
  const modes = MODES.map(([mode, label]) => {
    const b = node("button", "clipviz-map-mode", label);
    b.dataset.mode = mode;
    return b;
  });
  const fit = node("button", "clipviz-map-fit", "fit");
  fit.title = "fit the view to all points";
  const colour = node("select", "clipviz-map-colour");
  for (const [v, t] of [["predicted", "colour: predicted"], ["true", "colour: true label"]]) {
    const o = node("option", "", t);
    o.value = v;
    colour.append(o);
  }
  const method = node("span", "clipviz-map-method");
  const count = node("span", "clipviz-map-count");
  bar.append(...modes, fit, colour, method, count);
  const stage = node("div", "clipviz-map-stage");
  const canvas = node("canvas", "clipviz-map-canvas");
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("class", "clipviz-map-overlay");
  const legend = node("div", "clipviz-map-legend");
  const tip = node("div", "clipviz-map-tip");
  const tipImg = node("img", "clipviz-map-tip-img");
  const tipText = node("div", "clipviz-map-tip-text");
  tip.append(tipImg, tipText);
  stage.append(canvas, overlay, legend, tip);
  el.append(bar, stage);
  return { bar, modes, fit, colour, method, count, stage, canvas, overlay, legend, tip, tipImg, tipText };
}

function starPath(r) {
  let d = "";
  for (let k = 0; k < 10; k++) {
    const a = (Math.PI / 5) * k - Math.PI / 2;
    const rr = k % 2 ? r * 0.45 : r;
    d += `${k ? "L" : "M"}${(rr * Math.cos(a)).toFixed(2)},${(rr * Math.sin(a)).toFixed(2)}`;
  }
  return d + "Z";
}

function sampleRows(n, m) {
  // m of the rows 0..n-1 by a seeded partial Fisher-Yates shuffle: a uniform random sample,
  // the same for the same n on every page; ascending, so they draw in the usual order.
  const rows = new Uint32Array(n);
  for (let i = 0; i < n; i++) rows[i] = i;
  let a = n >>> 0;
  for (let i = 0; i < m; i++) {
    a = (a + 0x6d2b79f5) | 0; // mulberry32
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const j = i + (((t ^ (t >>> 14)) >>> 0) % (n - i));
    const r = rows[i]; rows[i] = rows[j]; rows[j] = r;
  }
  return rows.subarray(0, m).sort();
}

class LevelOfDetail {
  // regl-scatterplot's own filter() narrows the points drawn to the sample and every selected
  // point (a filter keeps only the selected points it contains); unfilter() brings all back.
  // Hit tests follow the filter, so lasso, box and clicks restore everything before they run.
  constructor(sp) {
    this.sp = sp;
    this.sample = null;
    this.rows = null; // sample plus selection, as the plain array filter() wants
    this.active = false;
    this.timer = 0;
    this.stats = { enters: 0, restores: 0, restoredAt: null };
  }

  reset(n) {
    // new points were drawn (the library dropped any filter): a sample for this n
    clearTimeout(this.timer);
    this.timer = 0;
    this.active = false;
    this.sample = n > 2 * LOD_POINTS ? sampleRows(n, LOD_POINTS) : null;
    this.rows = null;
  }

  selectionChanged(n, selected) {
    this.rows = null;
    if (!this.sample) return;
    const keep = new Uint8Array(n);
    for (const r of this.sample) keep[r] = 1;
    for (const r of selected) if (r < n) keep[r] = 1;
    const rows = [];
    for (let i = 0; i < n; i++) if (keep[i]) rows.push(i);
    this.rows = rows;
  }

  enter(held) {
    // held: a drag-pan, whose release restores every point (a pause mid-drag does not: the
    // next move would wait behind a full frame)
    if (!this.rows) return; // small maps draw every point
    this.lastMove = performance.now();
    if (held) { clearTimeout(this.timer); this.timer = 0; } else if (!this.timer) this.arm(LOD_IDLE_MS);
    if (this.active) return;
    this.active = true;
    this.stats.enters += 1;
    this.sp.filter(this.rows, { preventEvent: true });
  }

  arm(ms) {
    clearTimeout(this.timer);
    const id = setTimeout(() => requestAnimationFrame(() => this.timer === id && this.settle()), ms);
    this.timer = id;
  }

  settle() {
    // Wheel and mouse moves are dispatched at the start of a frame, before its animation
    // callbacks: a move that waited behind a long frame has arrived by now, a timer alone
    // would have restored every point in the middle of a drag.
    const still = performance.now() - this.lastMove;
    if (still < LOD_IDLE_MS) this.arm(LOD_IDLE_MS - still);
    else this.restore();
  }

  restore() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (!this.active) return;
    this.active = false;
    this.stats.restores += 1;
    this.stats.restoredAt = performance.now();
    this.sp.unfilter({ preventEvent: true });
    // a camera "change" makes the library recount the points in view, which sets the density
    // opacity: counted on the sample it would leave all points drawn too opaque
    this.sp.view(this.sp.get("cameraView"), { preventEvent: true });
  }
}

function makeRenderer(lib) {
  // The library asks for an antialiased context that preserves its buffer. Its points are drawn
  // into a float framebuffer and reach this context only as one full-screen triangle, copied to
  // the visible canvas in the same task: multisampling changes no pixel and preserving the
  // buffer keeps nothing we read, but in software GL both cost every frame (resolving 4 samples
  // per pixel). The first getContext call fixes a canvas's attributes, so ask for them first.
  const canvas = document.createElement("canvas");
  canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: false });
  return lib.createRenderer({ canvas });
}

function toScreen(view, x, y, width, height) {
  // clip = projection(1/aspect, 1) * view * [x, y, 0, 1], as regl-scatterplot draws
  const cx = (view[0] * x + view[4] * y + view[12]) / (width / height);
  const cy = view[1] * x + view[5] * y + view[13];
  return [(width * (cx + 1)) / 2, height * (0.5 - cy / 2)];
}

class MapView {
  constructor(model, el, lib) {
    this.model = model;
    this.dom = buildDom(el);
    this.points = null; // {revision, x, y, z}
    this.incoming = null; // chunks being assembled
    this.hovered = -1;
    this.mouse = [0, 0];
    this.mode = "pan";
    this.stats = { draws: 0, firstDrawAt: null, pointsAt: null };
    this.bg = cssColour(el, "--jp-layout-color0", "#ffffff");
    const { width, height } = this.size();
    // Our own renderer, sized to the map: the default one is as large as the window, and every
    // frame clears, blends and reads back all of its pixels.
    this.renderer = makeRenderer(lib);
    this.renderer.resize(width, height);
    this.sp = lib.default({
      renderer: this.renderer, canvas: this.dom.canvas, width, height, backgroundColor: this.bg,
      pointSize: 4, opacityBy: "density", colorBy: "valueZ", pointColor: ["#4c78a8"],
      pointColorActive: "#ff7f0e", opacityInactiveScale: 0.6, lassoType: "freeform",
      lassoColor: cssColour(el, "--jp-ui-font-color1", "#333333"), showReticle: false,
      deselectOnDblClick: true, deselectOnEscape: true,
    });
    this.view = this.sp.get("cameraView");
    this.lod = new LevelOfDetail(this.sp);
    this.wire();
    this.wireDetail();
    this.syncAll();
  }

  size() {
    const r = this.dom.stage.getBoundingClientRect();
    return { width: Math.max(50, Math.round(r.width)), height: Math.max(50, Math.round(r.height)) };
  }

  wire() {
    const { sp, model, dom } = this;
    sp.subscribe("select", ({ points }) => this.sendSelection(points));
    sp.subscribe("deselect", () => this.sendSelection([]));
    sp.subscribe("pointover", (i) => this.hover(i));
    sp.subscribe("pointout", () => this.hover(-1));
    sp.subscribe("view", ({ view }) => {
      this.view = view;
      this.movedAt = performance.now(); // a frame of a moved camera (a hover's frame is not)
      this.drawOverlay();
      if (this.lod.active) this.lod.enter(this.panning);
    });
    sp.subscribe("draw", () => { this.stats.draws += 1; });
    dom.canvas.addEventListener("mousemove", (e) => { this.mouse = [e.offsetX, e.offsetY]; });
    for (const b of dom.modes) b.addEventListener("click", () => this.setMode(b.dataset.mode));
    dom.fit.addEventListener("click", () => this.fit());
    dom.colour.addEventListener("change", () => { model.set("color_by", dom.colour.value); model.save_changes(); });
    this.resize = new ResizeObserver(() => {
      this.box = this.size();
      this.renderer.resize(this.box.width, this.box.height);
      this.sp.set(this.box);
      this.drawOverlay();
    });
    this.resize.observe(dom.stage);
    this.onMsg = (msg, buffers) => this.message(msg, buffers);
    model.on("msg:custom", this.onMsg);
    this.onChange = () => this.syncAll();
    for (const k of ["categories", "colors", "present", "prompts", "prompt_xy", "prompt_colors", "color_by", "has_true", "method", "pending", "height"]) model.on(`change:${k}`, this.onChange);
    this.onSelected = () => this.applySelection();
    model.on("change:selected", this.onSelected);
    this.setMode("pan");
  }

  wireDetail() {
    // Wheel and drag-pan move the camera: draw the sample from their first frame on. A button
    // pressed in lasso or box mode, and every release, brings all points back at once.
    const { lod, dom } = this;
    const onCanvas = (e) => e.target === dom.canvas; // not the legend above it
    dom.stage.addEventListener("wheel", (e) => onCanvas(e) && this.wheel(e), { capture: true, passive: true });
    dom.stage.addEventListener("mousedown", (e) => {
      if (e.button !== 0 || !onCanvas(e)) return;
      if (this.mode === "pan") { this.panning = true; this.hover(-1); }
      else lod.restore();
    }, true);
    this.onWindowUp = () => { this.panning = false; lod.restore(); };
    this.onWindowMove = (e) => {
      if (!this.panning) return;
      if (e.buttons & 1) lod.enter(true);
      else this.onWindowUp(); // released outside the page
    };
    window.addEventListener("mousemove", this.onWindowMove, true);
    window.addEventListener("mouseup", this.onWindowUp, true);
  }

  wheel(e) {
    // A notch after a still moment draws every point at once (the sample would only delay the
    // full frame by LOD_IDLE_MS); a notch that follows the previous notch or camera frame within
    // that time is part of a gesture and draws the sample. Timed against the last frame too: in
    // software GL a notch can wait behind a long frame, so notch times alone look far apart.
    const last = Math.max(this.lastWheelAt ?? -Infinity, this.movedAt ?? -Infinity);
    this.lastWheelAt = e.timeStamp;
    this.hover(-1);
    if (!this.lod.active && e.timeStamp - last > LOD_IDLE_MS) return;
    this.lod.enter();
  }

  setMode(mode) {
    this.mode = mode;
    if (mode === "pan") this.sp.set({ mouseMode: "panZoom" });
    else this.sp.set({ mouseMode: "lasso", lassoType: mode === "box" ? "rectangle" : "freeform" });
    for (const b of this.dom.modes) b.classList.toggle("clipviz-active", b.dataset.mode === mode);
  }

  fit() {
    this.sp.zoomToOrigin({ transition: false });
  }

  syncAll() {
    const { model, dom } = this;
    dom.stage.style.height = `${model.get("height")}px`;
    const colors = model.get("colors");
    this.sp.set({ pointColor: colors.length ? colors : ["#4c78a8"] });
    dom.colour.value = model.get("color_by");
    dom.colour.disabled = !model.get("has_true");
    const m = (model.get("method") || "no projection yet").toUpperCase();
    const p = model.get("pending");
    dom.method.textContent = p ? `${m} · ${p.toUpperCase()} computing…` : m;
    this.drawLegend();
    this.buildPrompts();
    this.drawOverlay();
  }

  drawLegend() {
    const names = this.model.get("categories");
    const colors = this.model.get("colors");
    const legend = this.dom.legend;
    legend.replaceChildren();
    for (const code of this.model.get("present")) {
      if (code < 0) { legend.append(node("div", "clipviz-map-legend-more", `${-code} classes, first 30 shown`)); continue; }
      const row = node("div", "clipviz-map-legend-row");
      const sw = node("span", "clipviz-map-swatch");
      sw.style.background = colors[code];
      row.append(sw, node("span", "clipviz-map-legend-name", names[code]));
      legend.append(row);
    }
    legend.style.display = legend.childElementCount ? "" : "none";
  }

  message(msg, buffers) {
    if (msg.type === "points") this.receivePoints(msg, buffers);
    else if (msg.type === "thumbnail") this.showThumbnail(msg, buffers);
  }

  receivePoints(msg, buffers) {
    let inc = this.incoming;
    if (!inc || inc.revision !== msg.revision || inc.fields.join() !== msg.fields.join()) {
      inc = this.incoming = { revision: msg.revision, fields: msg.fields, got: 0, fit: msg.fit, arrays: {} };
      msg.fields.forEach((f, k) => {
        const Type = typed(new DataView(new ArrayBuffer(0)), msg.dtypes[k]).constructor;
        inc.arrays[f] = new Type(msg.total);
      });
    }
    msg.fields.forEach((f, k) => inc.arrays[f].set(typed(buffers[k], msg.dtypes[k]), msg.start));
    inc.got += 1;
    if (inc.got < msg.chunks) return;
    this.incoming = null;
    const codesOnly = !("x" in inc.arrays);
    if (codesOnly) {
      if (!this.points || this.points.revision !== inc.revision) return; // stale colours
      this.points.z = inc.arrays.z;
    } else {
      this.points = { revision: inc.revision, ...inc.arrays };
    }
    this.draw(inc.fit, codesOnly);
  }

  async draw(fit, codesOnly) {
    // Camera, sizes and an empty selection are set before the points go in: every change
    // asks the library for a frame, and in software GL each frame costs a full read-back, so
    // the first frame with the points is drawn as it will stay (not redrawn for the fit).
    const p = this.points;
    const n = p.x.length;
    this.stats.pointsAt = performance.now();
    this.setSizes(rowsOf(this.model).length);
    if (fit) this.fit();
    if (!codesOnly) this.lod.reset(0); // no sample while new positions load (the draw drops any filter)
    await this.sp.draw({ x: p.x, y: p.y, z: p.z }, { zDataType: "categorical", preventFilterReset: codesOnly });
    if (!codesOnly) this.lod.reset(n);
    this.applySelection();
    if (this.stats.firstDrawAt === null) {
      this.stats.firstDrawAt = performance.now();
      this.stats.drawsAtFirst = this.stats.draws;
    }
    this.drawOverlay();
  }

  setSizes(selected) {
    // set() only when a value changes: each call costs a frame
    const base = pointSize(this.points ? this.points.x.length : 0);
    const sizes = { pointSize: base, pointSizeSelected: selected === 1 ? base * 2 + 8 : 1 };
    if (this.sizes && this.sizes.pointSize === sizes.pointSize
        && this.sizes.pointSizeSelected === sizes.pointSizeSelected) return;
    this.sizes = sizes;
    this.sp.set(sizes);
  }

  applySelection() {
    this.lod.restore(); // select() under a filter would drop the selected points it hides
    const rows = rowsOf(this.model);
    this.setSizes(rows.length);
    if (this.points) {
      if (rows.length) this.sp.select(rows, { preventEvent: true });
      else if (this.sp.get("selectedPoints").length) this.sp.deselect({ preventEvent: true });
    }
    this.rows = rows;
    this.lod.selectionChanged(this.points ? this.points.x.length : 0, rows);
    this.dom.count.textContent = rows.length ? `${rows.length.toLocaleString()} selected` : "";
    this.drawOverlay();
  }

  sendSelection(points) {
    const rows = Uint32Array.from(points);
    this.rows = Array.from(rows);
    this.lod.selectionChanged(this.points.x.length, this.rows);
    this.setSizes(rows.length);
    this.dom.count.textContent = rows.length ? `${rows.length.toLocaleString()} selected` : "";
    this.model.send({ type: "select", n: rows.length }, undefined, [rows.buffer]);
    this.drawOverlay();
  }

  buildPrompts() {
    // Prompt markers are made once per change of the prompts; a camera move only re-places them.
    const dv = this.model.get("prompt_xy");
    this.promptXy = dv && dv.byteLength ? typed(dv, "float32") : new Float32Array(0);
    const colours = this.model.get("prompt_colors");
    const star = starPath(9);
    this.promptNodes = this.model.get("prompts").map((text, k) => {
      const g = document.createElementNS(SVG, "g");
      g.setAttribute("class", "clipviz-map-prompt");
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", star);
      path.setAttribute("fill", colours[k] || "#888");
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("y", -12);
      label.setAttribute("text-anchor", "middle");
      label.textContent = text;
      g.append(path, label);
      return g;
    });
    this.ring = document.createElementNS(SVG, "circle");
    this.ring.setAttribute("class", "clipviz-map-ring");
    this.ring.setAttribute("r", 11);
    this.dom.overlay.replaceChildren(this.ring, ...this.promptNodes);
  }

  drawOverlay() {
    const { width, height } = this.box || this.size();
    const svg = this.dom.overlay;
    if (svg.getAttribute("width") !== `${width}` || svg.getAttribute("height") !== `${height}`) {
      svg.setAttribute("width", width);
      svg.setAttribute("height", height);
    }
    const view = this.view;
    if (!view || !this.promptNodes) return;
    const rows = this.rows || [];
    const lone = rows.length === 1 && this.points && rows[0] < this.points.x.length;
    this.ring.style.display = lone ? "" : "none";
    if (lone) {
      const [sx, sy] = toScreen(view, this.points.x[rows[0]], this.points.y[rows[0]], width, height);
      this.ring.setAttribute("cx", sx);
      this.ring.setAttribute("cy", sy);
    }
    const xy = this.promptXy;
    this.promptNodes.forEach((g, k) => {
      const [sx, sy] = toScreen(view, xy[2 * k], xy[2 * k + 1], width, height);
      g.setAttribute("transform", `translate(${sx.toFixed(1)},${sy.toFixed(1)})`);
    });
  }

  hover(i) {
    // The library hit-tests every mouse move, a drag-pan's too: while the camera moves no
    // thumbnail is asked for (each would come back as a message, an image decode and a layout).
    if (i >= 0 && (this.panning || this.lod.active)) i = -1;
    if (i === this.hovered && i < 0) return;
    this.hovered = i;
    clearTimeout(this.hoverTimer);
    if (i < 0) { this.dom.tip.style.display = "none"; return; }
    this.hoverTimer = setTimeout(() => this.model.send({ type: "hover", index: i }), 60);
  }

  showThumbnail(msg, buffers) {
    if (msg.index !== this.hovered) return; // the mouse moved on
    const { tip, tipImg, tipText } = this.dom;
    if (this.tipUrl) URL.revokeObjectURL(this.tipUrl);
    this.tipUrl = null;
    if (buffers.length && msg.mime) {
      this.tipUrl = URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime }));
      tipImg.src = this.tipUrl;
      tipImg.style.display = "";
    } else tipImg.style.display = "none";
    tipText.replaceChildren(...msg.lines.map((line) => node("div", "", line)));
    const { width } = this.box || this.size();
    const [mx, my] = this.mouse;
    tip.style.left = `${mx + 180 > width ? mx - 170 : mx + 14}px`;
    tip.style.top = `${Math.max(0, my - 20)}px`;
    tip.style.display = "block";
  }

  destroy() {
    this.model.off("msg:custom", this.onMsg);
    this.model.off(null, this.onChange);
    this.model.off("change:selected", this.onSelected);
    this.resize.disconnect();
    this.lod.reset(0);
    window.removeEventListener("mousemove", this.onWindowMove, true);
    window.removeEventListener("mouseup", this.onWindowUp, true);
    this.sp.destroy();
    this.renderer.destroy(); // ours: the scatterplot leaves a renderer it was given alone
  }
}

export default {
  async render({ model, el }) {
    // Ask for the points first: the kernel answers while the page evaluates the renderer (and
    // whatever else it has to evaluate), and the points wait here for the view.
    const early = [];
    const keep = (msg, buffers) => early.push([msg, buffers]);
    model.on("msg:custom", keep);
    model.send({ type: "request_points" });
    let view;
    try {
      view = new MapView(model, el, await library(model));
    } finally {
      model.off("msg:custom", keep);
    }
    el.__clipvizMap = view; // tests and benchmarks read the renderer and its stats here
    for (const [msg, buffers] of early) view.message(msg, buffers);
    return () => view.destroy();
  },
};
