"""Prompt vectors for the Workbench: every text is encoded once per session, or once ever.

``TextCache`` keeps a dict text -> vector. A prompt edit encodes only texts never seen before;
switching ensembling or going back to an earlier template set encodes nothing. Building the
``PromptEmbeddings`` for a prompt list is then array stacking plus ``compute.ensemble``.
With a disk cache, texts encoded by an earlier session of the same model (same ``info.key``:
weights, preprocessing, precision) are read back as the float32 vectors it encoded, so a
reopened workbench needs no model for them (a deferred ``load_model`` is then never built).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from clipviz._cache_dir import resolve_cache_dir
from clipviz.compute import ensemble as ensemble_vectors
from clipviz.compute import get_templates
from clipviz.compute.types import ModelInfo, PromptEmbeddings


def is_free_prompt(line: str) -> bool:
    """A line in double quotes is a free prompt, used verbatim instead of through templates."""
    return len(line) >= 2 and line[0] == '"' and line[-1] == '"'


def display_name(line: str) -> str:
    """The name shown for a prompt line: the class name, or the free prompt without quotes."""
    return line[1:-1].strip() if is_free_prompt(line) else line


class TextCache:
    """Encodes texts with ``model.encode_texts``, each distinct text only once.

    Parameters
    ----------
    model : ClipModel-like
        Anything with ``encode_texts(list[str]) -> (N, D) float32`` and ``info`` (ModelInfo).
    cache : bool or path, optional
        Disk cache of text vectors keyed by model key and text (``True``: the default cache
        folder; None/False: this session only). A prompt the model truncated is never stored,
        so its warning is given every time.

    Attributes
    ----------
    encoded : int
        How many texts went through the model so far (tests and the status line read it).
    from_disk : int
        How many texts were read from the disk cache.
    """

    def __init__(self, model: Any, cache: bool | str | os.PathLike | None = None) -> None:
        if not hasattr(model, "encode_texts"):
            raise TypeError(
                f"model must be a clipviz model with encode_texts() (from clipviz.load_model), "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.vectors: dict[str, np.ndarray] = {}
        self.encoded = self.from_disk = 0
        root = resolve_cache_dir(cache)
        self._disk: Any = None
        if root is not None:
            from clipviz.engine.cache import EmbeddingCache

            self._disk = EmbeddingCache(root, model.info.key, model.info.dim, kind="texts")
        self._disk_index: dict[bytes, np.ndarray] | None = None  # read on the first new text

    @property
    def info(self) -> ModelInfo:
        """The model's ModelInfo (key, name, logit_scale, dim)."""
        return self.model.info

    def get(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` as an (N, D) float32 array, encoding only the new ones."""
        new = list(dict.fromkeys(x for x in texts if x not in self.vectors))
        if new and self._disk is not None:
            new = self._read_disk(new)
        if new:
            self._encode(new)
        if not texts:
            return np.zeros((0, self.info.dim), np.float32)
        return np.stack([self.vectors[x] for x in texts])

    def _read_disk(self, texts: list[str]) -> list[str]:
        """Take the texts found in the disk cache; return the others."""
        if self._disk_index is None:
            self._disk_index = self._disk.load()
        index, rest = self._disk_index, []
        for text in texts:
            row = index.get(_text_digest(text))
            if row is None:
                rest.append(text)
            else:
                self.vectors[text] = np.asarray(row, np.float32)
                self.from_disk += 1
        return rest

    def _encode(self, texts: list[str]) -> None:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            out = np.asarray(self.model.encode_texts(texts), dtype=np.float32)
        for w in said:  # given on, as if not caught
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        if out.shape[0] != len(texts):
            raise RuntimeError(
                f"model.encode_texts returned {out.shape[0]} vectors for {len(texts)} texts"
            )
        self.vectors.update(zip(texts, out, strict=True))
        self.encoded += len(texts)
        truncated = any(w.category.__name__ == "PromptTruncatedWarning" for w in said)
        if self._disk is not None and not truncated:
            digests = [_text_digest(x) for x in texts]
            self._disk.write(digests, out)
            self._disk_index.update(zip(digests, out, strict=True))

    def prompts(
        self, lines: Sequence[str], templates: str | Sequence[str], *, ensemble: bool = True
    ) -> PromptEmbeddings:
        """Prompt embeddings for prompt lines (class names, or quoted free prompts).

        Parameters
        ----------
        lines : sequence of str
            One class name or ``"free prompt"`` per entry.
        templates : str or sequence of str
            A template set name or custom templates (see ``compute.get_templates``).
        ensemble : bool
            Average over the templates (True) or use the first template only (False).

        Returns
        -------
        PromptEmbeddings
            ``classnames`` are the display names; ``texts[c]`` what was encoded for class c.
        """
        if not lines:
            raise ValueError("no prompts given: type at least one class name or prompt")
        names = [display_name(x) for x in lines]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"prompt {dup!r} appears twice; each prompt must be unique")
        tpl = get_templates(templates if isinstance(templates, str) else list(templates))
        used = tpl if ensemble else tpl[:1]
        texts = [
            [display_name(x)] * len(used) if is_free_prompt(x) else [t.format(x) for t in used]
            for x in lines
        ]
        flat = [s for row in texts for s in row]
        per_template = self.get(flat).reshape(len(lines), len(used), -1)
        vectors = ensemble_vectors(per_template) if len(used) > 1 else per_template[:, 0].copy()
        return PromptEmbeddings(
            classnames=names,
            templates=list(used),
            vectors=vectors,
            model=self.info,
            per_template=per_template,
            texts=texts,
        )


def _text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
