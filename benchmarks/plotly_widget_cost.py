"""Benchmark: what plotly's go.FigureWidget would cost the workbench, against clipviz's PlotlyFigure.

The same figures (the heatmap, the confusion matrix and the reliability diagram, made by the
clipviz views from synthetic data: 300 images x 30 classes) as PlotlyFigure (what the views
use) and as ``go.FigureWidget(figure.to_dict())``. Measured in one run:

- widget state bytes, Python side: every model's ``get_state()`` as JSON plus its binary
  buffers, with the ESM code (FigureWidget: plotly's widgetbundle.js in each model's ``_esm``;
  PlotlyFigure: plotly.min.js once, in the library model) counted apart;
- messages per update: the heatmap's ``z`` replaced at 50 x 20 and 300 x 50 (rows x prompts),
  bytes as the widget's comm sends them (``record_messages``);
- in headless chromium on a Voila page with 1 and with 3 figures: time from navigation to every
  figure drawn, bytes the page received over the kernel websocket, how many times a blob of
  more than 1 MB was made for code (anywidget imports each model's ESM from a ``blob:`` URL;
  PlotlyFigure runs plotly.js from one), anywidget's "Failed to initialize model" errors, and
  whether a Python-side update made after display reaches the plot (within 20 s).

Run: ``nice -n 10 python benchmarks/plotly_widget_cost.py [--repeats 2]``. Writes
benchmarks/results/plotly_widget_cost.json with the load average (a shared 2-core machine:
absolute times are pessimistic; compare the kinds within the run).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "plotly_widget_cost.json"
MARK = -7.0  # the value the update writes into z[0][0]


# ---------------------------------------------------------------------------- the figures
def _views_data() -> dict[str, Any]:
    from clipviz.compute import zero_shot

    rng = np.random.default_rng(0)
    n, c, d = 300, 30, 32
    centres = rng.normal(size=(c, d)).astype(np.float32)
    codes = rng.integers(0, c, n)
    emb = centres[codes] + rng.normal(scale=1.2, size=(n, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    prompts = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    names = [f"class {j}" for j in range(c)]
    pred = zero_shot(emb, prompts, k=5, classnames=names)
    pred.labels = [names[j] for j in codes]
    ids = [f"img{i:04d}" for i in range(n)]
    return {"pred": pred, "ids": ids, "names": names, "codes": codes}


def clipviz_figures(count: int) -> list[Any]:
    """1: the heatmap; 3: heatmap, confusion matrix, reliability diagram (PlotlyFigure each)."""
    from clipviz.compute import calibration, evaluate
    from clipviz.views import MetricsPanel, SimilarityHeatmap
    from clipviz.views.reliability import ReliabilityDiagram

    d = _views_data()
    heat = SimilarityHeatmap(height=420)
    heat.set_data(d["pred"].similarity, d["ids"], d["names"], labels=(d["codes"], d["names"]))
    figures = [heat.figure]
    if count >= 3:
        panel = MetricsPanel()
        panel.set_metrics(evaluate(d["pred"]))
        rel = ReliabilityDiagram()
        rel.set_calibrations([calibration(d["pred"])])
        figures += [panel.figure, rel.figure]
    return figures


def page_figures(kind: str, count: int) -> list[Any]:
    """The page's figures as ``"plotlyfigure"`` (clipviz's) or ``"figurewidget"`` (plotly's)."""
    figures = clipviz_figures(count)
    if kind == "figurewidget":
        import plotly.graph_objects as go

        figures = [go.FigureWidget(f.to_dict()) for f in figures]
    return figures


def replace_z(fig: Any, z: np.ndarray) -> None:
    """The heatmap's data update, the way each widget is meant to be updated."""
    from clipviz.views._plotly_widget import PlotlyFigure

    if isinstance(fig, PlotlyFigure):
        fig.update_traces({0: {"z": z}})
    else:
        fig.data[0].z = z


def demo_page(kind: str, count: int) -> Any:
    """What the benchmark's Voila notebook displays: an update button over the figures."""
    import ipywidgets as w

    figures = page_figures(kind, count)
    button = w.Button(description="update")
    button.add_class("bench-update")

    def update(_: Any) -> None:
        z = np.asarray(figures[0].data[0].z, np.float32).copy()  # (FigureWidget's to_dict: base64)
        z[0, 0] = MARK
        replace_z(figures[0], z)

    button.on_click(update)
    return w.VBox([button, *figures])


# ---------------------------------------------------------------------------- Python side
def _state_bytes(widget: Any) -> tuple[int, int]:
    """(JSON bytes without ``_esm``, ``_esm`` bytes) of one model's state plus its buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(widget.get_state())
    esm = len(str(state.pop("_esm", "")).encode())
    return len(json.dumps(state).encode()) + sum(memoryview(b).nbytes for b in buffers), esm


def state_sizes(kind: str, count: int) -> dict[str, int]:
    """Bytes the page must receive to show the figures: every model's state, ESM apart."""
    figures = page_figures(kind, count)
    models = list(figures)
    if kind == "plotlyfigure":
        models.append(figures[0]._library)  # plotly.min.js, once per kernel
    data = esm = 0
    for m in models:
        d, e = _state_bytes(m)
        data, esm = data + d, esm + e
    if kind == "plotlyfigure":
        esm += len(figures[0]._library.source)  # the library's code travels as state bytes
        data -= len(figures[0]._library.source)
    return {"state_bytes": data, "code_bytes": esm, "total_bytes": data + esm}


def update_messages(kind: str, rows: int, prompts: int) -> dict[str, int]:
    """Messages and bytes sent for one replacement of the heatmap's z (rows x prompts)."""
    from clipviz.views._plotting import record_messages

    rng = np.random.default_rng(1)
    fig = page_figures(kind, 1)[0]
    first = rng.uniform(size=(rows, prompts)).astype(np.float32)
    replace_z(fig, first)  # so the measured update changes values, not the shape
    z = rng.uniform(size=(rows, prompts)).astype(np.float32)
    with record_messages(fig) as sent:
        replace_z(fig, z)
    return {
        "messages": len(sent),
        "json_bytes": sum(j for j, _ in sent),
        "binary_bytes": sum(b for _, b in sent),
        "largest_message_bytes": max((j + b for j, b in sent), default=0),
    }


# ---------------------------------------------------------------------------- browser side
_TRACE_BLOBS = """
(() => {
  const make = URL.createObjectURL.bind(URL);
  window.__codeBlobs = [];
  URL.createObjectURL = (obj) => {
    if (obj instanceof Blob && /javascript/.test(obj.type)) window.__codeBlobs.push(obj.size);
    return make(obj);
  };
})();
"""


def _notebook(kind: str, count: int, folder: Path) -> Path:
    import nbformat

    src = (
        f"import sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r})\n"
        "import plotly_widget_cost as bench\n"
        f"bench.demo_page({kind!r}, {count})"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)])
    path = folder / f"cost_{kind}_{count}.ipynb"
    nbformat.write(nb, path)
    return path


