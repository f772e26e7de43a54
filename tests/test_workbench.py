"""Workbench: recompute policy, linking and error handling, on the bundled model and shapes data.

Headless: assertions on traits and widget state. The model is the real bundled one, wrapped
only to count how many texts and images go through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from clipviz.app import Workbench

XSS = "<img src=x onerror=alert(1)>"


class Counting:
    """The real model, with its encode calls recorded (not a mock: every call runs the model)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.texts: list[list[str]] = []
        self.images = 0

    def encode_texts(self, texts: list[str]) -> Any:
        self.texts.append(list(texts))
        return self._model.encode_texts(texts)

    def encode_images(self, pixels: Any) -> Any:
        self.images += len(pixels)
        return self._model.encode_images(pixels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@pytest.fixture(scope="module")
def shapes_set():
    from clipviz.datasets import shapes

    return shapes(48, seed=7).to_imageset("shape")


@pytest.fixture
def model(shapes_model):
    return Counting(shapes_model)


@pytest.fixture(scope="module")
def embeddings(shapes_set, shapes_model):
    from clipviz.engine import embed_images

    return embed_images(shapes_model, shapes_set, cache=False, progress=False)


@pytest.fixture
def wb(shapes_set, model, embeddings):
    return Workbench(
        shapes_set, model=model, embeddings=embeddings, projection="pca", cache=False, k=3
    )


def _mimebundle(view: Any) -> dict[str, Any]:
    bundle = view._repr_mimebundle_()
    return bundle[0] if isinstance(bundle, tuple) else bundle


def _changes(view: Any, name: str = "selection") -> list[Any]:
    seen: list[Any] = []
    view.observe(lambda change: seen.append(change["new"]), names=name)
    return seen


def test_images_embedded_once_and_every_view_filled(shapes_set, model):
    wb = Workbench(shapes_set, model=model, projection="pca", cache=False, k=3)
    assert model.images == len(shapes_set)
    assert len(wb.ids) == len(shapes_set) and wb.labels == list(shapes_set.labels)
    assert wb.prompts == sorted(set(shapes_set.labels))
    assert wb.predictions.probs.shape == (48, len(wb.prompts))
    assert wb.metrics is not None and 0.0 <= wb.metrics.acc1 <= 1.0
    state = wb.views["grid"].widget.get_state()
    assert state["n_total"] == 48 and state["classnames"] == wb.prompts
    assert len(wb.views["map"].figure.data[0].x) == 48
    assert wb.views["map"].method == "pca"
    assert wb.updates == 1
    for view in wb.views.values():  # each view is displayable on its own
        assert "application/vnd.jupyter.widget-view+json" in _mimebundle(view)
    assert "application/vnd.jupyter.widget-view+json" in _mimebundle(wb)
    wb.prompts = [*wb.prompts, "blob"]
    assert model.images == len(shapes_set)  # a prompt edit never re-embeds images


def test_prompt_edit_changes_labels_and_encodes_only_new_texts(wb, model):
    before_updates, before_images = wb.updates, model.images
    assert before_images == 0  # embeddings were given: the workbench embedded nothing
    model.texts.clear()
    new = [*wb.prompts[:-1], "blob"]
    wb.prompts = new
    assert model.texts == [["a photo of a blob."]]  # one call, only the new text
    assert model.images == before_images  # images are never re-embedded
    assert wb.updates == before_updates + 1  # one update for one edit
    grid = wb.views["grid"].widget
    assert grid.classnames == new
    assert {name for item in grid.items for name, _ in item["topk"]} <= set(new)
    assert wb.predictions.classnames == new
    prompt_trace = wb.views["map"].figure.data[1]
    assert list(prompt_trace.text) == new


def test_template_switches_and_ensembling_reuse_text_vectors(wb, model):
    panel = wb.views["prompts"]
    panel.templates = "simple"
    n_simple = sum(len(call) for call in model.texts)
    assert n_simple > len(wb.prompts)
    model.texts.clear()
    panel.ensemble = False
    panel.templates = "single"
    panel.ensemble = True
    panel.templates = "simple"
    assert model.texts == []  # all of these were encoded before
    assert wb.prompt_embeddings.per_template.shape[1] == len(wb.prompt_embeddings.templates)


def test_map_places_new_prompts_without_refitting(wb):
    proj = wb.projection
    image_x = list(wb.views["map"].figure.data[0].x)
    wb.prompts = [*wb.prompts, "a thing"]
    assert wb.projection is proj
    assert list(wb.views["map"].figure.data[0].x) == image_x
    assert len(wb.views["map"].figure.data[1].x) == len(wb.prompts)


def test_selection_links_every_view_both_ways_without_loops(wb):
    grid, fmap, heat = wb.views["grid"], wb.views["map"], wb.views["heatmap"]
    seen = {name: _changes(v) for name, v in (("grid", grid), ("map", fmap), ("heat", heat))}
    seen["wb"] = _changes(wb)
    updates = wb.updates
    ids = wb.ids
    wb.selection = [ids[1], ids[2]]
    assert grid.widget.selection == [ids[1], ids[2]] == fmap.selection == heat.selection
    grid.widget.selection = [ids[5]]  # a click in the browser
    assert wb.selection == [ids[5]] == fmap.selection == heat.selection
    heat.selection = [ids[9]]  # a heatmap click
    assert wb.selection == [ids[9]] == grid.selection == fmap.selection
    assert all(len(v) == 3 for v in seen.values()), seen  # one change each, no echoes
    assert wb.updates == updates  # selection never recomputes predictions
    with pytest.raises(Exception, match="not images of this workbench"):
        wb.selection = ["no-such-image"]


def test_errors_land_in_output_and_keep_state(wb):
    before = wb.predictions
    panel = wb.views["prompts"]
    wb.prompts = [XSS, f'"{XSS}"']  # two prompts with one display name: refused
    assert wb.errors and "appears twice" in wb.errors[-1]
    assert any("appears twice" in out.get("text", "") for out in wb.output.outputs)
    assert wb.predictions is before  # the previous results stay
    assert panel.prompts == [XSS, f'"{XSS}"']  # what the user typed stays, to be fixed
    status = wb.widget and wb._status.value
    assert "&lt;img src=x" in status and XSS not in status  # escaped in the status line
    wb.prompts = ["circle", "square"]  # fixing it works again
    assert wb.predictions.classnames == ["circle", "square"]


def test_search_shows_top_matches_in_the_grid(wb):
    hits = wb.search("a photo of a circle.", k=5)
    assert len(hits) == 5 and list(hits["score"]) == sorted(hits["score"], reverse=True)
    grid = wb.views["grid"].widget
    assert [item["id"] for item in grid.items] == list(hits["id"])
    assert grid.results_title == "a photo of a circle."
    assert wb.views["search"].query == "a photo of a circle."
    wb.views["search"].query = ""  # the clear button
    assert grid.results_title == "" and grid.n_shown == len(wb.ids)


def test_umap_replaces_pca_in_the_background(shapes_set, shapes_model, embeddings):
    wb = Workbench(
        shapes_set, model=shapes_model, embeddings=embeddings, projection="umap", cache=False
    )
    fmap = wb.views["map"]
    assert fmap.method in ("pca", "umap")  # PCA at once (UMAP may already be done)
    # the fit runs in a fresh child process: numba compiles UMAP there (minutes on a busy CPU)
    assert wb.wait_for_projection(timeout=900)
    assert fmap.method == "umap" and fmap.pending == "" and not wb.errors
    wb.prompts = [*wb.prompts, "blob"]  # placed into the UMAP map with transform
    assert len(fmap.figure.data[1].x) == len(wb.prompts)
    wb.close()  # the worker process stays for the next fit until then


def test_without_labels_there_are_no_metrics_and_no_mistakes_filter(embeddings, shapes_model):
    import dataclasses

    emb = dataclasses.replace(embeddings, labels=None)
    with pytest.raises(ValueError, match="classnames"):
        Workbench(emb, model=shapes_model, projection="pca", cache=False)
    wb = Workbench(
        emb, model=shapes_model, classnames=["circle", '"a red thing"'], projection="pca"
    )
    assert wb.labels is None and wb.metrics is None and "metrics" not in wb.views
    assert wb.predictions.classnames == ["circle", "a red thing"]
    assert wb.views["grid"].widget.has_labels is False
    assert wb.widget is not None and not wb.errors


def test_gap_toggle_with_one_prompt_explains_and_keeps_the_map(shapes_set, model, embeddings):
    wb = Workbench(
        shapes_set, model, ["circle"], embeddings=embeddings, projection="pca", cache=False, k=1
    )
    before = np.array(wb.views["map"]._xy, copy=True)
    wb.views["map"].center = True
    assert "at least 2 prompts" in wb.status
    assert not wb.errors
    np.testing.assert_array_equal(wb.views["map"]._xy, before)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("circle", TypeError, "one string 'circle'"),
        ([1, None], TypeError, r"got 1 \(int\)"),
        (["circle", None], TypeError, r"got None"),
        ([], ValueError, "empty"),
        (["circle", "  "], ValueError, "blank entry '  '"),
        (["circle", "square", "circle"], ValueError, "'circle' appears twice"),
    ],
)
def test_bad_prompts_are_refused_naming_the_value_and_nothing_changes(wb, value, error, message):
    before, shown = wb.prompts, wb.predictions
    with pytest.raises(error, match=message):
        wb.prompts = value
    assert wb.prompts == before and wb.predictions is shown
    assert wb.views["prompts"].prompts == before


