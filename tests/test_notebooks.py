"""The notebooks: stripped in git, in sync with their sources, and each one runs top to bottom.

Execution uses nbclient in a fresh kernel, offline, with ``CLIPVIZ_FAST=1`` (the notebooks read it
to use fewer images, fewer training steps and PCA instead of UMAP) and a private cache folder, so
a run never depends on what an earlier run or the user's machine left in the cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_quickstart",
    "02_your_own_images",
    "03_prompt_engineering",
    "04_embedding_space",
    "05_train_your_own_clip",
    "06_where_does_clip_look",
    "07_compare_models",
]
CELL_TIMEOUT_S = 600  # a hang fails the test instead of stalling CI
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _make_notebooks():
    spec = importlib.util.spec_from_file_location(
        "make_notebooks", ROOT / "tools" / "make_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(nb: nbformat.NotebookNode) -> str:
    """Everything a reader sees as text: streams and text/plain results."""
    parts = []
    for out in _outputs(nb):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(str(out.data.get("text/plain", "")))
    return "\n".join(parts)


def test_all_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs committed"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name} carries saved widget state"


def test_notebooks_match_their_sources(capsys):
    """tools/notebooks_src/*.py is the source of truth; the .ipynb files are built from it."""
    make = _make_notebooks()
    assert [make.target_for(s) for s in make.sources()] == NOTEBOOKS
    assert make.main(["--check"]) == 0, capsys.readouterr().err


def test_generator_builds_cells_from_percent_format(tmp_path):
    make = _make_notebooks()
    src = tmp_path / "99_demo.py"
    src.write_text(
        '"""header, not a cell"""\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\nx\n'
    )
    nb = make.build(src)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    assert nb.cells[0].source == "# Title\n\ntext"
    assert nb.cells[1].source == "x = 1\nx"
    assert [c.id for c in nb.cells] == ["cell-00", "cell-01"]
    src.write_text("# %% [raw]\nx\n")
    with pytest.raises(ValueError, match="unknown cell marker"):
        make.build(src)


def _execute(path: Path, workdir: Path, prepare) -> tuple[nbformat.NotebookNode, float]:
    from nbclient import NotebookClient

    nb = prepare(nbformat.read(path, as_version=4), path.stem)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=180,  # a kernel can take a while to start on a busy machine
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    t0 = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - t0


@pytest.fixture
def notebook_env(tmp_path, monkeypatch):
    """Offline, fast mode, a private cache dir (platformdirs follows XDG_CACHE_HOME), passive OpenMP."""
    monkeypatch.setenv("CLIPVIZ_FAST", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine, spinning torch
    # threads made the notebooks several times slower (as in python -m clipviz.train).
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    work = tmp_path / "work"
    work.mkdir()
    return work


# Appended to each notebook before it runs: reads the kernel's variables and prints them as JSON,
# so the test can check what the notebook computed, not only that it did not crash.
PROBE_MARK = "__notebook_probe__"
PROBES = {
    "01_quickstart": """{
        "selection": sorted(wb.selection), "mistakes": sorted(mistakes["id"]), "n": len(table),
        "stolen": len(stolen), "prompts": list(wb.prompts),
    }""",
    "02_your_own_images": """{
        "pretrained_ok": PRETRAINED_OK, "model": model.info.name, "embedded": len(emb),
        "photos": len(photos), "skipped": [str(item) for item, _ in emb.skipped],
        "classes": len(classnames), "acc1": float(metrics.acc1), "hits": len(hits),
    }""",
    "03_prompt_engineering": """{
        "summary": {k: float(v) for k, v in summary.items()},
        "n_templates": len(per_template), "gains_rows": list(gains.index),
        "gain_all": float(gains.loc["(all) acc1", "difference"]),
        "composition": {k: {r: float(x) for r, x in v.items()} for k, v in composition.items()},
    }""",
    "04_embedding_space": """{
        "gap": {k: {r: float(x) for r, x in v.items()} for k, v in gap.items()},
        "neighbours": [int(i) for i in idx], "extra_xy": extra_xy.tolist(),
        "placement_raw": placement(raw_map).data.iloc[:, 0].mean(),
        "placement_centred": placement(centred_map).data.iloc[:, 0].mean(),
        "hits": len(hits), "hit_ids": list(hits["id"]),
    }""",
    "05_train_your_own_clip": """{
        "first_loss": sum(losses[:3]) / 3, "last_loss": sum(losses[-3:]) / 3, "steps": len(losses),
        "evals": evals, "results": {k: dict(v) for k, v in rows.items()},
    }""",
    "06_where_does_clip_look": """{
        "shape": list(maps.shape), "max": float(maps.max()), "chance": chance,
        "results": {k: dict(v) for k, v in results.T.items()},
    }""",
    "07_compare_models": """{
        "by_task": by_task.to_dict(), "n_disagree": int(disagree.sum()), "n": len(cmp.ids),
        "held_out_share_all": share_all, "held_out_share_disagree": float(share_disagree),
        "mean_overlap": float(cmp.overlap.mean()), "changed": len(changed),
        "calibration": calibration_table.to_dict(orient="index"), "files": [p.name for p in paths],
        "grid_shown": len(cmp.views["grid_a"].order),
    }""",
}


def _probe(nb: nbformat.NotebookNode, name: str) -> dict:
    code = f"import json as _j\nprint({PROBE_MARK!r}, _j.dumps({PROBES[name]}, default=str))"
    nb.cells.append(nbformat.v4.new_code_cell(code, id="test-probe"))
    return nb


def _probed(nb: nbformat.NotebookNode) -> dict:
    for out in nb.cells[-1].outputs:
        if out.output_type == "stream" and PROBE_MARK in out.text:
            return json.loads(out.text.split(PROBE_MARK, 1)[1])
    raise AssertionError(f"the probe cell printed nothing: {nb.cells[-1].outputs}")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, notebook_env):
    nb, seconds = _execute(path, notebook_env, _probe)
    print(f"{path.stem}: executed in {seconds:.1f} s")
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, json.dumps(errors, default=str)[:2000]
    CHECKS[path.stem](nb, _text(nb), _probed(nb))


def _check_quickstart(nb, text, v):
    widgets = [o for o in _outputs(nb) if WIDGET_MIME in o.get("data", {})]
    assert widgets, "the quickstart displayed no widget"
    assert v["selection"] == v["mistakes"] and len(v["mistakes"]) < v["n"] == 300
    assert v["prompts"][-1] == '"a yellow shape"' and len(v["prompts"]) == 7  # a free prompt
    assert v["stolen"] > 0  # a colour prompt competes with the shape prompts


def _check_own_images(nb, text, v):
    # Offline (as in the test run) it must say so plainly and carry on with the bundled model.
    assert v["pretrained_ok"] is False
    assert "are not available here." in text and "Continuing with the bundled" in text
    assert v["model"] == "clipviz-shapes"
    assert v["embedded"] == v["photos"] >= 5  # every photo embedded from the folder
    assert [s.rsplit("/", 1)[-1] for s in v["skipped"]] == ["notes.jpg"]  # the broken file
    assert 0.0 <= v["acc1"] <= 1.0 and v["hits"] == 3


def _check_prompts(nb, text, v):
    s = v["summary"]
    assert v["n_templates"] == 80
    worst, best = s["OpenAI 80, worst single template"], s["OpenAI 80, best single template"]
    assert worst <= s["OpenAI 80, median single template"] <= best
    assert s["OpenAI 80, ensembled"] > 0.5  # far above chance (1/6) for shape
    assert v["gains_rows"][-1] == "(all) acc1" and len(v["gains_rows"]) == 7
    assert v["gain_all"] < 0  # synonyms the model never read cost accuracy
    for split in ("seen combinations", "held-out combinations"):
        accs = v["composition"][split].values()
        assert all(acc > 5 / 48 for acc in accs), split  # 48-way: well above chance (1/48)


def _check_space(nb, text, v):
    raw, centred = v["gap"]["raw"], v["gap"]["centred"]
    key = "distance between modality means"
    # the gap is real, and centring closes most of it (renormalising leaves a little)
    assert raw[key] > 0.2 and centred[key] < 0.25 * raw[key]
    own, rand = "cos(image, its own caption)", "cos(image, a random caption)"
    assert raw[own] > raw[rand] and centred[own] > centred[rand]
    assert len(v["neighbours"]) == 7 and 0 not in v["neighbours"]  # the query is excluded
    assert (
        0 <= v["placement_raw"] <= 1 and v["placement_centred"] > 0.5
    )  # prompts among their class
    assert len(v["extra_xy"]) == 2 and v["hits"] == len(set(v["hit_ids"])) == 7


def _check_training(nb, text, v):
    assert v["steps"] == 20
    assert v["last_loss"] < v["first_loss"]  # it learns, even in the short CI run
    assert set(v["results"]) == {"your model", "bundled model"}
    assert v["results"]["bundled model"]["colour acc1"] > 0.9


def _check_saliency(nb, text, v):
    assert v["shape"] == [4, 64, 64] and 0 < v["max"] <= 1.0
    methods = v["results"]
    assert {"gradcam", "grad-x-input", "occlusion", "random pointing"} <= set(methods)
    best = max(r["pointing game"] for k, r in methods.items() if k != "random pointing")
    assert best > v["chance"]  # measured live, some method beats random pointing


def _check_compare(nb, text, v):
    own = v["by_task"]["shape acc1, own renderer"]
    other = v["by_task"]["shape acc1, second renderer"]
    assert own["resnet"] > 0.9 and own["vit"] > 0.8  # both bundled models know shape
    assert other["vit"] < own["vit"]  # the ViT is less robust to the other renderer
    assert 0 < v["n_disagree"] == v["grid_shown"] < v["n"]  # the filter shows exactly those
    assert v["held_out_share_disagree"] > v["held_out_share_all"]  # where the ViT fails
    assert 0.0 <= v["mean_overlap"] < 0.9 and v["changed"] > 0
    for side in ("resnet", "vit"):
        row = v["calibration"][side]
        assert row["NLL after"] <= row["NLL before"] + 1e-9  # the fit never makes NLL worse
    assert len(v["files"]) == 4


CHECKS = {
    "01_quickstart": _check_quickstart,
    "02_your_own_images": _check_own_images,
    "03_prompt_engineering": _check_prompts,
    "04_embedding_space": _check_space,
    "05_train_your_own_clip": _check_training,
    "06_where_does_clip_look": _check_saliency,
    "07_compare_models": _check_compare,
}
