"""HTML helpers for the views: every user- or file-supplied string passes through ``escape``.

Views build HTML in a few places (ipywidgets.HTML, plotly hover text). File names, labels and
prompts come from users and files, so they are escaped first; a file called
``<img src=x onerror=alert(1)>.png`` must render as text, never as markup.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable

#: ``escape(text) -> str``: html.escape with quotes escaped too (safe inside attributes).
escape = functools.partial(html.escape, quote=True)


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
