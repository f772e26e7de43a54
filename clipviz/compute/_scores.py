"""Similarity columns, top-k and top-k probabilities for zero_shot, from scratch or updated.

After a prompt edit most prompt vectors are unchanged, and so are their similarity columns: only
the new prompts need an image x prompt product (one matrix-vector product each), and the top-k
of an image changes only where a new column enters it or a removed one left it. Similarities
and top-k are stored column-major ((C, N), (k, N)), so each of those steps reads and writes
whole contiguous columns. Everything else goes in chunks of rows, so temporaries stay a few MB
at any N, and float16 or memory-mapped image vectors are read, never converted whole.

Ties are broken the same way everywhere: by similarity, highest first, then by column, lowest
first (a stable sort), so an updated top-k equals a top-k computed from scratch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def row_chunks(n: int, chunk: int) -> Iterator[slice]:
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


def match_columns(old_vectors: np.ndarray | None, new_vectors: np.ndarray) -> np.ndarray:
    """(C_new,) row of ``old_vectors`` holding each new vector bit for bit; -1 for a new one."""
    if old_vectors is None:
        return np.full(len(new_vectors), -1, np.int64)
    index: dict[bytes, int] = {}
    for i, vector in enumerate(np.asarray(old_vectors, np.float32)):
        index.setdefault(vector.tobytes(), i)
    return np.array([index.get(v.tobytes(), -1) for v in new_vectors], np.int64)


def score(
    img: np.ndarray,
    txt: np.ndarray,
    old_sim: np.ndarray | None,
    old_of_new: np.ndarray,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) float32 cosine similarity, copying the columns ``old_sim`` already holds.

    ``old_of_new[j]`` is the column of ``old_sim`` equal to column j, or -1: those new columns
    are computed here and also returned on their own, (N, new). Both are column-major views
    of (C, N) storage: a kept column is one contiguous copy, a new one one matrix-vector
    product written in place.
    """
    added = np.flatnonzero(old_of_new < 0)
    out_t = np.empty((len(txt), len(img)), np.float32)
    if len(added) == len(txt):
        products_into(img, txt, out_t, chunk)
        return out_t.T, out_t.T
    kept = np.flatnonzero(old_of_new >= 0)
    old_t = old_sim.T  # (C_old, N): rows contiguous when old_sim is column-major
    for dst, src in _runs(kept, old_of_new[kept]):
        out_t[dst] = old_t[src]
    at = _as_slice(added)
    if isinstance(at, slice):
        products_into(img, txt[added], out_t[at], chunk)
        return out_t.T, out_t[at].T
    new_t = np.empty((len(added), len(img)), np.float32)
    products_into(img, txt[added], new_t, chunk)
    out_t[added] = new_t
    return out_t.T, new_t.T


def products(img: np.ndarray, txt: np.ndarray, chunk: int) -> np.ndarray:
    """(N, C) ``img @ txt.T`` in float32: one BLAS call, or by chunks for other dtypes."""
    txt_t = np.ascontiguousarray(txt.T, dtype=np.float32)
    if img.dtype == np.float32:
        return np.asarray(np.matmul(img, txt_t))
    out = np.empty((len(img), len(txt)), np.float32)
    for part in row_chunks(len(img), chunk):
        np.matmul(img[part].astype(np.float32), txt_t, out=out[part])
    return out


def products_into(img: np.ndarray, txt: np.ndarray, out_t: np.ndarray, chunk: int) -> None:
    """``out_t[:] = txt @ img.T``, (C, N) float32: one BLAS call, or by chunks (float16)."""
    txt = np.ascontiguousarray(txt, dtype=np.float32)
    if img.dtype == np.float32 and isinstance(img, np.ndarray) and img.flags.c_contiguous:
        np.matmul(txt, np.asarray(img).T, out=out_t)
        return
    for part in row_chunks(len(img), chunk):
        out_t[:, part] = txt @ np.asarray(img[part], np.float32).T


