"""Similarity columns, top-k and top-k probabilities for zero_shot, from scratch or updated.

After a prompt edit most prompt vectors are unchanged, and so are their similarity columns: only
the new prompts need an image x prompt product (one matrix-vector product each), and the top-k
of an image changes only where a new column enters it or a removed one left it. Everything
goes in chunks of rows, so temporaries stay a few MB at any N, and float16 or memory-mapped
image vectors are read, never converted whole.

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
) -> np.ndarray:
    """(N, C) float32 cosine similarity, copying the columns ``old_sim`` already holds.

    ``old_of_new[j]`` is the column of ``old_sim`` equal to column j, or -1 (computed here).
    """
    n, c = len(img), len(txt)
    out = np.empty((n, c), np.float32)
    added = np.flatnonzero(old_of_new < 0)
    kept = np.flatnonzero(old_of_new >= 0)
    dst, src = _as_slice(kept), _as_slice(old_of_new[kept])
    txt_t = np.ascontiguousarray(txt[added].T, dtype=np.float32)
    all_new = len(added) == c
    for part in row_chunks(n, chunk):
        block = out[part]
        if len(kept):
            block[:, dst] = old_sim[part, src]
        if len(added):
            rows = img[part]
            if rows.dtype != np.float32:
                rows = rows.astype(np.float32)
            if all_new:
                np.matmul(rows, txt_t, out=block)
            else:
                block[:, added] = rows @ txt_t
    return out


def topk_full(sim: np.ndarray, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) int64 columns of the k highest similarities per row, and those similarities."""
    n = len(sim)
    idx, vals = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    for part in row_chunks(n, chunk):
        s = sim[part]
        idx[part] = topk(s, k)
        vals[part] = np.take_along_axis(s, idx[part], axis=1)
    return idx, vals


def topk_update(
    sim: np.ndarray,
    k: int,
    old: tuple[np.ndarray, np.ndarray, int],
    old_of_new: np.ndarray,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The top-k of ``sim`` from the previous top-k ``old`` = (indices, similarities, columns).

    Rows whose previous top-k holds no removed column keep it (renumbered) and take in the new
    columns by insertion; the other rows are ranked again. None when the kept columns changed
    their order (the previous order of ties would no longer hold): rank from scratch then.
    """
    n, c = sim.shape
    k = min(k, c)
    old_idx, old_vals, old_c = old
    kept = np.flatnonzero(old_of_new >= 0)
    src = old_of_new[kept]
    if not len(kept) or (np.diff(src) <= 0).any():
        return None
    width = min(old_idx.shape[1], k)
    if width < min(old_c, k):  # ranked with a smaller k before: not enough kept to go on
        return None
    new_of_old = np.full(old_c, -1, np.int64)
    new_of_old[src] = kept
    mapped = new_of_old[old_idx[:, :width]]
    dirty = (mapped < 0).any(axis=1)
    # a short previous top-k (fewer than k columns then) held them all; pad it
    idx, vals = np.full((n, k), c, np.int64), np.full((n, k), -np.inf, np.float32)
    idx[:, :width], vals[:, :width] = mapped, old_vals[:, :width]
    for col in np.flatnonzero(old_of_new < 0):
        _insert(idx, vals, np.ascontiguousarray(sim[:, col]), int(col))
    rows = np.flatnonzero(dirty)
    if len(rows):
        idx[rows], vals[rows] = topk_full(sim[rows], k, chunk)
    return idx, vals


def _insert(idx: np.ndarray, vals: np.ndarray, v: np.ndarray, col: int) -> None:
    """Insert column ``col`` (similarities ``v``) into each row's sorted top-k, in place."""
    last_v, last_i = vals[:, -1], idx[:, -1]
    rows = np.flatnonzero((v > last_v) | ((v == last_v) & (last_i > col)))
    if not len(rows):
        return
    rv, ri, x = vals[rows], idx[rows], v[rows][:, None]
    pos = ((rv > x) | ((rv == x) & (ri < col))).sum(axis=1)[:, None]
    r = np.arange(rv.shape[1])[None, :]
    before, at = r < pos, r == pos
    shifted_v = np.concatenate([rv[:, :1], rv[:, :-1]], axis=1)
    shifted_i = np.concatenate([ri[:, :1], ri[:, :-1]], axis=1)
    vals[rows] = np.where(before, rv, np.where(at, x, shifted_v))
    idx[rows] = np.where(before, ri, np.where(at, col, shifted_i))


def topk_probs(
    sim: np.ndarray,
    top_sim: np.ndarray,
    scale: float,
    *,
    scoring: str,
    bias: float | None,
    chunk: int,
) -> np.ndarray:
    """(N, k) float32 probabilities of the top-k similarities ``top_sim``.

    The softmax needs each row's normaliser over all C classes (one pass over the similarities,
    in float32); the (N, C) probabilities themselves are never formed. The arithmetic is that of
    ``softmax_scaled``, so the values are the same to the bit.
    """
    if scoring == "sigmoid":
        return sigmoid_scaled(top_sim, scale, float(bias))
    s32 = np.float32(scale)
    out = np.multiply(top_sim, s32, dtype=np.float32)
    # scale * max similarity is the max of the scaled ones: float rounding is monotone
    top = out[:, :1].copy()
    out -= top
    np.maximum(out, np.float32(-87.0), out=out)
    np.exp(out, out=out)
    for part in row_chunks(len(sim), chunk):
        z = np.multiply(np.ascontiguousarray(sim[part].T), s32, dtype=np.float32)
        z -= top[part, 0]
        np.maximum(z, np.float32(-87.0), out=z)
        np.exp(z, out=z)
        out[part] /= z.sum(axis=0)[:, None]
    return out


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
