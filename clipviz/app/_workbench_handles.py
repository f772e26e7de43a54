"""The Workbench's Python handles: read-only views of its state, and the two prompt setters.

A notebook user reads ``wb.predictions``, ``wb.metrics``, ``wb.timings`` ...; each handle reads
the typed state the Workbench holds (``ImageData``, the ``Controller``'s applied results, the
``UpdateLog``) and owns nothing. Kept apart from workbench.py, which builds and wires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clipviz.compute.types import ImageEmbeddings
from clipviz.engine.prompts import check_prompt_names

if TYPE_CHECKING:
    from clipviz.app.controller import Controller, Views
    from clipviz.app.state import ImageData, UpdateLog


class WorkbenchHandles:
    """What a Workbench shows to Python; mixed into ``Workbench``, which sets the state."""

    data: ImageData
    controller: Controller
    log: UpdateLog
    _views: Views

    @property
    def ids(self) -> list[str]:
        """Image ids, in row order of every array."""
        return self.data.ids

    @property
    def labels(self) -> list[str] | None:
        """True labels (or None)."""
        return self.data.labels

    @property
    def embeddings(self) -> ImageEmbeddings:
        """The image embeddings (carrying the true labels)."""
        return self.data.embeddings

    @property
    def images(self) -> Any:
        """The ImageSet, or None when only embeddings were given."""
        return self.data.images

    @property
    def thumbnails(self) -> Any:
        """The lazy ``ThumbnailStore`` (``.page(indices)``, ``.thumbnail(i)``), or None without
        an ImageSet."""
        return self.data.thumbnails

    @property
    def prompts(self) -> list[str]:
        """Prompt set A as applied (settable: same effect as typing them and pressing Apply).

        Raises
        ------
        TypeError, ValueError
            One string instead of a list, a non-string item, a blank entry, an empty list or
            a repeated prompt; nothing changes then.
        """
        applied = self.controller.applied
        return list(applied.prompts) if applied is not None else []

    @prompts.setter
    def prompts(self, value: Sequence[str]) -> None:
        self._views.prompts.prompts = check_prompt_names(value, "prompts")

    @property
    def prompts_b(self) -> list[str]:
        """Prompt set B for the A/B comparison, as applied (settable; [] for none)."""
        applied = self.controller.applied
        return list(applied.prompts_b) if applied is not None else []

    @prompts_b.setter
    def prompts_b(self, value: Sequence[str]) -> None:
        names = check_prompt_names(value, "prompts_b") if len(value) else []
        self._views.prompts.prompts_b = names

    @property
    def prompt_embeddings(self) -> Any:
        """PromptEmbeddings of set A."""
        return self.controller.a.prompts if self.controller.a else None

    @property
    def predictions(self) -> Any:
        """Predictions of set A."""
        return self.controller.a.predictions if self.controller.a else None

    @property
    def metrics(self) -> Any:
        """Metrics of set A (None without labels or matching prompts)."""
        return self.controller.a.metrics if self.controller.a else None

    @property
    def predictions_b(self) -> Any:
        """Predictions of set B (None without one)."""
        return self.controller.b.predictions if self.controller.b else None

    @property
    def metrics_b(self) -> Any:
        """Metrics of set B (None without one)."""
        return self.controller.b.metrics if self.controller.b else None

    @property
    def updates(self) -> int:
        """One per recomputation of the prompt-dependent views."""
        return self.log.updates

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per step of the last update."""
        return self.log.timings

    @property
    def last_update_s(self) -> float:
        """Seconds the last update took."""
        return self.log.last_update_s

    @property
    def errors(self) -> list[str]:
        """Every error a callback raised, as "Type: message"."""
        return self.log.errors

    @property
    def projection(self) -> Any:
        """The 2-D projection shown in the map now (a ``compute.Projection``)."""
        return self.controller.projector.current

    @property
    def text_encodes(self) -> int:
        """How many prompt texts were sent through the model so far."""
        return self.controller.texts.encoded

    @property
    def last_error(self) -> str:
        """The error shown in the status line until the next successful update."""
        return self.log.last_error