def topk_full(sim: np.ndarray, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) int64 columns of the k highest similarities per row, and those similarities.

    Both column-major ((k, N) storage), as ``topk_update`` and ``topk_probs`` read them.
    """
    n = len(sim)
    idx_t, vals_t = np.empty((k, n), np.int64), np.empty((k, n), np.float32)
    for part in row_chunks(n, chunk):
        s = np.ascontiguousarray(sim[part])
        i = topk(s, k)
        idx_t[:, part] = i.T
        vals_t[:, part] = np.take_along_axis(s, i, axis=1).T
    return idx_t.T, vals_t.T


def normaliser(sim: np.ndarray, top1: np.ndarray, scale: float, chunk: int) -> np.ndarray:
    """(N,) float32 softmax denominators ``sum_j exp(scale * (sim_j - top1))`` per row.

    The arithmetic of ``softmax_scaled`` (float32, exponents clipped at -87, summed over the
    class-major chunk), so the probabilities are the same to the bit.
    """
    s32 = np.float32(scale)
    top = np.multiply(top1, s32, dtype=np.float32)  # = max of the scaled: rounding is monotone
    out = np.empty(len(sim), np.float32)
    for part in row_chunks(len(sim), chunk):
        z = np.multiply(sim[part].T, s32, dtype=np.float32)  # (C, chunk), class-major
        z -= top[part]
        np.maximum(z, np.float32(-87.0), out=z)
        np.exp(z, out=z)
        out[part] = z.sum(axis=0)
    return out


def normaliser_update(
    old: tuple[np.ndarray, np.ndarray],
    top1: np.ndarray,
    scale: float,
    change: tuple[np.ndarray, np.ndarray, np.ndarray],
    sim: np.ndarray,
    chunk: int,
) -> np.ndarray:
    """The denominators after columns were removed and added, from the previous ones.

    ``old`` = (denominators, top-1 similarities) before; ``change`` = (removed columns' old
    values (N, r), added columns (N, a), rows to compute again: those whose top-1 was
    removed). A row is computed again too where removing lost more than half of its sum
    (float32 cancellation), so the result stays within a few float32 roundings of a fresh
    ``normaliser``.
    """
    old_sum, old_top1 = old
    removed, added, redo = change
    s32 = np.float32(scale)
    old_top = np.multiply(old_top1, s32, dtype=np.float32)
    moved = np.flatnonzero(top1 != old_top1)  # few rows: the rest keep their scaled top-1
    top = old_top.copy()
    top[moved] = np.multiply(top1[moved], s32, dtype=np.float32)
    out = old_sum.copy()
    for j in range(removed.shape[1]):
        out -= _terms(removed[:, j], s32, old_top)
    again = out < old_sum / 2
    rose = moved[top[moved] > old_top[moved]]  # a new maximum rescales the old terms
    if len(rose):
        out[rose] *= np.exp(old_top[rose] - top[rose])
    for j in range(added.shape[1]):
        out += _terms(added[:, j], s32, top)
    again[redo] = True
    rows = np.flatnonzero(again)
    if len(rows):
        out[rows] = normaliser(sim[rows], top1[rows], scale, chunk)
    return out


def _terms(v: np.ndarray, s32: np.float32, top: np.ndarray) -> np.ndarray:
    z = np.multiply(v, s32, dtype=np.float32)
    z -= top
    np.maximum(z, np.float32(-87.0), out=z)
    return np.exp(z, out=z)


def topk_probs(
    top_sim: np.ndarray,
    denominators: np.ndarray | None,
    scale: float,
    *,
    scoring: str,
    bias: float | None,
) -> np.ndarray:
    """(N, k) float32 probabilities of the top-k similarities ``top_sim`` (column-major).

    Softmax: ``exp(scale * (s - top1)) / denominators``; the (N, C) probabilities themselves
    are never formed. Sigmoid: each similarity on its own (no denominators).
    """
    if scoring == "sigmoid":
        return sigmoid_scaled(top_sim.T, scale, float(bias)).T
    out = np.multiply(top_sim.T, np.float32(scale), dtype=np.float32)  # (k, N): rows contiguous
    rest = out[1:]  # the top-1's term is exp(0) = 1: no exp for it
    rest -= out[0]
    np.maximum(rest, np.float32(-87.0), out=rest)
    np.exp(rest, out=rest)
    out[0] = 1.0
    out /= denominators
    return out.T


def topk_probs_update(
    old_probs: np.ndarray,
    top_sim: np.ndarray,
    scale: float,
    rows: np.ndarray,
    *,
    bias: float | None = None,
    sums: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``topk_probs`` from the previous ones ``old_probs``: only ``rows`` (whose top-k
    changed) are computed; every other row's top-k similarities are the previous ones.

    Sigmoid (``sums`` None): those rows keep their probabilities, bit for bit. Softmax
    (``sums`` = (previous, new denominators)): their terms ``exp(scale * (s - top1))`` are
    unchanged, so they scale by previous / new denominator (two float32 roundings; the
    top-1's ``1 / denominator`` is exact), a multiply per entry instead of an exp.
    """
    if sums is None:
        out = old_probs.T.copy()  # (k, N): rows contiguous
    else:
        old_sums, new_sums = sums
        out = np.multiply(old_probs.T, old_sums / new_sums, dtype=np.float32)
        np.divide(np.float32(1.0), new_sums, out=out[0])
    if len(rows):
        scoring = "sigmoid" if sums is None else "softmax"
        denominators = None if sums is None else sums[1][rows]
        part = topk_probs(top_sim[rows], denominators, scale, scoring=scoring, bias=bias)
        out[:, rows] = part.T
    return out.T


