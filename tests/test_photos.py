"""photos(): the real sample photos of scikit-image and scikit-learn, offline, with credits."""

from __future__ import annotations

import sys

import pytest

from clipviz.datasets import photos


def test_photos_are_labelled_credited_and_load_as_rgb():
    s = photos()
    assert s.ids == [
        "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
        "immunohistochemistry", "retina", "china", "flower",
    ]  # fmt: skip
    assert s.labels[s.ids.index("chelsea")] == "cat"
    assert s.labels[s.ids.index("flower")] == "flower"
    for i in range(len(s)):
        img = s.load(i)
        assert img.mode == "RGB" and min(img.size) >= 256
        assert s.metadata[i]["licence"] and s.metadata[i]["author"] and s.metadata[i]["url"]
    df = s.to_pandas()
    assert {"id", "label", "path", "licence", "author", "package"} <= set(df.columns)
    assert df.set_index("id").loc["china", "licence"] == "CC BY 2.0"


def test_sklearn_only_and_missing_scikit_image(monkeypatch):
    s = photos(sources=["sklearn"])
    assert s.ids == ["china", "flower"] and s.subset([1]).metadata[0]["package"] == "sklearn"
    monkeypatch.setitem(sys.modules, "skimage", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(ImportError, match=r'pip install "clipviz\[photos\]".*sources=\["sklearn"\]'):
        photos()
    with pytest.raises(ValueError, match="subset of"):
        photos(sources=["flickr"])
