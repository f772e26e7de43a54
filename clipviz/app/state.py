"""The Workbench's state, typed: what the images are, what is applied, what came out.

``ImageData`` is fixed at construction; ``PromptConfig`` is what the prompt panel committed;
``PromptResults`` is one prompt set's outcome (A, or B for the comparison); ``UpdateLog``
counts and times the updates. The ``Controller`` (controller.py) is the only writer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from clipviz.compute.id_rows import IdRows
from clipviz.compute.types import ImageEmbeddings, PromptEmbeddings
from clipviz.compute.zeroshot import Predictions


@dataclass
class ImageData:
    """The images of a workbench: embeddings, true labels, optional ImageSet and thumbnails.

    ``ids`` is the embeddings' own list (not a copy); the id -> row index and the label codes
    are built on first use, so a million images cost nothing for them until needed.
    """

    embeddings: ImageEmbeddings
    labels: list[str] | None
    images: Any = None
    thumbnails: list[bytes] | None = None

    @property
    def ids(self) -> list[str]:
        return self.embeddings.ids

    def __len__(self) -> int:
        return len(self.embeddings.ids)

    @cached_property
    def index(self) -> IdRows:
        """Id -> row look-up (a dict, built on the first look-up)."""
        return IdRows(self.ids)

    def rows_of(self, ids: list[str]) -> np.ndarray:
        """Row numbers of ``ids``; -1 for an unknown id."""
        if not ids:
            return np.zeros(0, np.int64)
        return self.index(ids)

    @cached_property
    def label_codes(self) -> tuple[np.ndarray, list[str]] | None:
        """(N,) int32 codes into the sorted distinct labels, or None without labels."""
        if self.labels is None:
            return None
        return factorize_sorted(self.labels)


@dataclass(frozen=True)
class PromptConfig:
    """The prompt panel's committed fields (what an update computes from)."""

    prompts: tuple[str, ...]
    prompts_b: tuple[str, ...] = ()
    templates: str | tuple[str, ...] = "single"
    ensemble: bool = True

    @classmethod
    def from_panel(cls, panel: Any) -> PromptConfig:
        templates = panel.templates
        return cls(
            tuple(panel.prompts),
            tuple(panel.prompts_b),
            templates if isinstance(templates, str) else tuple(templates),
            bool(panel.ensemble),
        )

    def template_arg(self) -> str | list[str]:
        return self.templates if isinstance(self.templates, str) else list(self.templates)

    def differs_a(self, other: PromptConfig | None) -> bool:
        """True when prompt set A must be recomputed going from ``other`` to this config."""
        return other is None or self.prompts != other.prompts or self._shared(other)

    def differs_b(self, other: PromptConfig | None) -> bool:
        """True when prompt set B must be recomputed going from ``other`` to this config."""
        return other is None or self.prompts_b != other.prompts_b or self._shared(other)

    def _shared(self, other: PromptConfig) -> bool:
        return self.templates != other.templates or self.ensemble != other.ensemble

    def as_panel_fields(self) -> dict[str, Any]:
        """The fields to put back into the prompt panel (e.g. after a refused edit)."""
        return {
            "prompts": list(self.prompts),
            "prompts_b": list(self.prompts_b),
            "templates": self.template_arg(),
            "ensemble": self.ensemble,
        }


@dataclass
class PromptResults:
    """One prompt set's applied outcome: its vectors, predictions, metrics and notes."""

    prompts: PromptEmbeddings
    predictions: Predictions
    metrics: Any = None  # compute.Metrics, or None without labels / matching prompts
    notes: list[str] = field(default_factory=list)

    @cached_property
    def top1(self) -> np.ndarray:
        """(N,) int32 predicted class per image (codes into ``predictions.classnames``)."""
        return self.predictions.topk_indices[:, 0].astype(np.int32)

    @property
    def predicted_codes(self) -> tuple[np.ndarray, list[str]]:
        """The predicted labels as (codes, names), what the views take instead of N strings."""
        return self.top1, list(self.predictions.classnames)

    @cached_property
    def ece(self) -> float:
        """Expected calibration error of top-1 (computed once, the status line reads it often)."""
        from clipviz.compute import calibration

        return calibration(self.predictions).ece


@dataclass
class UpdateLog:
    """How many updates ran, how long the last took (per step), and the errors so far."""

    updates: int = 0
    last_update_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    last_error: str = ""  # shown in the status line until the next successful update


def with_labels(emb: ImageEmbeddings, labels: list[str] | None) -> ImageEmbeddings:
    """The embeddings carrying ``labels`` (zero_shot reads them from there); no vector copy."""
    if labels is emb.labels or labels == emb.labels:
        return emb
    return dataclasses.replace(emb, labels=labels)


def factorize_sorted(labels: list[Any]) -> tuple[np.ndarray, list[str]]:
    """(N,) int32 codes into the sorted distinct labels (-1 for None or NaN), and those labels.

    As ``pandas.factorize(sort=True)``, without importing pandas on a reopen (half a second).
    """
    first: dict[Any, int] = {}
    raw = np.fromiter(
        (-1 if x is None or x != x else first.setdefault(x, len(first)) for x in labels),
        np.int64,
        len(labels),
    )
    seen = list(first)
    order = sorted(range(len(seen)), key=lambda i: seen[i])
    rank = np.empty(len(seen) + 1, np.int32)
    rank[order] = np.arange(len(seen), dtype=np.int32)
    rank[-1] = -1  # raw -1 (no label) stays -1
    return rank[raw], [str(seen[i]) for i in order]