def test_prompts_read_what_is_applied_when_the_panel_holds_a_refused_edit(wb):
    before = wb.prompts
    panel = wb.views["prompts"]
    panel.prompts = ["circle", '"circle"']  # typed in the panel: one display name twice
    assert wb.errors and "appears twice" in wb.errors[-1]
    assert wb.prompts == before == wb.predictions.classnames  # not the refused list
    panel.prompts = []  # an empty panel is refused the same way
    assert "no prompts given" in wb.errors[-1] and wb.prompts == before


def test_searching_the_same_text_again_after_show_all_runs_it_again(wb):
    box, grid = wb.views["search"], wb.views["grid"]
    box.submit("a photo of a circle.")
    hits = [item["id"] for item in grid.widget.items]
    assert grid.widget.results_title == "a photo of a circle."
    grid.clear_results()  # "show all" in the grid
    assert grid.widget.results_title == ""
    box.submit("a photo of a circle.")  # the same text again
    assert grid.widget.results_title == "a photo of a circle."
    assert [item["id"] for item in grid.widget.items] == hits
    grid.sort_by = "confidence"  # a sort leaves the results too
    box.submit("a photo of a circle.")
    assert grid.widget.results_title == "a photo of a circle."


def _background_threads() -> list[Any]:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("clipviz-umap")]