def browser_run(browser: Any, kind: str, count: int, folder: Path) -> dict[str, Any]:
    """One fresh Voila page: time to every figure drawn, bytes received, ESM blobs, update."""
    sys.path.insert(0, str(REPO / "tests" / "browser"))
    from conftest import VoilaServer

    work = folder / f"{kind}_{count}"
    work.mkdir(parents=True)
    server = VoilaServer(_notebook(kind, count, folder), work)
    server.wait_ready()
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    page.add_init_script(_TRACE_BLOBS)
    received, errors = [0], []

    def on_ws(ws: Any) -> None:
        ws.on("framereceived", lambda f: received.__setitem__(0, received[0] + len(f)))

    page.on("websocket", on_ws)
    page.on("pageerror", lambda e: errors.append(str(e)))
    out: dict[str, Any] = {"kind": kind, "figures": count}
    try:
        t0 = time.perf_counter()
        page.goto(server.url, wait_until="domcontentloaded", timeout=180_000)
        page.wait_for_function(
            "(n) => { const g = document.querySelectorAll('.js-plotly-plot');"
            " return g.length >= n && Array.from(g).every(d => d._fullData"
            " && d.querySelector('.main-svg')); }",
            arg=count,
            timeout=180_000,
        )
        out["time_to_drawn_s"] = round(time.perf_counter() - t0, 2)
        page.wait_for_timeout(3000)  # let late model initialisations fail or finish
        out["ws_bytes_received"] = received[0]
        out["code_blobs_over_1mb"] = sum(1 for s in page.evaluate("window.__codeBlobs") if s > 1e6)
        out["init_failures"] = sum("Failed to initialize model" in e for e in errors)
        t1 = time.perf_counter()
        page.locator(".bench-update").click()
        try:
            page.wait_for_function(
                "(m) => document.querySelector('.js-plotly-plot').data[0].z[0][0] === m",
                arg=MARK,
                timeout=20_000,
            )
            out["update_reached_plot"], out["update_s"] = True, round(time.perf_counter() - t1, 2)
        except Exception:  # noqa: BLE001 - a playwright timeout: the update never arrived
            out["update_reached_plot"], out["update_s"] = False, None
        out["page_errors"] = errors[:5]
    finally:
        context.close()
        server.stop()
    return out


def main() -> None:
    import argparse

    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="browser pages per kind and size")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "tests" / "browser"))
    from conftest import CHROMIUM, CHROMIUM_ARGS

    result: dict[str, Any] = {"loadavg_before": os.getloadavg()}
    import anywidget
    import plotly

    result["versions"] = {"plotly": plotly.__version__, "anywidget": anywidget.__version__}
    kinds = ("figurewidget", "plotlyfigure")
    result["state"] = {f"{k}_{n}": state_sizes(k, n) for k in kinds for n in (1, 3)}
    result["update_heatmap_z"] = {
        f"{k}_{r}x{c}": update_messages(k, r, c) for k in kinds for r, c in ((50, 20), (300, 50))
    }
    runs = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for repeat in range(args.repeats):
            for n, k in [(n, k) for n in (1, 3) for k in kinds]:
                runs.append(browser_run(browser, k, n, Path(tmp) / str(repeat)))
                print(json.dumps(runs[-1]), flush=True)
        browser.close()
    result["browser"] = runs
    result["loadavg_after"] = os.getloadavg()
    result["note"] = "shared 2-core machine under load: compare kinds within this run"
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("state", "update_heatmap_z")}, indent=1))


if __name__ == "__main__":
    main()
