"""open_store: a clipviz store (or a clip-retrieval output folder) as ImageEmbeddings.

The vectors are memory-mapped, not read: ``vectors.npy`` (clipviz) or ``img_emb/*.npy``
(clip-retrieval, one file) become a read-only numpy view of the file, so opening a store of
1M x 512 fp16 costs the ids and labels, and the vectors' pages load when first used. They
keep the stored dtype (fp16 in the default store), which numpy and the compute layer accept.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipviz.compute.types import ImageEmbeddings, ModelInfo
from clipviz.engine.store_format import Manifest, StoreLayout, require

__all__ = ["StoreEmbeddings", "open_store"]


@dataclass
class StoreEmbeddings(ImageEmbeddings):
    """ImageEmbeddings read from a store folder; ``ann_index`` is its search index, if built.

    ``vectors`` is a read-only memory map of the store's vector file (float16 or float32).
    """

    store: Path | None = None
    ann_index: Any = None  # clipviz.compute.ann.AnnIndex, used by search above its size limit
    rows_checked: bool = False  # vectors map a vectors.npy whose rows were checked on writing

    def __post_init__(self) -> None:
        # Checking every row would read the whole file (5 s and 1 GB at 1M x 512 fp16); the
        # store checked the rows when it wrote vectors.npy. Anything else (a subset, another
        # array passed to dataclasses.replace) is checked as for any ImageEmbeddings.
        mapped = isinstance(self.vectors, np.memmap) and self.rows_checked
        if mapped and self.vectors.shape[0] == len(self.ids) and self.vectors.ndim == 2:
            return
        self.rows_checked = False
        super().__post_init__()


def open_store(
    path: str | os.PathLike,
    *,
    images_root: str | os.PathLike | None = None,
    model: Any = None,
) -> StoreEmbeddings:
    """Open an embedding store written by ``clipviz embed --store`` or by clip-retrieval.

    Parameters
    ----------
    path : path
        The store folder: a clipviz store (``manifest.json`` + ``shards/``) or a clip-retrieval
        output folder (``img_emb/img_emb_*.npy`` + ``metadata/metadata_*.parquet``).
    images_root : path, optional
        Where the images are now, if they moved since embedding (``paths`` are joined to it).
        For clip-retrieval, the folder its ``image_path`` values are relative to (ids become
        paths relative to it, as ``ImageSet.from_folder`` names them).
    model : ClipModel, optional
        clip-retrieval only: the model it embedded with (its output does not record it), so
        that text queries can be embedded in the same space.

    Returns
    -------
    StoreEmbeddings
        ImageEmbeddings with memory-mapped ``vectors``, ``ids`` (relative paths, as
        ``ImageSet.from_folder`` names them), ``labels``, ``paths`` and ``skipped``; pass it to
        ``Workbench(images_folder, embeddings=...)`` for thumbnails, or to ``clipviz.search``.
    """
    root = Path(path).expanduser()
    if (root / "manifest.json").is_file():
        return _open_clipviz(StoreLayout(root), images_root)
    if (root / "img_emb").is_dir():
        return _open_clip_retrieval(root, images_root, model)
    raise FileNotFoundError(
        f"{str(root)!r} is not an embedding store: expected manifest.json (clipviz embed "
        "--store) or img_emb/ and metadata/ (clip-retrieval inference)"
    )


def _open_clipviz(layout: StoreLayout, images_root: Any) -> StoreEmbeddings:
    manifest = Manifest.read(layout.manifest)
    if not manifest.complete:
        raise ValueError(
            f"the store {str(layout.root)!r} is incomplete (a run was stopped part-way); run the "
            "same clipviz embed command again to finish it"
        )
    vectors = _vectors(layout, manifest)
    table = layout.read_columns(["id", "label"])
    ids = table.column("id").to_pylist() if table is not None else []
    labels = _labels(table.column("label")) if table is not None else []
    base = os.fspath(images_root) if images_root is not None else manifest.root
    info = ModelInfo(manifest.model_key, manifest.model_name, manifest.logit_scale, manifest.dim)
    return StoreEmbeddings(
        ids=ids,
        vectors=vectors,
        model=info,
        labels=labels if any(lab is not None for lab in labels) else None,
        paths=JoinedPaths(base, ids),
        skipped=layout.read_skipped(),
        store=layout.root,
        ann_index=_load_index(layout, manifest),
        rows_checked=True,
    )


def _labels(column: Any) -> list[str | None]:
    """A dictionary-encoded column as a list that shares one str per distinct label."""
    out: list[str | None] = []
    for chunk in column.chunks:
        if not hasattr(chunk, "indices"):  # a plain string chunk
            out.extend(chunk.to_pylist())
            continue
        if chunk.null_count:  # unlabelled rows (rare): the slow path is fine
            out.extend(chunk.to_pylist())
            continue
        words = np.array(chunk.dictionary.to_pylist(), dtype=object)
        out.extend(words[_int_values(chunk.indices)].tolist())
    return out


def _int_values(ints: Any) -> np.ndarray:
    """A null-free Arrow integer array as a numpy view of its buffer. (Its ``to_numpy`` imports
    pandas and pyarrow.compute loads its kernels: together about 2 s of a 1M-row open.)"""
    dtype = np.dtype(str(ints.type))  # "int8" / "int16" / "int32" / "int64"
    return np.frombuffer(ints.buffers()[1], dtype=dtype, count=len(ints), offset=ints.offset *
                         dtype.itemsize)


class JoinedPaths(Sequence):
    """``root/id`` for every id, made when asked (a million joined strings cost seconds)."""

    def __init__(self, root: str, ids: list[str]):
        self.root, self.ids = root, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [os.path.join(self.root, x) for x in self.ids[i]]
        return os.path.join(self.root, self.ids[i])

    def __repr__(self) -> str:
        return f"<{len(self)} paths under {self.root!r}>"


def _vectors(layout: StoreLayout, manifest: Manifest) -> np.ndarray:
    """The memory-mapped vectors file; rewritten from the shards if missing or stale."""
    if not layout.vectors_fresh(manifest.fingerprint):
        layout.write_vectors(manifest)
    vectors = np.load(layout.vectors, mmap_mode="r", allow_pickle=False)
    if vectors.shape != (manifest.count, manifest.dim):
        raise ValueError(
            f"{str(layout.vectors)!r} holds {vectors.shape}, the manifest says "
            f"{(manifest.count, manifest.dim)}; delete it and open the store again"
        )
    return vectors


def _load_index(layout: StoreLayout, manifest: Manifest) -> Any:
    from clipviz.compute.ann import AnnIndex

    if not AnnIndex.exists(layout.index):
        return None
    index = AnnIndex.load(layout.index)
    if index.fingerprint != manifest.fingerprint:
        warnings.warn(
            f"ignoring the search index in {str(layout.index)!r}: it was built for another "
            "version of this store; rebuild it with: clipviz index " + str(layout.root),
            stacklevel=3,
        )
        return None
    return index


# ---------------------------------------------------------------------------- clip-retrieval
_PART = re.compile(r"_(\d+)\.(npy|parquet)$")


def _parts(folder: Path, prefix: str, ext: str) -> dict[int, Path]:
    found = folder.glob(f"{prefix}_*.{ext}") if folder.is_dir() else []
    return {int(m.group(1)): p for p in found if (m := _PART.search(p.name))}


def _open_clip_retrieval(root: Path, images_root: Any, model: Any) -> StoreEmbeddings:
    """clip-retrieval's layout: ``img_emb/img_emb_{n}.npy`` with ``metadata/metadata_{n}.parquet``
    (column ``image_path``, in the same row order), paired by their number ``n``."""
    pq = require("pyarrow.parquet", "open_store")
    embs = _parts(root / "img_emb", "img_emb", "npy")
    metas = _parts(root / "metadata", "metadata", "parquet")
    if not embs:
        raise FileNotFoundError(f"no img_emb/img_emb_*.npy files under {str(root)!r}")
    unpaired = sorted(set(embs) ^ set(metas))
    if unpaired:
        raise ValueError(
            f"clip-retrieval parts {unpaired} of {str(root)!r} have embeddings or metadata but "
            "not both; finish or remove them"
        )
    arrays = [np.load(embs[n], mmap_mode="r", allow_pickle=False) for n in sorted(embs)]
    paths: list[str] = []
    for n, emb in zip(sorted(embs), arrays, strict=True):
        col = pq.read_table(metas[n], columns=["image_path"]).column("image_path").to_pylist()
        if len(col) != len(emb):
            raise ValueError(
                f"{str(metas[n])!r} has {len(col)} rows but {str(embs[n])!r} {len(emb)} vectors"
            )
        paths.extend(str(p) for p in col)
    vectors = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)  # one copy only then
    ids = _ids_for(paths, images_root)
    info = model.info if model is not None else _unknown_model(root, int(vectors.shape[1]))
    if info.dim != vectors.shape[1]:
        raise ValueError(
            f"the model {info.name!r} makes {info.dim}-d vectors, {str(root)!r} holds "
            f"{vectors.shape[1]}-d ones: pass the model that clip-retrieval used"
        )
    full = [p if os.path.isabs(p) or images_root is None else os.path.join(images_root, p)
            for p in paths]
    return StoreEmbeddings(ids=ids, vectors=vectors, model=info, paths=full, store=root)


def _ids_for(paths: list[str], images_root: Any) -> list[str]:
    """Paths relative to ``images_root`` (as from_folder names them), else unique as given."""
    from clipviz.engine.imageset import _dedupe

    if images_root is None:
        return _dedupe(paths)
    base = os.path.abspath(os.fspath(images_root))
    rel = [Path(os.path.relpath(os.path.abspath(p), base)).as_posix() if os.path.isabs(p) else p
           for p in paths]
    return _dedupe(rel)


def _unknown_model(root: Path, dim: int) -> ModelInfo:
    """clip-retrieval does not record its model: a key of its own, so no other space matches."""
    import hashlib

    key = hashlib.sha256(f"clip-retrieval:{root.resolve()}".encode()).hexdigest()
    return ModelInfo(key, f"clip-retrieval ({root.name})", 100.0, dim)
