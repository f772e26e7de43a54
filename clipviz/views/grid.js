// clipviz prediction grid (anywidget ESM, hand-written, no build step).
// Python sends the visible page as a small list of dicts; the page asks for the thumbnails it
// lacks and Python answers with their bytes as binary buffers (a page at a time). Every user string is set with textContent, never parsed as markup.

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

function thumbStore(model, onArrive) {
  // Blob URLs of the thumbnails this page has received, by image index. The page asks Python
  // for the ones it lacks (want); replies carry bytes as binary buffers. Kept for recent pages
  // only, so memory stays bounded however many images there are.
  let urls = new Map();
  let asked = new Set();
  const KEEP = 600;
  function onMessage(msg, buffers) {
    if (!msg || msg.type !== "thumbs" || msg.version !== model.get("images_version")) return;
    const buf = buffers && buffers[0];
    if (!buf) return;
    const bytes = buf instanceof DataView ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
    msg.indices.forEach((i, k) => {
      const part = bytes.slice(msg.offsets[k], msg.offsets[k + 1]);
      if (urls.has(i)) URL.revokeObjectURL(urls.get(i));
      urls.set(i, URL.createObjectURL(new Blob([part], { type: msg.mime })));
      asked.delete(i);
    });
    while (urls.size > KEEP) {
      const [oldest, url] = urls.entries().next().value;
      URL.revokeObjectURL(url);
      urls.delete(oldest);
    }
    onArrive(msg.indices);
  }
  model.on("msg:custom", onMessage);
  return {
    url(i) {
      return urls.get(i) || null;
    },
    want(indices) {
      const missing = indices.filter((i) => !urls.has(i) && !asked.has(i));
      if (!missing.length) return;
      for (const i of missing) asked.add(i);
      model.send({ type: "thumbs", indices: missing });
    },
    reset() {
      for (const u of urls.values()) URL.revokeObjectURL(u);
      urls = new Map();
      asked = new Set();
    },
    close() {
      model.off("msg:custom", onMessage);
      this.reset();
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
  // "where": saliency overlays of the page for each image's top-1 prompt or a chosen one
  const where = el("select", "clipviz-grid-where");
  where.title = "where in each image the prompt matches (saliency overlay)";
  bar.append(sort, prompt, where, mistakesLabel, selectedLabel, prev, pageInfo, next);

  const set = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };
  sort.addEventListener("change", () => set("sort_by", sort.value));
  prompt.addEventListener("change", () => set("sort_prompt", prompt.value));
  mistakes.addEventListener("change", () => set("mistakes_only", mistakes.checked));
  selected.addEventListener("change", () => set("selected_only", selected.checked));
  where.addEventListener("change", () => set("where", where.value));
  prev.addEventListener("click", () => set("page", Math.max(0, model.get("page") - 1)));
  next.addEventListener("click", () =>
    set("page", Math.min(model.get("n_pages") - 1, model.get("page") + 1)),
  );

  function update() {
    sort.value = model.get("sort_by");
    prompt.replaceChildren(...model.get("classnames").map((c) => option(c, c)));
    prompt.value = model.get("sort_prompt");
    prompt.style.display = model.get("sort_by") === "similarity" ? "" : "none";
    const names = model.get("classnames");
    where.replaceChildren(
      option("", "where: off"),
      option("top-1", "where: top-1 prompt"),
      ...names.map((c) => option(c, `where: ${c}`)),
    );
    where.value = model.get("where");
    where.style.display = model.get("has_where") ? "" : "none";
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

function titled(node) {
  node.title = node.textContent;
  return node;
}

function pathText(node, text) {
  // An id like "circle/000009.png": a line may break after each "/", so a narrow cell shows
  // "circle/" over "000009.png" rather than "circle/000009.pn" over "g". Text nodes only.
  const parts = String(text).split(/(?<=\/)/);
  parts.forEach((part, i) => {
    node.append(document.createTextNode(part));
    if (i < parts.length - 1) node.append(document.createElement("wbr"));
  });
  return node;
}

function cell(item, thumbs, selected) {
  const c = el("div", "clipviz-cell");
  c.dataset.id = item.id;
  if (item.correct === true) c.classList.add("clipviz-correct");
  if (item.correct === false) c.classList.add("clipviz-wrong");
  if (selected.has(item.id)) c.classList.add("clipviz-selected");
  c.dataset.index = String(item.i);
  const img = el("img", "clipviz-thumb");
  img.alt = item.id;
  const url = thumbs.url(item.i);
  if (url) img.src = url;
  // Full id and label, wrapped (ids often share a long prefix), with the text as a tooltip too.
  c.append(img, titled(pathText(el("div", "clipviz-cell-id"), item.id)));
  const top = item.topk.length ? item.topk[0] : null;
  c.append(titled(el("div", "clipviz-cell-label", top ? top[0] : "")));
  const list = el("ol", "clipviz-topk");
  for (const [name, p] of item.topk) {
    const row = el("li", "clipviz-topk-row");
    const bar = el("span", "clipviz-topk-bar");
    bar.style.width = `${Math.round(100 * p)}%`;
    row.append(bar, titled(el("span", "clipviz-topk-name", name)), el("span", "clipviz-topk-prob", p.toFixed(3)));
    list.append(row);
  }
  c.append(list);
  if (item.true !== undefined) c.append(titled(el("div", "clipviz-cell-true", `true: ${item.true}`)));
  if (item.score !== undefined) c.append(el("div", "clipviz-cell-score", `score ${item.score.toFixed(3)}`));
  return c;
}

function render({ model, el: root }) {
  const thumbs = thumbStore(model, (indices) => {
    const got = new Set(indices);
    for (const c of grid.children) {
      const i = Number(c.dataset.index);
      if (!got.has(i)) continue;
      const img = c.querySelector(".clipviz-thumb");
      if (img) img.src = thumbs.url(i);
    }
  });
  const wrap = el("div", "clipviz-grid-wrap");
  const { bar, update: updateBar } = toolbar(model);
  const banner = el("div", "clipviz-grid-results");
  const bannerText = el("span", "clipviz-grid-results-title");
  const clear = el("button", "clipviz-grid-results-clear", "show all");
  clear.addEventListener("click", () => model.send({ type: "clear_results" }));
  banner.append(bannerText, clear);
  const grid = el("div", "clipviz-grid");
  const markWhere = () => grid.classList.toggle("clipviz-grid-where-on", !!model.get("where"));
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
    const items = model.get("items");
    grid.replaceChildren(...items.map((item) => cell(item, thumbs, selected)));
    thumbs.want(items.map((item) => item.i));
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
  const onImages = () => {
    markWhere();
    thumbs.reset();
    drawCells();
  };
  const onItems = () => {
    updateBar();
    drawBanner();
    drawCells();
  };
  const names = ["sort_by", "sort_prompt", "mistakes_only", "selected_only", "page", "n_pages", "classnames", "where", "has_where"];
  for (const n of names) model.on(`change:${n}`, updateBar);
  model.on("change:items", onItems);
  model.on("change:results_title", drawBanner);
  model.on("change:selection", drawSelection);
  model.on("change:images_version", onImages);
  onItems();

  return () => {
    for (const n of names) model.off(`change:${n}`, updateBar);
    model.off("change:items", onItems);
    model.off("change:results_title", drawBanner);
    model.off("change:selection", drawSelection);
    model.off("change:images_version", onImages);
    thumbs.close();
  };
}

export default { render };