def test_a_superseded_umap_fit_is_cancelled_and_close_stops_everything(
    shapes_set, shapes_model, embeddings
):
    import multiprocessing

    others = set(multiprocessing.active_children())  # e.g. another workbench's worker
    wb = Workbench(
        shapes_set, model=shapes_model, embeddings=embeddings, projection="umap", cache=False
    )
    projector = wb.controller.projector
    first = projector._job
    generation = projector.generation
    wb.views["map"].center = True  # the gap toggle refits: the running fit is superseded
    assert first.cancelled() and projector._job is not first
    assert projector.generation > generation
    first.thread.join(30)
    assert not first.thread.is_alive()  # its child process was killed, its thread ended
    assert wb.views["map"].method == "pca" and wb.projection.params["center"] is True
    wb.close()  # while the second fit runs
    assert _background_threads() == []
    assert set(multiprocessing.active_children()) - others == set()  # its UMAP child is gone
    assert wb.views["map"].pending == "" and not wb.errors


def test_lasso_reaches_every_view_as_row_numbers_without_id_lookups(wb, monkeypatch):
    def no_lookup(*args: Any) -> Any:
        raise AssertionError("an id was looked up: the rows were known")

    monkeypatch.setattr(wb.data, "rows_of", no_lookup)
    for name in ("grid", "map", "heatmap"):
        monkeypatch.setattr(wb.views[name], "_rows_of", no_lookup)
    rows = np.array([7, 2, 30], np.uint32)
    wb.views["map"].map_widget._handle_custom_msg({"type": "select"}, [memoryview(rows.tobytes())])
    expected = [wb.ids[i] for i in rows]
    assert wb.errors == []
    assert wb.selection == expected
    for name in ("grid", "map", "heatmap"):
        assert wb.views[name].selection == expected
        assert wb.views[name].selected_rows.tolist() == rows.tolist()
    assert wb.views["grid"].widget.selection == expected


def test_a_fit_cancelled_before_it_starts_leaves_no_umap_process():
    """Under load a fit's thread can reach the process only after close() killed it: it must
    not start a new one (it did, and the child outlived the workbench)."""
    import multiprocessing

    from clipviz.app.projection import _FitProcess
    from clipviz.compute._projection_scale import Cancelled

    others = set(multiprocessing.active_children())
    fit = _FitProcess()
    fit.kill()  # what close() did before this job's thread got to run
    with pytest.raises(Cancelled):
        fit.fit(np.zeros((10, 4), np.float32), {}, cancelled=lambda: True)
    assert set(multiprocessing.active_children()) - others == set()


def test_the_umap_worker_outlives_a_ctrl_c_meant_for_the_kernel():
    """Interrupting or shutting down a kernel sends SIGINT to its process group: the worker
    printed a KeyboardInterrupt traceback and died (seen under `clipviz demo --headless`)."""
    import multiprocessing
    import os
    import signal

    from clipviz.app.projection import _worker

    ctx = multiprocessing.get_context("spawn")
    conn, child = ctx.Pipe()
    process = ctx.Process(target=_worker, args=(child,), daemon=True)
    process.start()
    child.close()
    try:
        conn.send((None, {}))  # a bad request: its error reply says the worker is in its loop
        assert conn.poll(120) and conn.recv()[0] == "error"
        os.kill(process.pid, signal.SIGINT)
        process.join(2)
        assert process.is_alive()
    finally:
        process.kill()
        process.join(5)
        conn.close()
