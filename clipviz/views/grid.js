// clipviz prediction grid (anywidget ESM, hand-written, no build step).
// Python sends: all thumbnails once (one binary buffer + uint32 offsets) and the visible page
// as a small list of dicts. Every user string is set with textContent, never parsed as markup.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

function thumbStore(model) {
  // Blob URLs made on demand, one per image index, revoked when the thumbnails change.
  let urls = new Map();
  return {
    url(i) {
      if (urls.has(i)) return urls.get(i);
      const buf = model.get("thumbs");
      const off = model.get("thumb_offsets");
      if (!buf || !off || off.byteLength < 4 * (i + 2)) return null;
      const start = off.getUint32(4 * i, true);
      const end = off.getUint32(4 * (i + 1), true);
      if (end <= start) return null;
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset + start, end - start);
      const url = URL.createObjectURL(new Blob([bytes], { type: model.get("thumb_mime") }));
      urls.set(i, url);
      return url;
    },
    reset() {
      for (const u of urls.values()) URL.revokeObjectURL(u);
      urls = new Map();
    },
  };
}

function toolbar(model) {
  const bar = el("div", "clipviz-grid-toolbar");
  const sort = el("select", "clipviz-grid-sort");
  sort.append(
    option("input", "input order"),
    option("confidence", "most confident"),
    option("confidence_asc", "least confident"),
    option("similarity", "similarity to prompt"),
  );
  const prompt = el("select", "clipviz-grid-prompt");
  const mistakes = el("input", "clipviz-grid-mistakes");
  mistakes.type = "checkbox";
  const mistakesLabel = el("label", "clipviz-grid-mistakes-label");
  mistakesLabel.append(mistakes, document.createTextNode(" mistakes only"));
  const selected = el("input", "clipviz-grid-selected-only");
  selected.type = "checkbox";
  const selectedLabel = el("label");
  selectedLabel.append(selected, document.createTextNode(" selected only"));
  const prev = el("button", "clipviz-grid-prev", "‹ prev");
  const next = el("button", "clipviz-grid-next", "next ›");
  const pageInfo = el("span", "clipviz-grid-page");
  bar.append(sort, prompt, mistakesLabel, selectedLabel, prev, pageInfo, next);

  const set = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };
  sort.addEventListener("change", () => set("sort_by", sort.value));
  prompt.addEventListener("change", () => set("sort_prompt", prompt.value));
  mistakes.addEventListener("change", () => set("mistakes_only", mistakes.checked));
  selected.addEventListener("change", () => set("selected_only", selected.checked));
  prev.addEventListener("click", () => set("page", Math.max(0, model.get("page") - 1)));
  next.addEventListener("click", () =>
    set("page", Math.min(model.get("n_pages") - 1, model.get("page") + 1)),
  );

  function update() {
    sort.value = model.get("sort_by");
    prompt.replaceChildren(...model.get("classnames").map((c) => option(c, c)));
    prompt.value = model.get("sort_prompt");
    prompt.style.display = model.get("sort_by") === "similarity" ? "" : "none";
    mistakes.checked = model.get("mistakes_only");
    mistakesLabel.style.display = model.get("has_labels") ? "" : "none";
    selected.checked = model.get("selected_only");
    const page = model.get("page");
    const pages = model.get("n_pages");
    pageInfo.textContent = `page ${page + 1} / ${pages} · ${model.get("n_shown")} of ${model.get("n_total")} images`;
    prev.disabled = page <= 0;
    next.disabled = page >= pages - 1;
  }
  return { bar, update };
}

function cell(item, thumbs, selected) {
  const c = el("div", "clipviz-cell");
  c.dataset.id = item.id;
  if (item.correct === true) c.classList.add("clipviz-correct");
  if (item.correct === false) c.classList.add("clipviz-wrong");
  if (selected.has(item.id)) c.classList.add("clipviz-selected");
  const img = el("img", "clipviz-thumb");
  img.alt = item.id;
  const url = thumbs.url(item.i);
  if (url) img.src = url;
  c.append(img, el("div", "clipviz-cell-id", item.id));
  const top = item.topk.length ? item.topk[0] : null;
  c.append(el("div", "clipviz-cell-label", top ? top[0] : ""));
  const list = el("ol", "clipviz-topk");
  for (const [name, p] of item.topk) {
    const row = el("li", "clipviz-topk-row");
    const bar = el("span", "clipviz-topk-bar");
    bar.style.width = `${Math.round(100 * p)}%`;
    row.append(bar, el("span", "clipviz-topk-name", name), el("span", "clipviz-topk-prob", p.toFixed(3)));
    list.append(row);
  }
  c.append(list);
  if (item.true !== undefined) c.append(el("div", "clipviz-cell-true", `true: ${item.true}`));
  if (item.score !== undefined) c.append(el("div", "clipviz-cell-score", `score ${item.score.toFixed(3)}`));
  return c;
}

function render({ model, el: root }) {
  const thumbs = thumbStore(model);
  const wrap = el("div", "clipviz-grid-wrap");
  const { bar, update: updateBar } = toolbar(model);
  const banner = el("div", "clipviz-grid-results");
  const bannerText = el("span", "clipviz-grid-results-title");
  const clear = el("button", "clipviz-grid-results-clear", "show all");
  clear.addEventListener("click", () => model.send({ type: "clear_results" }));
  banner.append(bannerText, clear);
  const grid = el("div", "clipviz-grid");
  wrap.append(bar, banner, grid);
  root.append(wrap);

  grid.addEventListener("click", (event) => {
    const target = event.target.closest(".clipviz-cell");
    if (!target) return;
    const id = target.dataset.id;
    const current = model.get("selection");
    let next;
    if (event.shiftKey || event.ctrlKey || event.metaKey) {
      next = current.includes(id) ? current.filter((x) => x !== id) : [...current, id];
    } else {
      next = current.length === 1 && current[0] === id ? [] : [id];
    }
    model.set("selection", next);
    model.save_changes();
  });

  function drawCells() {
    const selected = new Set(model.get("selection"));
    grid.replaceChildren(...model.get("items").map((item) => cell(item, thumbs, selected)));
  }
  function drawSelection() {
    const selected = new Set(model.get("selection"));
    for (const c of grid.children) c.classList.toggle("clipviz-selected", selected.has(c.dataset.id));
  }
  function drawBanner() {
    const title = model.get("results_title");
    banner.style.display = title ? "" : "none";
    bannerText.textContent = title ? `results: ${title}` : "";
  }
  const onThumbs = () => {
    thumbs.reset();
    drawCells();
  };
  const onItems = () => {
    updateBar();
    drawBanner();
    drawCells();
  };
  const names = ["sort_by", "sort_prompt", "mistakes_only", "selected_only", "page", "n_pages", "classnames"];
  for (const n of names) model.on(`change:${n}`, updateBar);
  model.on("change:items", onItems);
  model.on("change:results_title", drawBanner);
  model.on("change:selection", drawSelection);
  model.on("change:thumbs", onThumbs);
  onItems();

  return () => {
    for (const n of names) model.off(`change:${n}`, updateBar);
    model.off("change:items", onItems);
    model.off("change:results_title", drawBanner);
    model.off("change:selection", drawSelection);
    model.off("change:thumbs", onThumbs);
    thumbs.reset();
  };
}

export default { render };
