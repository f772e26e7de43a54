"""Approximate nearest-neighbour search for large collections (faiss IVF, imported lazily).

Exact search (:func:`clipviz.compute.nearest`) is one matrix product and stays the default; an
:class:`AnnIndex` takes over in :func:`nearest_auto` from ``ANN_MIN_ROWS`` rows, where the
product over every row costs more than a person should wait per keystroke. The index is an
inverted file over k-means cells with fp16 vectors (faiss ``IVF{n},SQfp16``, inner product on
unit vectors = cosine): ``nprobe`` cells are scanned per query. faiss was chosen over usearch
(HNSW) by ``benchmarks/store_ann.py``: see its JSON for build time, recall@10 and latency.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipviz.compute.search import nearest

__all__ = ["ANN_MIN_ROWS", "AnnIndex", "nearest_auto"]

#: From this many rows a built index answers queries instead of the exact matrix product.
ANN_MIN_ROWS = 200_000
_INSTALL = 'pip install "clipviz[distributed]"'
_TRAIN_PER_CELL = 64  # k-means training points per cell (faiss warns below 39)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as err:
        raise ImportError(f"the search index needs faiss: {_INSTALL}") from err
    return faiss


@dataclass
class AnnIndex:
    """A faiss IVF index over unit vectors; ``fingerprint`` names the store it indexes."""

    index: Any
    dim: int
    count: int
    nprobe: int
    fingerprint: str = ""

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        cells: int | None = None,
        nprobe: int | None = None,
        fingerprint: str = "",
        chunk: int = 65_536,
        seed: int = 0,
    ) -> AnnIndex:
        """Train k-means cells on a sample and add every vector (read ``chunk`` rows at a time,
        so a memory-mapped fp16 store is never copied whole to float32).

        Parameters
        ----------
        vectors : np.ndarray
            (N, D) unit vectors (fp16 or fp32, memory-mapped is fine).
        cells : int, optional
            Number of inverted lists; default about ``sqrt(N)``, at most 4096.
        nprobe : int, optional
            Cells scanned per query; default ``cells // 64`` (at least 8): 16 of 1,000 cells
            gave recall@10 1.0 at 15 ms on 1M x 512 in benchmarks/store_ann.py.
        """
        faiss = _faiss()
        n, dim = vectors.shape
        if n == 0:
            raise ValueError("cannot build a search index over an empty collection")
        cells = int(cells or max(1, min(4096, int(np.sqrt(n)))))
        cells = min(cells, n)
        nprobe = int(nprobe or max(8, cells // 64))
        index = faiss.index_factory(dim, f"IVF{cells},SQfp16", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, cells * _TRAIN_PER_CELL), replace=False))
        index.train(_f32(vectors[sample]))
        for start in range(0, n, chunk):
            index.add(_f32(vectors[start : start + chunk]))
        index.nprobe = min(nprobe, cells)
        return cls(index, dim, n, index.nprobe, fingerprint)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(M, k) row indices and cosine scores, best first (like :func:`nearest`)."""
        q = _f32(np.atleast_2d(query))
        if q.shape[1] != self.dim:
            raise ValueError(
                f"query dimension {q.shape[1]} does not match the index's {self.dim}; "
                "embed the query with the same model"
            )
        self.index.nprobe = self.nprobe
        scores, idx = self.index.search(q, int(min(k, self.count)))
        return idx.astype(np.int64), scores.astype(np.float32)

    # ---- files --------------------------------------------------------------------------
    @staticmethod
    def exists(folder: str | os.PathLike) -> bool:
        return (Path(folder) / "ivf.faiss").is_file() and (Path(folder) / "ivf.json").is_file()

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``ivf.faiss`` and ``ivf.json`` (temp file + rename each)."""
        faiss = _faiss()
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".ivf.{os.getpid()}.tmp"
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, out / "ivf.faiss")
        meta = {"dim": self.dim, "count": self.count, "nprobe": self.nprobe,
                "fingerprint": self.fingerprint}
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, out / "ivf.json")
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike) -> AnnIndex:
        faiss = _faiss()
        folder = Path(folder)
        meta = json.loads((folder / "ivf.json").read_text())
        index = faiss.read_index(str(folder / "ivf.faiss"), faiss.IO_FLAG_MMAP)
        return cls(index, int(meta["dim"]), int(meta["count"]), int(meta["nprobe"]),
                   str(meta.get("fingerprint", "")))


def nearest_auto(
    emb: Any,
    query: np.ndarray,
    k: int = 10,
    *,
    exclude: int | Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest`, answered by ``emb.ann_index`` when there is one and the collection has
    at least ``ANN_MIN_ROWS`` rows (an opened store with ``clipviz index`` run on it)."""
    index = getattr(emb, "ann_index", None)
    if index is None or len(emb.ids) < ANN_MIN_ROWS or index.count != len(emb.ids):
        return nearest(emb, query, k, exclude=exclude)
    q = np.asarray(query, np.float32)
    single = q.ndim == 1
    q = np.atleast_2d(q)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    extra = 0 if exclude is None else 1
    idx, scores = index.search(q, k + extra)
    if exclude is not None:
        rows = np.atleast_1d(np.asarray(exclude)).reshape(-1, 1)
        keep = idx != rows
        idx = np.stack([i[m][:k] for i, m in zip(idx, keep, strict=True)])
        scores = np.stack([s[m][:k] for s, m in zip(scores, keep, strict=True)])
    else:
        idx, scores = idx[:, :k], scores[:, :k]
    return (idx[0], scores[0]) if single else (idx, scores)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)
