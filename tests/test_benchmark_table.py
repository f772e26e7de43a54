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


def _table_rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells[1:]
    return rows


def test_readme_table_is_the_one_the_json_gives():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_number_comes_from_the_json(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    cache = json.loads((results / "embed_cache.json").read_text())
    cache.update(speedup=12.3, speedup_unseen_files=4.5, n_images=77, identical_vectors=False)
    (results / "embed_cache.json").write_text(json.dumps(cache))
    zs = json.loads((results / "zero_shot_speed.json").read_text())
    zs["results"][0]["update_ms"] = 1234.5
    (results / "zero_shot_speed.json").write_text(json.dumps(zs))
    (results / "projection_speed.json").unlink()

    rows = _table_rows(bt.render(results))
    cache_row = next(v for k, v in rows.items() if k.startswith("2."))
    assert cache_row[0].startswith("12.3x faster on 77 images, vectors DIFFER (4.5x")
    zs_row = next(v for k, v in rows.items() if k.startswith("3."))
    assert zs_row[0].startswith("10k: 1234.5 ms")
    assert next(v for k, v in rows.items() if k.startswith("4."))[0] == "not measured"


def test_markers_are_required_and_the_rest_is_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bt.START}\nold table\n{bt.END}\noutro\n")
    assert bt.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(f"intro\n{bt.START}\n| benchmark |") and text.endswith(f"{bt.END}\noutro\n")
    assert "old table" not in text
    assert bt.main(["--readme", str(readme), "--check"]) == 0
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="exactly one"):
        bt.replace_table(readme.read_text(), "t")
