"""Result containers shared by every layer: plain numpy, no torch.

They are produced by ``clipviz.engine`` (embedding) and ``clipviz.compute`` (zero-shot),
and consumed by the views and the workbench. Vectors are float32 and L2-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCORINGS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class ModelInfo:
    """What compute needs to know about the model that made some embeddings.

    ``scoring`` is how the model was trained to turn similarities into probabilities:
    ``"softmax"`` (CLIP: a softmax over the classes of ``logit_scale * cosine``) or
    ``"sigmoid"`` (SigLIP: an independent ``sigmoid(logit_scale * cosine + logit_bias)`` per
    prompt, so one image's probabilities need not sum to 1).
    """

    key: str  # identity: name, weights checksum, preprocessing; equal keys = same vector space
    name: str
    logit_scale: float  # exp(learned temperature) of the model, e.g. 100.0 for OpenAI ViT-B-32
    dim: int
    logit_bias: float | None = None  # SigLIP's learned bias; None for CLIP
    scoring: str = "softmax"

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError(f"ModelInfo.scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if self.scoring == "sigmoid" and self.logit_bias is None:
            raise ValueError("ModelInfo(scoring='sigmoid') needs the model's logit_bias")


@dataclass(frozen=True)
class EmbedCounts:
    """Where the vectors of one :func:`embed_images` run came from (they sum to its length).

    ``encoded``: forward passes in this run; ``from_cache``: found in the disk cache as it was
    when the run started; ``duplicates``: same content as an image encoded earlier in this run.
    """

    encoded: int
    from_cache: int
    duplicates: int


@dataclass
class ImageEmbeddings:
    """Embedded images.

    ``ids[i]`` names ``vectors[i]``; ``labels`` (true labels) and ``paths`` are per image or None.
    ``skipped`` lists ``(item, reason)`` for every input that could not be embedded.

    Vectors you bring yourself are checked once here: rows that are not finite (NaN, inf) or
    are all zero raise ``ValueError`` naming their ids; rows that are not of unit length are
    L2-normalised (into a float32 copy), since cosines and zero-shot probabilities assume it.
    """

    ids: list[str]
    vectors: np.ndarray  # (N, D) float32, L2-normalised
    model: ModelInfo
    labels: list[str] | None = None
    paths: list[str | None] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    counts: EmbedCounts | None = None  # set by embed_images

    def __post_init__(self) -> None:
        self.vectors = _checked_unit_rows(self.vectors, self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            {
                "id": self.ids,
                "label": self.labels if self.labels is not None else [None] * len(self),
                "path": self.paths if self.paths is not None else [None] * len(self),
            }
        )


@dataclass
class PromptEmbeddings:
    """One vector per class (or free prompt), ensembled over ``templates``.

    ``per_template`` keeps the normalised (C, T, D) template embeddings so that ensembling can be
    switched off, or a single template chosen, without calling the model again.
    ``texts[c]`` are the exact strings that were encoded for class ``c``.
    """

    classnames: list[str]
    templates: list[str]
    vectors: np.ndarray  # (C, D) float32, L2-normalised ensemble
    model: ModelInfo
    per_template: np.ndarray | None = None  # (C, T, D) float32, each row L2-normalised
    texts: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.classnames)


_UNIT_ATOL = 1e-3  # fp16 round trips keep norms within ~5e-4 of 1


def _checked_unit_rows(vectors: Any, ids: list[str]) -> np.ndarray:
    """``vectors`` as (N, D) floats with unit rows; bad rows raise an error naming their ids."""
    v = np.asanyarray(vectors)  # keeps a read-only memory map (open_store) a memory map
    if v.dtype.kind != "f":
        v = v.astype(np.float32)
    if v.ndim != 2 or len(v) != len(ids):
        raise ValueError(
            f"ImageEmbeddings: vectors must have shape (len(ids), D) = ({len(ids)}, D), "
            f"got {v.shape}"
        )
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", v, v, dtype=np.float64))
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if len(bad):
        named = [ids[i] for i in bad[:10]]
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ValueError(
            f"ImageEmbeddings: {len(bad)} vector row(s) are NaN, infinite or all zero, for ids "
            f"{named}{more}; drop those images or recompute their vectors"
        )
    if np.abs(norms - 1.0).max(initial=0.0) > _UNIT_ATOL:
        v = (v / norms[:, None]).astype(np.float32)
    return v
