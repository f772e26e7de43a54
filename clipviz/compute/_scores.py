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


def topk_update(
    sim: np.ndarray,
    k: int,
    old: tuple[np.ndarray, np.ndarray, int],
    old_of_new: np.ndarray,
    new_cols: np.ndarray,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The top-k of ``sim`` from the previous top-k ``old`` = (indices, similarities, columns).

    Each row keeps its previous top-k (renumbered); a row that lost a removed column refills
    it from the best kept columns outside its top-k (an argmax per missing place, not a sort);
    then the new columns (``new_cols``, in column order) enter by insertion. Returns the
    top-k and the rows whose previous top-1 was removed. None when the kept columns changed
    their order (the previous order of ties would no longer hold) or the previous k was
    smaller: rank from scratch then.
    """
    n, c = sim.shape
    k = min(k, c)
    old_idx, old_vals, old_c = old
    kept = np.flatnonzero(old_of_new >= 0)
    src = old_of_new[kept]
    width = min(old_idx.shape[1], k)
    if not len(kept) or (np.diff(src) <= 0).any() or width < min(old_c, k):
        return None
    idx_t, vals_t = np.empty((k, n), np.int64), np.empty((k, n), np.float32)
    if width < k:  # a short previous top-k (fewer than k columns then) held them all: pad it
        idx_t[width:], vals_t[width:] = c, -np.inf
    vals_t[:width] = old_vals[:, :width].T
    lost_top1 = np.zeros(0, np.int64)
    if len(kept) == old_c and kept[-1] == old_c - 1:  # nothing removed or renumbered
        idx_t[:width] = old_idx[:, :width].T
    else:
        gone = _renumber(idx_t[:width], old_idx[:, :width].T, kept, src, old_c)
        lost_top1 = np.flatnonzero(gone[0])
        dirty = np.flatnonzero(np.logical_or.reduce(gone, axis=0))
        for part in row_chunks(len(dirty), chunk):  # temporaries: (C, chunk), not (C, N)
            _refill(idx_t, vals_t, sim, dirty[part], np.flatnonzero(old_of_new < 0))
    for i, col in enumerate(np.flatnonzero(old_of_new < 0)):
        _insert(idx_t, vals_t, np.ascontiguousarray(new_cols[:, i]), int(col), chunk)
    return idx_t.T, vals_t.T, lost_top1


def _renumber(
    idx_t: np.ndarray, old_t: np.ndarray, kept: np.ndarray, src: np.ndarray, old_c: int
) -> np.ndarray:
    """Write ``old_t``'s columns renumbered into ``idx_t`` (-1: removed); the removed mask.

    A prompt edited in place keeps every other column where it was: then a copy and one
    comparison per removed column, instead of a look-up per entry.
    """
    removed = np.setdiff1d(np.arange(old_c), src)
    if len(kept) == len(src) and (kept == src).all() and len(removed) <= 4:
        np.copyto(idx_t, old_t)
        gone = idx_t == removed[0]
        for col in removed[1:]:
            gone |= idx_t == col
        idx_t[gone] = -1
        return gone
    new_of_old = np.full(old_c, -1, np.int64)
    new_of_old[src] = kept
    np.take(new_of_old, old_t, out=idx_t)
    return idx_t < 0


def _refill(
    idx_t: np.ndarray, vals_t: np.ndarray, sim: np.ndarray, rows: np.ndarray, added: np.ndarray
) -> None:
    """Rows whose top-k lost columns (index -1): close the gaps, fill the freed places.

    The remaining entries keep their order; each freed place takes the best kept column not
    yet in the row (a running maximum over the columns, strict, so the lowest column among
    equals wins: the tie order of ``topk``). New columns are left out here, they enter by
    ``_insert`` next. A place no column is left for gets the sentinel (column C, -inf),
    which an insertion then replaces. Everything is (places or columns, rows): contiguous.
    """
    n_cols, k, n_rows = sim.shape[1], len(idx_t), len(rows)
    ti, tv = idx_t[:, rows], vals_t[:, rows]
    filled = _close_gaps(ti, tv, n_cols)
    s_t = np.empty((n_cols + 1, n_rows), np.float32)  # the last column: the sentinel
    np.take(sim.T, rows, axis=1, out=s_t[:n_cols])
    s_t[n_cols], s_t[added] = -np.inf, -np.inf
    flat, r = s_t.reshape(-1), np.arange(n_rows)
    for place in range(k):  # already in the row's top-k (the sentinel: harmless)
        flat[ti[place] * n_rows + r] = -np.inf
    for place in range(int(filled.min()), k):
        need = np.flatnonzero(filled <= place)
        sub = s_t if len(need) == n_rows else s_t[:, need]
        best_v, best_i = _column_max(sub)
        ti[place, need] = np.where(best_v == -np.inf, n_cols, best_i)
        tv[place, need] = best_v
        flat[best_i * n_rows + need] = -np.inf
    idx_t[:, rows], vals_t[:, rows] = ti, tv


def _close_gaps(ti: np.ndarray, tv: np.ndarray, n_cols: int) -> np.ndarray:
    """Move each (k, R) row's entries up over its removed ones (-1), in place; sentinels
    (column ``n_cols``, -inf) fill the end. Returns the entries left per row.

    One pass removes each row's first gap (an edit usually removes one column).
    """
    k = len(ti)
    while True:
        first = np.full(ti.shape[1], k, np.int32)
        for place in range(k - 1, -1, -1):
            first[ti[place] < 0] = place
        if (first == k).all():
            return ((ti >= 0) & (ti < n_cols)).sum(axis=0)
        for place in range(k - 1):
            shift = first <= place
            np.copyto(ti[place], ti[place + 1], where=shift)
            np.copyto(tv[place], tv[place + 1], where=shift)
        ti[-1, first < k], tv[-1, first < k] = n_cols, -np.inf


def _column_max(s_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (C, R) ``s_t``: the maximum and its first row (row by row, contiguous)."""
    best_v, best_i = s_t[0].copy(), np.zeros(s_t.shape[1], np.int64)
    for j in range(1, len(s_t)):
        better = s_t[j] > best_v
        np.copyto(best_v, s_t[j], where=better)
        np.putmask(best_i, better, j)
    return best_v, best_i


def _insert(idx_t: np.ndarray, vals_t: np.ndarray, v: np.ndarray, col: int, chunk: int) -> None:
    """Insert column ``col`` (similarities ``v``) into each row's sorted top-k, in place.

    (k, N) storage: over the rows it enters (by chunks), place by place from the last one
    up, each place keeps its entry, takes the new one or the one above (shifted down).
    """
    last_v, last_i = vals_t[-1], idx_t[-1]
    entering = np.flatnonzero((v > last_v) | ((v == last_v) & (last_i > col)))
    for part in row_chunks(len(entering), chunk):
        _insert_rows(idx_t, vals_t, v, col, entering[part])


def _insert_rows(
    idx_t: np.ndarray, vals_t: np.ndarray, v: np.ndarray, col: int, rows: np.ndarray
) -> None:
    tv, ti, x = vals_t[:, rows], idx_t[:, rows], v[rows]
    pos = np.zeros(len(rows), np.int32)
    for place in range(len(tv)):  # entries that stay ahead of the new one: a prefix
        pos += (tv[place] > x) | ((tv[place] == x) & (ti[place] < col))
    for place in range(len(tv) - 1, 0, -1):
        above, here = pos < place, pos == place
        np.copyto(tv[place], tv[place - 1], where=above)
        np.copyto(ti[place], ti[place - 1], where=above)
        np.copyto(tv[place], x, where=here)
        np.copyto(ti[place], col, where=here)
    top = pos == 0
    np.copyto(tv[0], x, where=top)
    np.copyto(ti[0], col, where=top)
    vals_t[:, rows], idx_t[:, rows] = tv, ti


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
    """(N, k) float32 probabilities of the top-k similarities ``top_sim`` (column-major).

    Softmax: ``exp(scale * (s - top1)) / denominators``; the (N, C) probabilities themselves
    are never formed. Sigmoid: each similarity on its own (no denominators).
    """
    if scoring == "sigmoid":
        return sigmoid_scaled(top_sim.T, scale, float(bias)).T
    out = np.multiply(top_sim.T, np.float32(scale), dtype=np.float32)  # (k, N): rows contiguous
    out -= out[0].copy()
    np.maximum(out, np.float32(-87.0), out=out)
    np.exp(out, out=out)
    out /= denominators
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
