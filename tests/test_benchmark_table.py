"""tools/benchmark_table.py: the README's benchmark table is regenerated from the JSON results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import benchmark_table as bt  # noqa: E402
from benchmark_cells import Target, load_text, num  # noqa: E402

# what benchmarks/compare_speed.py writes (it may land after this test): a small real-shaped run
COMPARE = {
    "machine": {"cpus": 2, "loadavg_before": [9.5, 9.0, 8.0]},
    "neighbour_overlap_ann": {
        "n": 100_000,
        "method": "auto",
        "overlap_s": 8.25,
        "overlap_cpu_s": 15.0,
        "recall_at_10_model_a": 1.0,
        "recall_at_10_model_b": 0.995,
        "query_subset": 2000,
        "exact_full_extrapolated_s": 500.0,
    },
    "calibration": {"n": 1_000_000, "classes": 20, "calibration_plus_fit_s": 1.25},
    "two_model_update": {"n": 10_000, "ratio": 1.75, "loadavg_after": [1.5, 1.0, 1.0]},
}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", out)
    return out


def edit(results: Path, name: str, change) -> None:
    path = results / f"{name}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def row(results: Path, area: str, measure_start: str):
    found = [r for r in bt.rows(results) if r.area == area and r.measure.startswith(measure_start)]
    assert len(found) == 1, [r.measure for r in bt.rows(results) if r.area == area]
    return found[0]


def test_readme_table_is_the_one_the_json_gives():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_cells_are_the_json_values_and_verdicts_follow_them(results):
    measure = "JPEG -> vector end to end / forward pass alone, clipviz-shapes"
    saved = json.loads((results / "embed_throughput.json").read_text())
    before = row(results, "embedding", measure)
    assert before.measured.startswith(f"{saved['ratio_end_to_end_vs_raw']:g}x (")
    assert f"{saved['images_per_s']['end_to_end']:g} vs" in before.measured
    edit(results, "embed_throughput", lambda d: d.update(ratio_end_to_end_vs_raw=0.912))
    after = row(results, "embedding", measure)
    assert after.measured.startswith("0.912x") and after.status == "met"
    edit(results, "embed_throughput", lambda d: d.update(ratio_end_to_end_vs_raw=0.5))
    assert row(results, "embedding", measure).status == "not met"
    assert after.target == ">= 0.85x (issue 8)"


def test_workbench_rows_follow_each_size(results):
    def faster(d):
        big = next(r for r in d["results"] if r["images"] == 1_000_000)
        big.update(prompt_edit_ms_median=250.5, peak_rss_mb=1900, build_s=12.5)

    edit(results, "workbench_update", faster)
    edit_1m = row(results, "workbench", "prompt edit -> every view updated, 1M")
    assert edit_1m.measured.startswith("250.5 ms") and edit_1m.status == "met"
    assert edit_1m.target == "<= 300 ms (issue 9)"
    assert row(results, "workbench", "peak kernel RSS").status == "met"
    build = row(results, "workbench", "Workbench build")
    assert build.measured.startswith("12.5 s") and build.status == "not met"
    edit_50k = row(results, "workbench", "prompt edit -> every view updated, 50k")
    assert (edit_50k.target, edit_50k.status) == ("report", "no target")
    saved = json.loads((results / "workbench_update.json").read_text())
    measured = next(r["lasso"] for r in saved["results"] if isinstance(r.get("lasso"), dict))
    lasso = row(results, "workbench", "lasso")
    assert lasso.measured.startswith(f"{measured['ms_median']:.1f} ms (")
    assert lasso.status == ("met" if measured["ms_median"] <= 300 else "not met")


def test_map_models_store_and_saliency_rows_follow_the_json(results):
    edit(
        results,
        "map_render",
        lambda d: d["results"]["100000"]["ratio_clipviz_over_jupyter_scatter"].update(
            zoom_redraw_s=0.95
        ),
    )
    zoom = row(results, "map", "zoom redraw / jupyter-scatter, 100k")
    assert zoom.measured.startswith("0.95x") and zoom.status == "met"
    edit(
        results,
        "bundled_model_quality",
        lambda d: d["redrawn"]["accuracy"]["single"].update(shape=0.975),
    )
    shape = row(results, "models", "clipviz-shapes, second renderer, shape")
    assert shape.measured.startswith("97.5%") and shape.status == "met"
    edit(results, "store_open", lambda d: d.update(open_store_best_s=1.5))
    assert row(results, "store", "`open_store` of").status == "met"
    edit(
        results,
        "saliency_quality",
        lambda d: d["bundled_resnet"]["quality"]["methods"]["gradcam"].update(pointing=0.97),
    )
    pointing = row(results, "saliency", "pointing game, bundled ResNet")
    assert pointing.measured.startswith("97% (best: gradcam") and pointing.status == "met"


def test_ann_row_uses_the_fastest_setting_that_meets_recall(results):
    ann = row(results, "store", "ANN query latency")
    assert ann.measured.startswith("15.54 ms") and ann.status == "met"

    def worse(d):
        d["faiss_1m"]["sweep"][0]["recall_at_10"] = 0.9

    edit(results, "store_ann", worse)
    assert row(results, "store", "ANN query latency").measured.startswith("32.64 ms")


def test_missing_files_read_not_measured(results):
    (results / "store_open.json").unlink()
    assert row(results, "store", "`open_store` of").measured == "not measured"
    assert row(results, "store", "ANN recall").measured.startswith("1 (")
    for path in results.glob("*.json"):
        path.unlink()
    for r in bt.rows(results):
        assert (r.measured, r.status, r.baseline, r.load) == ("not measured",) * 2 + ("", ""), r


def test_comparison_rows_appear_when_their_json_lands(results):
    (results / "compare_speed.json").unlink(missing_ok=True)
    assert row(results, "comparison", "two-model").measured == "not measured"
    (results / "compare_speed.json").write_text(json.dumps(COMPARE))
    overlap = row(results, "comparison", "`neighbour_overlap`")
    assert overlap.measured.startswith("8.25 s (method auto") and overlap.status == "met"
    assert "recall@10 0.995" in overlap.measured  # the worse of the two models
    assert overlap.baseline.startswith("exact search 500 s")
    calibration = row(results, "comparison", "`calibration`")
    assert calibration.measured.startswith("1.25 s") and calibration.status == "not met"
    two = row(results, "comparison", "two-model")
    assert two.status == "met" and two.load == "1-min load 9.5 -> 1.5 on 2 CPUs: heavily loaded"
    smaller = {**COMPARE, "neighbour_overlap_ann": {"n": 30_000, "overlap_s": 8.25}}
    (results / "compare_speed.json").write_text(json.dumps(smaller))
    overlap = row(results, "comparison", "`neighbour_overlap`")
    assert overlap.status == "not measured at 100k (only 30k)"


def test_load_column_says_how_loaded_the_machine_was():
    assert load_text(
        {"cpu_count": 2, "load_avg_before": [19.3, 1, 1], "load_avg_after": [22.7]}
    ) == ("1-min load 19.3 -> 22.7 on 2 CPUs: heavily loaded")
    assert load_text({"machine": {"cpus": 16}, "loadavg": [3.0]}).endswith("lightly loaded")
    assert load_text({"loadavg_start": [13.3]}) == "1-min load 13.3 (CPU count not recorded)"
    assert load_text({}) == "load not recorded"


def test_numbers_lose_only_a_fraction_s_trailing_zeros():
    assert [num(500.0, 0), num(2615.5, 0), num(1.50), num(0.0004, 2), num(120.0, 1)] == [
        "500",
        "2616",
        "1.5",
        "0.0004",
        "120",
    ]


def test_verdicts_are_computed_from_value_and_target():
    at_most = Target("<=", 300.0, "ms", "issue 9")
    assert [at_most.verdict(v) for v in (299.9, 300.0, 300.1, None)] == [
        "met",
        "met",
        "not met",
        "not measured",
    ]
    assert Target(">=", 0.95, "%", "issue 12").text() == ">= 95% (issue 12)"


def test_markers_are_required_and_the_rest_is_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bt.START}\nold table\n{bt.END}\noutro\n")
    assert bt.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(f"intro\n{bt.START}\n| area |") and text.endswith(f"{bt.END}\noutro\n")
    assert "old table" not in text
    assert bt.main(["--readme", str(readme), "--check"]) == 0
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="exactly one"):
        bt.replace_table(readme.read_text(), "t")
