"""The search box: a text query and how many hits to show; the Workbench runs the search."""

from __future__ import annotations

from typing import Any

import traitlets as t


class SearchBox(t.HasTraits):
    """Text search over the images.

    ``query`` changes when the user presses Enter or "search" (an empty query means "clear");
    ``k`` is the number of hits wanted. Submitting the same text again (e.g. after "show all"
    or a sort left the results) bumps ``submits`` instead, so observers of ``query`` and
    ``submits`` run the search once per submission. The Workbench shows the hits in the grid.
    """

    query = t.Unicode("")
    k = t.Int(20)
    submits = t.Int(0)  # +1 per submission of an unchanged query

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._widget: Any = None
        self._fresh = False  # query just changed from the text box: its Enter is already served
        self.observe(self._on_query, names="query")

    @property
    def widget(self) -> Any:
        """The ipywidgets search row (built on first access)."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _build(self) -> Any:
        import ipywidgets as w

        text = w.Text(
            value=self.query,
            placeholder="search by text",  # short: the prompt column is ~270 px wide
            tooltip="search images by text, e.g. a red circle",
            continuous_update=False,  # sync on Enter / leaving the box, not per keystroke
            layout=w.Layout(flex="1", min_width="0"),
        ).add_class("clipviz-search-text")
        k = w.BoundedIntText(
            value=self.k,
            min=1,
            max=10_000,
            description="k",
            tooltip="number of hits",
            style={"description_width": "initial"},
            layout=w.Layout(width="80px"),
        ).add_class("clipviz-search-k")
        go = w.Button(description="search", icon="search").add_class("clipviz-search-go")
        clear = w.Button(description="clear").add_class("clipviz-search-clear")
        t.link((self, "k"), (k, "value"))
        t.link((self, "query"), (text, "value"))
        go.on_click(lambda _b: self.submit(text.value))
        text.on_msg(lambda _w, content, _buffers: self._on_text_message(content, text.value))

        def on_clear(_b: Any) -> None:
            self.query = ""

        clear.on_click(on_clear)
        return w.HBox([text, k, go, clear]).add_class("clipviz-search")

    def submit(self, text: str) -> None:
        """Search for ``text`` (what the "search" button does), also when it is unchanged."""
        self._fresh = False
        if text != self.query:
            self.query = text
        else:
            self.submits += 1

    def _on_query(self, change: Any) -> None:
        self._fresh = True

    def _on_text_message(self, content: Any, value: str) -> None:
        # Enter in the text box: the browser syncs a changed value first, then sends "submit".
        if isinstance(content, dict) and content.get("event") == "submit":
            if self._fresh:
                self._fresh = False  # the value change already ran this search
            else:
                self.submit(value)
