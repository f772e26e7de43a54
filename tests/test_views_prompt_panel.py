"""PromptPanel and SearchBox: headless checks on traits and the ipywidgets they build."""

from __future__ import annotations

import pytest
import traitlets

from clipviz.views.prompt_panel import PromptPanel, parse_lines
from clipviz.views.search_box import SearchBox


def _revisions(panel: PromptPanel) -> list[int]:
    seen: list[int] = []
    panel.observe(lambda change: seen.append(change["new"]), names="revision")
    return seen


def test_parse_lines_strips_and_drops_blanks_and_repeats():
    assert parse_lines("circle\n\n  square \ncircle\n") == ["circle", "square"]
    assert parse_lines(['"a free prompt"', " x "]) == ['"a free prompt"', "x"]


def test_typing_commits_once_per_edit_not_per_keystroke():
    panel = PromptPanel(prompts=["circle"])
    seen = _revisions(panel)
    controls = panel.widget and panel._controls
    assert controls["prompts"].continuous_update is False  # browser syncs on blur only
    assert controls["prompts"].value == "circle"
    controls["prompts"].value = "circle\nsquare\n\ntriangle"
    assert panel.prompts == ["circle", "square", "triangle"]
    assert seen == [1]
    controls["apply"].click()  # nothing changed: no new revision
    assert seen == [1]


def test_apply_sets_several_fields_with_one_revision():
    panel = PromptPanel(prompts=["a"])
    seen = _revisions(panel)
    panel.apply(prompts=["a", "b"], prompts_b=["c"], templates="simple", ensemble=False)
    assert seen == [1]
    assert (panel.prompts, panel.prompts_b, panel.templates, panel.ensemble) == (
        ["a", "b"],
        ["c"],
        "simple",
        False,
    )
    with pytest.raises(TypeError, match="unknown prompt panel fields"):
        panel.apply(colour="red")


def test_python_changes_show_in_the_controls_without_committing_back():
    panel = PromptPanel(prompts=["a"])
    c = panel.widget and panel._controls
    seen = _revisions(panel)
    panel.prompts = ["x", "y"]
    panel.templates = ["a drawing of a {}.", "a sketch of a {}."]
    assert c["prompts"].value == "x\ny"
    assert c["template_set"].value == "custom"
    assert c["custom"].value == "a drawing of a {}.\na sketch of a {}."
    assert seen == [1, 2]  # one per field set, none echoed from the controls


def test_custom_templates_from_the_controls_are_checked():
    panel = PromptPanel(prompts=["a"])
    c = panel.widget and panel._controls
    c["template_set"].value = "custom"
    c["custom"].value = "no placeholder here"
    assert panel.templates == "single"  # not committed
    assert "exactly one {}" in c["message"].value
    c["custom"].value = "a photo of a {}.\na drawing of a {}."
    assert panel.templates == ["a photo of a {}.", "a drawing of a {}."]
    assert c["message"].value == ""


def test_bad_templates_from_python_raise_clear_errors():
    panel = PromptPanel()
    with pytest.raises(traitlets.TraitError, match="unknown template set 'openai'"):
        panel.templates = "openai"
    with pytest.raises(traitlets.TraitError, match="exactly one"):
        panel.templates = ["a {} {}"]
    panel.templates = "a photo of a {}."  # one template with a {}: fine
    assert panel.templates == ["a photo of a {}."]


def test_ensemble_checkbox_and_b_set_commit():
    panel = PromptPanel(prompts=["a"])
    c = panel.widget and panel._controls
    seen = _revisions(panel)
    c["ensemble"].value = False
    c["prompts_b"].value = "b1\nb2"
    assert panel.ensemble is False and panel.prompts_b == ["b1", "b2"]
    assert seen == [1, 2]


def test_search_box_emits_query_on_submit_and_clear():
    box = SearchBox()
    queries: list[str] = []
    box.observe(lambda change: queries.append(change["new"]), names="query")
    text, k, go, clear = box.widget.children
    text.value = "a red circle"  # Enter in the browser (continuous_update is off)
    assert box.query == "a red circle"
    k.value = 5
    assert box.k == 5
    go.click()  # same text: no second query event
    clear.click()
    assert queries == ["a red circle", ""]
    assert text.continuous_update is False


def test_only_the_custom_area_hides_with_named_template_sets():
    panel = PromptPanel(prompts=["a"], templates="simple")
    c = panel.widget and panel._controls
    assert c["custom"].layout.display == "none"
    assert c["prompts"].layout.display is None and c["prompts_b"].layout.display is None
    c["template_set"].value = "custom"
    assert c["custom"].layout.display is None


def test_template_menu_counts_come_from_the_caller_not_a_stale_constant():
    from clipviz.compute.templates import get_templates
    from clipviz.views.prompt_panel import template_menu

    counts = {"simple": len(get_templates("simple")), "openai_imagenet": 80}
    menu = dict((v, text) for text, v in template_menu(counts))
    assert menu["simple"] == f"simple ({len(get_templates('simple'))} templates)"
    assert "18" not in menu["simple"]  # the old hard-coded label said 18 for 7
    panel = PromptPanel(prompts=["a"], template_counts=counts)
    options = dict(
        (v, text) for text, v in panel.widget and panel._controls["template_set"].options
    )
    assert options["simple"] == menu["simple"]


def test_choosing_custom_before_typing_shows_no_error():
    panel = PromptPanel(prompts=["circle"])
    c = panel.widget and panel._controls
    seen = _revisions(panel)
    c["template_set"].value = "custom"
    assert "needs exactly one" not in c["message"].value
    assert c["custom"].layout.display != "none"
    assert seen == []  # nothing committed until templates are typed
    c["custom"].value = "a drawing of a thing"
    assert "needs exactly one {}" in c["message"].value
    assert "a drawing of a thing" in c["message"].value
    c["custom"].value = "a drawing of a {}."
    assert c["message"].value == ""
    assert panel.templates == ["a drawing of a {}."] and seen == [1]


def test_template_menu_fits_its_column():
    panel = PromptPanel(prompts=["a"])
    menu = panel.widget and panel._controls["template_set"]
    assert menu.description == ""  # a description label pushed the menu past the column
    assert menu.layout.width == "100%"
