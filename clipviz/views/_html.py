"""HTML helpers for the views: every user- or file-supplied string passes through ``escape``.

Views build HTML in a few places (ipywidgets.HTML, plotly hover text). File names, labels and
prompts come from users and files, so they are escaped first; a file called
``<img src=x onerror=alert(1)>.png`` must render as text, never as markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable


def escape(text: object) -> str:
    """Escape ``text`` once for HTML, in text and in attributes, and for plotly's text.

    Quotes become numeric references (``&#34;``, ``&#x27;``), not ``&quot;``: plotly.js decodes
    only ``&amp; &lt; &gt;``, a few named entities and numeric ones, so ``&quot;`` showed up
    literally in every plot label. Browsers read both forms the same.
    """
    return html.escape(str(text), quote=True).replace("&quot;", "&#34;")


def escape_all(texts: Iterable[object]) -> list[str]:
    """Escape every item of ``texts`` (non-strings are converted with ``str`` first).

    Parameters
    ----------
    texts : iterable
        Labels, ids, prompts or any values that will become HTML.

    Returns
    -------
    list of str
        The escaped strings, in order.
    """
    return [escape(str(t)) for t in texts]


def tag(name: str, text: object, *, cls: str | None = None) -> str:
    """Return ``<name class="cls">escaped text</name>``; ``name`` and ``cls`` are ours, not user input.

    Parameters
    ----------
    name : str
        The element name, e.g. ``"b"`` or ``"span"`` (a constant in our code).
    text : object
        The content; converted with ``str`` and escaped.
    cls : str, optional
        A CSS class name (a constant in our code).

    Returns
    -------
    str
        The HTML snippet.
    """
    attr = f' class="{escape(cls)}"' if cls else ""
    return f"<{name}{attr}>{escape(str(text))}</{name}>"
