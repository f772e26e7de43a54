"""Template sets equal open_clip's; validation errors say what is wrong."""

from __future__ import annotations

import pytest

from clipviz.compute.templates import (
    OPENAI_IMAGENET_TEMPLATES,
    SIMPLE_IMAGENET_TEMPLATES,
    get_templates,
    list_template_sets,
)


def test_named_sets_equal_open_clip_when_formatted():
    zsm = pytest.importorskip("open_clip.zero_shot_metadata")
    for ours, theirs in [
        (OPENAI_IMAGENET_TEMPLATES, zsm.OPENAI_IMAGENET_TEMPLATES),
        (SIMPLE_IMAGENET_TEMPLATES, zsm.SIMPLE_IMAGENET_TEMPLATES),
    ]:
        assert len(ours) == len(theirs)
        for name in ["dog", "golden retriever", "{weird} name"]:
            assert [t.format(name) for t in ours] == [f(name) for f in theirs]


def test_get_templates_by_name():
    assert list_template_sets() == ["single", "simple", "openai_imagenet"]
    assert get_templates("single") == ["a photo of a {}."]
    assert len(get_templates("openai_imagenet")) == 80
    assert len(get_templates("simple")) == 7
    got = get_templates("simple")
    got.append("mutated {}")
    assert len(get_templates("simple")) == 7  # a fresh list each time


def test_custom_templates_and_single_string():
    assert get_templates(["a {}", "art of {}"]) == ["a {}", "art of {}"]
    assert get_templates(("x {} y",)) == ["x {} y"]
    assert get_templates("a sketch of a {}.") == ["a sketch of a {}."]


def test_unknown_name_lists_known_sets_and_close_match():
    with pytest.raises(ValueError, match="Known sets: single, simple, openai_imagenet") as err:
        get_templates("openai_imagent")
    assert "Did you mean 'openai_imagenet'" in str(err.value)


@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        ([], ValueError, "empty"),
        (["no placeholder"], ValueError, "contains 0"),
        (["{} and {}"], ValueError, "contains 2"),
        (["{name} {}"], ValueError, "cannot be formatted"),
        (["ok {}", 3], TypeError, "Template 1 is int"),
    ],
)
def test_bad_custom_templates(bad, exc, match):
    with pytest.raises(exc, match=match):
        get_templates(bad)
