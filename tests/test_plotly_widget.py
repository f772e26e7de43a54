"""PlotlyFigure: merge/diff rules, one message per batch, binary arrays, resync, events, errors."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.views import _plotly_widget as pw
from clipviz.views._plotly_state import diff, encode, merge
from clipviz.views._plotly_widget import PlotlyFigure, plotly_library


def _fig() -> PlotlyFigure:
    x = np.arange(4, dtype=np.float32)
    return PlotlyFigure([{"type": "scatter", "x": x, "y": x, "marker": {"size": 3}}], {})


def _capture(fig: PlotlyFigure) -> list[tuple[dict, list]]:
    sent: list[tuple[dict, list]] = []
    original = fig.send
    fig.send = lambda content, buffers=None: (
        sent.append((content, buffers)),
        original(content, buffers),
    )
    return sent


def test_merge_and_diff_rules():
    state = {"marker": {"size": 3, "color": "red"}, "x": np.zeros(3, np.float32), "name": "a"}
    patch = {"marker": {"size": 3, "color": "blue"}, "x": np.zeros(3, np.float32), "name": None}
    change = diff(state, patch)
    assert change == {"marker": {"color": "blue"}, "name": None}  # unchanged values dropped
    merge(state, change)
    assert state["marker"] == {"size": 3, "color": "blue"} and "name" not in state
    # a dtype change is a change; an array never equals a list
    assert "x" in diff(state, {"x": np.zeros(3, np.float64)})
    assert "x" in diff(state, {"x": [0.0, 0.0, 0.0]})
    assert diff(state, {"missing": None}) == {}  # deleting what is not there sends nothing


def test_encode_arrays_as_binary_specs():
    buffers: list = []
    out = encode(
        {
            "a": np.arange(3, dtype=np.int64),  # -> int32 (JS has no friendly int64 array)
            "b": np.array([True, False]),  # -> uint8
            "c": np.array(["x", "<y>"]),  # strings stay JSON
            "z": np.ones((2, 3), np.float32),
            "n": np.float32(0.5),
        },
        buffers,
    )
    assert out["a"] == {"dtype": "int32", "shape": [3], "buffer": 0}
    assert out["b"]["dtype"] == "uint8" and out["c"] == ["x", "<y>"]
    assert out["z"] == {"dtype": "float32", "shape": [2, 3], "buffer": 2}
    assert out["n"] == 0.5 and isinstance(out["n"], float)
    assert [len(bytes(b)) for b in buffers] == [12, 2, 24]
    assert encode({"e": np.zeros((0, 0), np.float32)}, [])["e"]["shape"] == [0, 0]
    with pytest.raises(ValueError, match=r"1 or 2 dimensions, got shape \(1, 1, 1\)"):
        encode(np.zeros((1, 1, 1)))


def test_batch_sends_one_message_with_only_the_changes():
    fig = _fig()
    sent = _capture(fig)
    with fig.batch():
        fig.update_traces({0: {"y": np.ones(4, np.float32), "marker": {"size": 3}}})
        fig.update_layout(title_text="hello", height=300)
        fig.update_traces({0: {"marker": {"color": "red"}}})
    assert len(sent) == 1
    msg, buffers = sent[0]
    assert msg["type"] == "update" and msg["rev"] == fig._rev == 1
    assert msg["traces"] == {
        "0": {"y": {"dtype": "float32", "shape": [4], "buffer": 0}, "marker": {"color": "red"}}
    }
    assert msg["layout"] == {"title": {"text": "hello"}, "height": 300}
    assert len(buffers) == 1 and bytes(buffers[0]) == np.ones(4, np.float32).tobytes()
    fig.update_traces({0: {"y": np.ones(4, np.float32)}})  # nothing new: nothing sent
    assert len(sent) == 1 and fig._rev == 1
    # the state a late front end fetches is the current figure
    state = fig.get_state()
    assert state["_rev"] == 1 and state["_layout"]["title"] == {"text": "hello"}
    assert state["_data"][0]["marker"] == {"size": 3, "color": "red"}


def test_a_view_that_missed_a_message_gets_the_whole_figure():
    fig = _fig()
    fig.update_layout(height=200)
    sent = _capture(fig)
    fig._handle_custom_msg({"type": "sync", "rev": fig._rev}, [])
    assert sent == []  # up to date: no answer
    fig._handle_custom_msg({"type": "sync", "rev": 0}, [])
    ((msg, buffers),) = sent
    assert msg["type"] == "figure" and msg["rev"] == 1 and msg["layout"]["height"] == 200
    assert msg["data"][0]["x"]["buffer"] == 0 and len(buffers) == 2


def test_every_figure_shares_one_plotly_js_library():
    a, b = _fig(), _fig()
    assert a._library is b._library is plotly_library()
    assert a.get_state()["_library"] == f"IPY_MODEL_{a._library.model_id}"
    assert plotly_library().source.startswith(b"/**\n* plotly.js (cartesian - minified) v")


def test_the_page_gets_plotly_js_cartesian_bundle_of_the_packages_version():
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    library = plotly_library()
    assert library.cartesian and pw._bundle_version(library.source) == get_plotlyjs_version()
    assert len(library.source) < len(get_plotlyjs().encode()) / 2  # what each page open saves


def test_a_trace_the_cartesian_bundle_lacks_is_refused_by_name():
    with pytest.raises(ValueError, match=r"no \['scattergl'\] trace.*'scatter' for 'scattergl'"):
        PlotlyFigure([{"type": "scattergl", "x": [0.0], "y": [0.0]}])
    fig = _fig()
    with pytest.raises(ValueError, match="scatter3d"):
        fig.set_figure([{"type": "scatter3d", "x": [0.0]}])
    assert fig.data[0].type == "scatter"  # the figure is left as it was


def test_another_plotly_js_version_falls_back_to_the_full_bundle(tmp_path, monkeypatch):
    from plotly.offline import get_plotlyjs

    stale = tmp_path / "plotly-cartesian.min.js"
    stale.write_bytes(b"/**\n* plotly.js (cartesian - minified) v0.1.0\n*/\n")
    monkeypatch.setattr(pw, "_CARTESIAN_BUNDLE", stale)
    monkeypatch.setattr(pw, "_LIBRARY", None)
    library = plotly_library()
    assert not library.cartesian and library.source == get_plotlyjs().encode()
    PlotlyFigure([{"type": "scattergl", "x": [0.0], "y": [0.0]}])  # the full bundle draws it
    library.close()


def test_events_reach_callbacks_with_indices():
    fig = _fig()
    got = []
    fig.on_selection(got.append)
    fig.on_click(got.append)
    rows = memoryview(np.array([2, 0], np.int32).tobytes())
    fig._handle_custom_msg(
        {"type": "event", "event": "plotly_selected", "groups": [{"trace": 0, "buffer": 0}]},
        [rows],
    )
    fig._handle_custom_msg(
        {"type": "event", "event": "plotly_click", "points": [{"trace": 0, "index": 1}]}, []
    )
    assert got[0].indices(0) == [2, 0] and got[1].indices(0) == [1]
    assert fig.data[0].selectedpoints.tolist() == [2, 0]  # recorded, not sent back


def test_mistakes_are_explained():
    fig = _fig()
    with pytest.raises(IndexError, match="trace index 3 is out of range: the figure has 1"):
        fig.update_traces({3: {"x": [1]}})
    with pytest.raises(ValueError, match="dragmod"):
        fig.update_layout(dragmod="lasso")  # plotly's validator names the bad property
    with pytest.raises(
        AttributeError,
        match=r"read-only here \(tried to set .size.\): use PlotlyFigure.update_traces",
    ):
        fig.data[0].marker.size = 5


def test_updates_from_two_threads_keep_consecutive_revisions():
    # The Workbench moves the map from a UMAP worker thread while prompts change in the kernel.
    import threading

    fig = _fig()
    sent = _capture(fig)

    def edit(key: str) -> None:
        for i in range(50):
            with fig.batch():
                fig.update_layout({key: {"text": str(i)}} if key == "title" else {key: 100 + i})
                fig.update_traces({0: {"name": f"{key}{i}"}})

    threads = [threading.Thread(target=edit, args=(k,)) for k in ("title", "height")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [msg["rev"] for msg, _ in sent] == list(range(1, 101))
    assert fig._rev == 100
