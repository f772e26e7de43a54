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
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) float32 cosine similarity, copying the columns ``old_sim`` already holds.

    ``old_of_new[j]`` is the column of ``old_sim`` equal to column j, or -1: those new columns
    are computed here and also returned on their own, (N, new) C-contiguous.
    """
    added = np.flatnonzero(old_of_new < 0)
    if len(added) == len(txt):
        sim = products(img, txt, chunk)
        return sim, sim
    kept = np.flatnonzero(old_of_new >= 0)
    dst, src, at = _as_slice(kept), _as_slice(old_of_new[kept]), _as_slice(added)
    new = products(img, txt[added], chunk)
    out = np.empty((len(img), len(txt)), np.float32)
    for part in row_chunks(len(img), chunk):  # each block of rows written while in cache
        out[part, dst] = old_sim[part, src]
        out[part, at] = new[part]
    return out, new


def products(img: np.ndarray, txt: np.ndarray, chunk: int) -> np.ndarray:
    """(N, C) ``img @ txt.T`` in float32: one BLAS call, or by chunks for other dtypes."""
    txt_t = np.ascontiguousarray(txt.T, dtype=np.float32)
    if img.dtype == np.float32:
        return np.asarray(np.matmul(img, txt_t))
    out = np.empty((len(img), len(txt)), np.float32)
    for part in row_chunks(len(img), chunk):
        np.matmul(img[part].astype(np.float32), txt_t, out=out[part])
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
    new_cols: np.ndarray,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The top-k of ``sim`` from the previous top-k ``old`` = (indices, similarities, columns).

    Rows whose previous top-k holds no removed column keep it (renumbered) and take in the new
    columns (``new_cols``, in column order) by insertion; the other rows, returned third, are
    ranked again. None when the kept columns changed their order (the previous order of ties
    would no longer hold) or the previous k was smaller: rank from scratch then.
    """
    n, c = sim.shape
    k = min(k, c)
    old_idx, old_vals, old_c = old
    kept = np.flatnonzero(old_of_new >= 0)
    src = old_of_new[kept]
    width = min(old_idx.shape[1], k)
    if not len(kept) or (np.diff(src) <= 0).any() or width < min(old_c, k):
        return None
    idx, vals = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    if width < k:  # a short previous top-k (fewer than k columns then) held them all: pad it
        idx[:, width:], vals[:, width:] = c, -np.inf
    vals[:, :width] = old_vals[:, :width]
    if len(kept) == old_c and kept[-1] == old_c - 1:  # nothing removed or renumbered
        idx[:, :width] = old_idx[:, :width]
        dirty = np.zeros(0, np.int64)
    else:
        new_of_old = np.full(old_c, -1, np.int64)
        new_of_old[src] = kept
        idx[:, :width] = new_of_old[old_idx[:, :width]]
        dirty = np.flatnonzero(_any_columns(idx[:, :width] < 0))
    for i, col in enumerate(np.flatnonzero(old_of_new < 0)):
        _insert(idx, vals, np.ascontiguousarray(new_cols[:, i]), int(col))
    if len(dirty):
        idx[dirty], vals[dirty] = topk_full(sim[dirty], k, chunk)
    return idx, vals, dirty


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


def normaliser(sim: np.ndarray, top1: np.ndarray, scale: float, chunk: int) -> np.ndarray:
    """(N,) float32 softmax denominators ``sum_j exp(scale * (sim_j - top1))`` per row.

    The arithmetic of ``softmax_scaled`` (float32, exponents clipped at -87, summed over the
    class-major chunk), so the probabilities are the same to the bit.
    """
    s32 = np.float32(scale)
    top = np.multiply(top1, s32, dtype=np.float32)  # = max of the scaled: rounding is monotone
    out = np.empty(len(sim), np.float32)
    for part in row_chunks(len(sim), chunk):
        z = np.multiply(np.ascontiguousarray(sim[part].T), s32, dtype=np.float32)
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
    values (N, r), added columns (N, a), rows to compute again). A row is computed again too
    where removing lost more than half of its sum (float32 cancellation), so the result stays
    within a few float32 roundings of a fresh ``normaliser``.
    """
    old_sum, old_top1 = old
    removed, added, redo = change
    s32 = np.float32(scale)
    old_top = np.multiply(old_top1, s32, dtype=np.float32)
    top = np.multiply(top1, s32, dtype=np.float32)
    out = old_sum.copy()
    for j in range(removed.shape[1]):
        out -= _terms(removed[:, j], s32, old_top)
    lost = np.flatnonzero(out < old_sum / 2)
    out *= np.exp(np.minimum(old_top - top, 0))  # a new maximum rescales the old terms
    for j in range(added.shape[1]):
        out += _terms(added[:, j], s32, top)
    rows = np.union1d(redo, lost)
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
    """(N, k) float32 probabilities of the top-k similarities ``top_sim``.

    Softmax: ``exp(scale * (s - top1)) / denominators``; the (N, C) probabilities themselves
    are never formed. Sigmoid: each similarity on its own (no denominators).
    """
    if scoring == "sigmoid":
        return sigmoid_scaled(top_sim, scale, float(bias))
    out = np.multiply(top_sim, np.float32(scale), dtype=np.float32)
    out -= out[:, :1].copy()
    np.maximum(out, np.float32(-87.0), out=out)
    np.exp(out, out=out)
    out /= denominators[:, None]
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


def _any_columns(mask: np.ndarray) -> np.ndarray:
    """``mask.any(axis=1)`` for a few columns: column by column (per-row reductions are slow)."""
    out = mask[:, 0].copy()
    for j in range(1, mask.shape[1]):
        out |= mask[:, j]
    return out


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (a plain copy instead of a gather)."""
    if len(index) and index[-1] - index[0] == len(index) - 1 and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index