def sigmoid_scaled(sim: np.ndarray, scale: float, bias: float) -> np.ndarray:
    """SigLIP's per-pair probability ``sigmoid(scale * sim + bias)``, float32, same shape."""
    z = np.multiply(sim, np.float32(scale), dtype=np.float32)
    z += np.float32(bias)
    np.negative(z, out=z)
    np.clip(z, -88.0, 88.0, out=z)  # exp overflows float32 beyond 88
    np.exp(z, out=z)
    z += np.float32(1.0)
    np.reciprocal(z, out=z)
    return z


def softmax_scaled(sim_t: np.ndarray, scale: float) -> np.ndarray:
    """Softmax over classes of (C, N) similarities, returned as (N, C) C-contiguous float32.

    Reducing over axis 0 of the class-major array is a handful of vectorised row operations
    (per-row reductions over 20 columns are several times slower for 100k images); one float32
    buffer is reused throughout, no float64 copies.
    """
    out = np.multiply(sim_t, np.float32(scale), dtype=np.float32)
    out -= out.max(axis=0, keepdims=True)
    # exp of very negative float32 values takes a slow underflow path; exp(-87) is ~1e-38 anyway
    np.maximum(out, np.float32(-87.0), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=0, keepdims=True)
    return np.ascontiguousarray(out.T)


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores per row: largest first, ties by lowest column.

    Ranked on cosine similarity, not probabilities: with a logit scale of 100 the float32
    softmax underflows to exactly 0 for distant classes, which would make their order arbitrary.
    For short rows a full (stable) argsort is faster than argpartition plus a sort of the k
    winners.
    """
    n, c = scores.shape
    if c <= 64 or k == c:
        idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
        idx = np.take_along_axis(part, order, axis=1)
    return np.ascontiguousarray(idx, dtype=np.int64)


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (a plain copy instead of a gather)."""
    if len(index) and index[-1] - index[0] == len(index) - 1 and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _runs(dst: np.ndarray, src: np.ndarray) -> Iterator[tuple[slice, slice]]:
    """Split a column mapping into runs consecutive on both sides: one block copy each."""
    if not len(dst):
        return
    breaks = np.flatnonzero((np.diff(dst) != 1) | (np.diff(src) != 1)) + 1
    for a, b in zip([0, *breaks.tolist()], [*breaks.tolist(), len(dst)], strict=True):
        yield slice(int(dst[a]), int(dst[b - 1]) + 1), slice(int(src[a]), int(src[b - 1]) + 1)
