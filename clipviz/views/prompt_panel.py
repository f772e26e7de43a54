"""The prompt panel: class names or free prompts, template set, ensembling, and a B set.

``PromptPanel`` is a traitlets state object; its ``.widget`` (ipywidgets) is built on first use.
Typing does not recompute anything: the text areas have ``continuous_update=False`` and the
panel commits its fields together (on leaving a text area, or on Apply), then bumps
``revision`` once. The Workbench observes ``revision`` only, so one edit is one update even when
several fields changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import traitlets as t

from clipviz.views._html import escape

#: (menu text, value) of the template sets; counts come from the caller (``template_counts``),
#: since views do not import compute, and a count typed here went stale (it said 18 for 7).
TEMPLATE_SETS = (
    ("single: a photo of a {}.", "single"),
    ("simple", "simple"),
    ("OpenAI ImageNet", "openai_imagenet"),
    ("custom…", "custom"),
)
_FIELDS = ("prompts", "prompts_b", "templates", "ensemble")


def template_menu(counts: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """The template dropdown's (text, value) pairs, with ``counts[name]`` templates where known.

    Parameters
    ----------
    counts : mapping of str to int, optional
        Number of templates per set name, e.g. ``{"simple": 7}``.

    Returns
    -------
    list of (str, str)
        Menu text and value per set, "custom…" last.
    """
    counts = counts or {}
    out = []
    for text, value in TEMPLATE_SETS:
        n = counts.get(value)
        if n is not None and value != "single":
            text = f"{text} ({n} template{'s' if n != 1 else ''})"
        out.append((text, value))
    return out


def parse_lines(text: str | Iterable[str]) -> list[str]:
    """Split text into prompts: one per line, stripped, blank lines and repeats dropped.

    Parameters
    ----------
    text : str or iterable of str
        Text area content, or lines already split.

    Returns
    -------
    list of str
        The prompts in order of first appearance.
    """
    lines = text.splitlines() if isinstance(text, str) else list(text)
    return list(dict.fromkeys(s.strip() for s in lines if s and s.strip()))


class PromptPanel(t.HasTraits):
    """Prompts (set A and optional set B), template set and ensembling.

    A line is a class name, put into every template (``"circle"`` -> ``"a photo of a
    circle."``); a line in double quotes is a free prompt, used verbatim.

    Parameters
    ----------
    prompts : list of str
        Prompt set A.
    templates : str or list of str
        A template set name ("single", "simple", "openai_imagenet") or custom templates,
        each with one ``{}``.
    ensemble : bool
        Average over templates (True) or use the first template only (False).
    prompts_b : list of str
        Optional prompt set B, compared with A in the metrics.
    template_counts : mapping of str to int, optional
        Templates per set name, shown in the menu (e.g. from ``clipviz.compute.get_templates``).
    """

    prompts = t.List(t.Unicode())
    prompts_b = t.List(t.Unicode())
    templates = t.Union([t.Unicode(), t.List(t.Unicode())], default_value="single")
    ensemble = t.Bool(True)
    revision = t.Int(0)  # +1 per committed change; observe this one to recompute once

    def __init__(self, *, template_counts: Mapping[str, int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.template_counts = dict(template_counts or {})
        self._widget: Any = None
        self._controls: dict[str, Any] = {}
        self._committing = False
        self.observe(self._on_field, names=list(_FIELDS))

    @t.validate("templates")
    def _check_templates(self, proposal: dict[str, Any]) -> str | list[str]:
        value = proposal["value"]
        names = [v for _, v in TEMPLATE_SETS if v != "custom"]
        if isinstance(value, str):
            if value in names:
                return value
            if value.count("{}") != 1:
                raise t.TraitError(
                    f"unknown template set {value!r}; use one of {names} or a list of "
                    "templates, each with one {} for the class name"
                )
            value = [value]
        bad = [x for x in value if x.count("{}") != 1]
        if bad or not value:
            raise t.TraitError(
                f"each custom template needs exactly one {{}} for the class name; got {bad or value!r}"
            )
        return list(value)

    def apply(self, **fields: Any) -> None:
        """Set several fields at once with a single ``revision`` bump.

        Parameters
        ----------
        **fields
            Any of ``prompts``, ``prompts_b``, ``templates``, ``ensemble``.
        """
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise TypeError(f"unknown prompt panel fields {sorted(unknown)}; use {list(_FIELDS)}")
        before = {f: getattr(self, f) for f in _FIELDS}
        self._committing = True
        try:
            for name, value in fields.items():
                setattr(self, name, value)
        finally:
            self._committing = False
        if any(getattr(self, f) != before[f] for f in _FIELDS):
            self.revision += 1

    def _on_field(self, change: dict[str, Any]) -> None:
        if not self._committing:
            self.revision += 1  # a single field set from Python
        self._show_fields()

    # ----------------------------------------------------------------- widget
    @property
    def widget(self) -> Any:
        """The ipywidgets panel (built on first access)."""
        if self._widget is None:
            self._widget = self._build()
            self._show_fields()
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _build(self) -> Any:
        import ipywidgets as w

        def area(placeholder: str) -> Any:
            # One Layout per text area: a shared Layout would hide all of them with "custom".
            layout = w.Layout(width="100%", height="140px")
            return w.Textarea(placeholder=placeholder, continuous_update=False, layout=layout)

        c = self._controls
        c["prompts"] = area('one class name per line;\n"a free prompt"')
        # No description: its fixed label width pushed the menu past a narrow column.
        c["template_set"] = w.Dropdown(
            options=template_menu(self.template_counts), layout=w.Layout(width="100%")
        )
        c["custom"] = area("a photo of a {}.\na drawing of a {}.")
        c["ensemble"] = w.Checkbox(description="ensemble templates", indent=False)
        c["prompts_b"] = area("optional prompt set B (A/B comparison)")
        c["apply"] = w.Button(description="Apply", button_style="primary", icon="check")
        c["message"] = w.HTML()
        for name in ("prompts", "custom", "prompts_b"):
            c[name].observe(self._commit_from_widgets, names="value")
        for name in ("template_set", "ensemble"):
            c[name].observe(self._commit_from_widgets, names="value")
        c["apply"].on_click(lambda _button: self._commit_from_widgets())
        for name in ("prompts", "custom", "prompts_b", "template_set", "ensemble", "apply"):
            c[name].add_class(f"clipviz-prompt-{name.replace('_', '-')}")
        return w.VBox(
            [
                w.HTML("<b>Prompts (set A)</b>"),
                c["prompts"],
                w.HTML("templates"),
                c["template_set"],
                c["custom"],
                c["ensemble"],
                w.HTML("<b>Prompt set B</b> (optional)"),
                c["prompts_b"],
                c["apply"],
                c["message"],
            ],
            layout=w.Layout(width="100%"),
        ).add_class("clipviz-prompt-panel")

    def _show_fields(self) -> None:
        """Copy the traits into the controls (when set from Python) without committing."""
        c = self._controls
        if not c:
            return
        self._committing = True  # control changes below must not commit back
        try:
            c["prompts"].value = "\n".join(self.prompts)
            c["prompts_b"].value = "\n".join(self.prompts_b)
            custom = not isinstance(self.templates, str)
            c["template_set"].value = "custom" if custom else self.templates
            if custom:
                c["custom"].value = "\n".join(self.templates)
            c["custom"].layout.display = None if custom else "none"
            c["ensemble"].value = self.ensemble
        finally:
            self._committing = False

    def _commit_from_widgets(self, change: dict[str, Any] | None = None) -> None:
        if self._committing:
            return
        c = self._controls
        c["custom"].layout.display = None if c["template_set"].value == "custom" else "none"
        templates: str | list[str] = c["template_set"].value
        if templates == "custom":
            templates = parse_lines(c["custom"].value)
            if not templates:  # just switched to custom: nothing typed yet is no error
                c["message"].value = "<i>type one template per line, each with one {}</i>"
                return
            bad = [x for x in templates if x.count("{}") != 1]
            if bad:
                c["message"].value = (
                    "<span class='clipviz-error'>each custom template needs exactly one {}: "
                    f"{escape(bad[0])}</span>"
                )
                return
        c["message"].value = ""
        self.apply(
            prompts=parse_lines(c["prompts"].value),
            prompts_b=parse_lines(c["prompts_b"].value),
            templates=templates,
            ensemble=bool(c["ensemble"].value),
        )
