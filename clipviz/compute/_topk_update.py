"""Each image's top-k after a prompt edit, from its previous top-k (no ranking from scratch).

A row keeps its previous top-k (renumbered). A row that lost entries to removed columns
closes the gaps; it must refill the freed places from the kept columns outside its top-k
only when too few new columns beat its previous last entry: every column outside the top-k
ranked below that entry, so new columns above it fill the freed places by insertion alone.
Editing a prompt usually moves its column a little, so most rows need no refill. Then the
new columns enter by insertion. Everything is stored (places, rows), (k, N): contiguous rows.

Ties are broken as ``_scores.topk`` breaks them: by similarity, highest first, then by
column, lowest first, so an updated top-k equals one computed from scratch.
"""

from __future__ import annotations

import numpy as np

from clipviz.compute._scores import row_chunks


def topk_update(
    sim: np.ndarray,
    k: int,
    old: tuple[np.ndarray, np.ndarray, np.ndarray],
    old_of_new: np.ndarray,
    new_cols: np.ndarray,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The top-k of ``sim`` from the previous top-k ``old`` = (indices, their similarities,
    the previous similarity (N, C_old)).

    ``new_cols`` holds the new columns' similarities (N, new), in column order. Returns the
    top-k (both column-major), the rows whose previous top-1 was removed and the rows whose
    top-k changed (sorted; every other row's is the previous one, renumbered). None when the
    kept columns changed their order (the previous order of ties would no longer hold) or
    the previous k was smaller: rank from scratch then.
    """
    n, c = sim.shape
    k = min(k, c)
    old_idx, old_vals, old_sim = old
    old_c = old_sim.shape[1]
    kept = np.flatnonzero(old_of_new >= 0)
    src = old_of_new[kept]
    width = min(old_idx.shape[1], k)
    if not len(kept) or (np.diff(src) <= 0).any() or width < min(old_c, k):
        return None
    added = np.flatnonzero(old_of_new < 0)
    idx_t, vals_t = np.empty((k, n), np.int64), np.empty((k, n), np.float32)
    if width < k:  # a short previous top-k (fewer than k columns then) held them all: pad it
        idx_t[width:], vals_t[width:] = c, -np.inf
    vals_t[:width] = old_vals[:, :width].T
    lost_top1 = np.zeros(0, np.int64)
    touched = [np.zeros(0, np.int64)]  # rows whose top-k may differ from the previous one
    removed = np.setdiff1d(np.arange(old_c), src)
    if not len(removed) and kept[-1] == old_c - 1:  # nothing removed or renumbered
        idx_t[:width] = old_idx[:, :width].T
    else:
        dirty = _renumber(idx_t[:width], old_idx[:, :width].T, kept, src, removed)
        marks = removed  # the numbers the removed entries still carry in idx_t
        if dirty is None:  # kept columns keep their numbers: find the rows by value
            dirty = _holding(old_sim, removed, vals_t[width - 1], idx_t[width - 1])
        else:
            marks = removed[:0]  # renumbered: removed entries are -1, numbers are new ones
        # outside columns exist only when the previous top-k did not hold every column
        bounded = width < old_c
        parts = []
        for part in row_chunks(len(dirty), chunk):  # temporaries: (C, chunk), not (C, N)
            lost = _repair(idx_t, vals_t, sim, dirty[part], marks, new_cols, added, bounded)
            parts.append(lost)
        lost_top1 = np.concatenate(parts) if parts else lost_top1
        touched.append(dirty)
    for i, col in enumerate(added):
        v = np.ascontiguousarray(new_cols[:, i])
        touched.append(_insert(idx_t, vals_t, v, int(col), chunk))
    rows = touched[-1] if len(touched) == 2 else np.unique(np.concatenate(touched))
    return idx_t.T, vals_t.T, lost_top1, rows


def _renumber(
    idx_t: np.ndarray, old_t: np.ndarray, kept: np.ndarray, src: np.ndarray, removed: np.ndarray
) -> np.ndarray | None:
    """Write ``old_t``'s columns renumbered into ``idx_t`` (-1: removed); return the rows
    that lost an entry, or None when every kept column keeps its number (a prompt edited in
    place or removed at the end): then a plain copy, the removed entries keep their old
    number, and ``_holding`` finds their rows from two (N,) columns per removed column
    instead of reading the (k, N) indices.
    """
    if (kept == src).all() and len(removed) <= 4:
        np.copyto(idx_t, old_t)
        return None
    new_of_old = np.full(len(kept) + len(removed), -1, np.int64)
    new_of_old[src] = kept
    np.take(new_of_old, old_t, out=idx_t)
    return np.flatnonzero(np.logical_or.reduce(idx_t < 0, axis=0))


def _holding(
    old_sim: np.ndarray, removed: np.ndarray, last_v: np.ndarray, last_i: np.ndarray
) -> np.ndarray:
    """Rows whose top-k held a removed column: those where it ranked at or above the last
    entry (``last_v``, ``last_i``): higher, or equal and a column not above the last's."""
    held = np.zeros(len(old_sim), bool)
    for col in removed.tolist():
        v = old_sim[:, col]
        held |= v > last_v
        ties = np.flatnonzero(v == last_v)
        held[ties[last_i[ties] >= col]] = True
    return np.flatnonzero(held)


def _repair(
    idx_t: np.ndarray,
    vals_t: np.ndarray,
    sim: np.ndarray,
    rows: np.ndarray,
    removed: np.ndarray,
    new_cols: np.ndarray,
    added: np.ndarray,
    bounded: bool,
) -> np.ndarray:
    """Rows that lost top-k entries (-1, or a ``removed`` column's old number): close the
    gaps; refill from the kept columns only the rows where fewer new columns than freed
    places beat the previous last entry. Returns the rows whose top-1 was removed.

    Closed places get the sentinel (column C, -inf), which an insertion then replaces. The
    comparison is strict: a new column equal to the last entry may rank below an outside
    column of that value (a lower column), so such a row is refilled, which is always exact.
    """
    n_cols = sim.shape[1]
    ti, tv = idx_t[:, rows], vals_t[:, rows]
    lost = ti < 0
    for col in removed.tolist():
        lost |= ti == col
    refill = np.zeros(len(rows), bool)
    if bounded:  # then the previous top-k had all k places: its last one bounds the rest
        floor = tv[-1].copy()  # every column outside the top-k ranked below it
        beating = np.zeros(len(rows), np.int64)
        for i in range(len(added)):
            beating += new_cols[rows, i] > floor
        refill = beating < lost.sum(axis=0)
    top1_gone = rows[lost[0]]
    ti[lost] = -1
    filled = _close_gaps(ti, tv, n_cols)
    if refill.any():
        part = np.flatnonzero(refill)
        sub_i, sub_v = ti[:, part], tv[:, part]
        _refill(sub_i, sub_v, sim, rows[part], added, filled[part])
        ti[:, part], tv[:, part] = sub_i, sub_v
    idx_t[:, rows], vals_t[:, rows] = ti, tv
    return top1_gone


def _refill(
    ti: np.ndarray,
    tv: np.ndarray,
    sim: np.ndarray,
    rows: np.ndarray,
    added: np.ndarray,
    filled: np.ndarray,
) -> None:
    """Fill each (k, R) row's places from ``filled`` on with the best kept columns not yet
    in it, in place (a running maximum over the columns, strict, so the lowest column among
    equals wins: the tie order of ``topk``). New columns are left out here, they enter by
    ``_insert`` next. A place no column is left for keeps the sentinel (column C, -inf).
    """
    n_cols, k, n_rows = sim.shape[1], len(ti), len(rows)
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


def _insert(
    idx_t: np.ndarray, vals_t: np.ndarray, v: np.ndarray, col: int, chunk: int
) -> np.ndarray:
    """Insert column ``col`` (similarities ``v``) into each row's sorted top-k, in place;
    return the rows it entered.

    (k, N) storage: over the rows it enters (by chunks), place by place from the last one
    up, each place keeps its entry, takes the new one or the one above (shifted down).
    """
    last_v = vals_t[-1]
    entering = v > last_v
    ties = np.flatnonzero(v == last_v)  # rare: only these read the last entries' columns
    entering[ties[idx_t[-1, ties] > col]] = True
    entering = np.flatnonzero(entering)
    for part in row_chunks(len(entering), chunk):
        _insert_rows(idx_t, vals_t, v, col, entering[part])
    return entering


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
