"""Compiled kernels (numba) of an exact CCH on packed (time, length) weights; imported on first use, cached per
machine.

The hierarchy is routingkit's nested-dissection order made chordal (`routing.fastest.ExactCCH` builds it): in rank
space every node keeps its upper neighbours (`indptr`, `indices`, sorted), the lowest of which is its parent in the
elimination tree, and all of them are its ancestors. Each edge {lo, hi} has an upward weight (lo -> hi) and a
downward one (hi -> lo). Weights are the packed `ms << LENGTH_BITS | cm` of `routing._dijkstra`, so sums order paths
by time first and then by length, and a query gives the fastest time and the exact length of that fastest path,
the same as the compiled Dijkstra.
"""

import numpy as np
from numba import njit

INF = np.int64(2**61)
"""No path (two of them still add up without overflow)."""


@njit(cache=True, nogil=True)
def _edge(indptr, indices, lo, hi):
    """The edge {lo, hi} (lo < hi): binary search in lo's sorted upper neighbours."""
    a, b = indptr[lo], indptr[lo + 1]
    while a < b:
        mid = (a + b) // 2
        if indices[mid] < hi:
            a = mid + 1
        else:
            b = mid
    return a


@njit(cache=True, nogil=True)
def customize(indptr, indices, tail, head, weight, up, down):
    """Fill `up` and `down` from the arcs (`tail`, `head` in rank space, packed `weight`), then settle every lower
    triangle in increasing rank of its lowest node (the basic CCH customisation)."""
    up[:] = INF
    down[:] = INF
    for k in range(len(tail)):
        a, b = tail[k], head[k]
        if a < b:
            e = _edge(indptr, indices, a, b)
            if weight[k] < up[e]:
                up[e] = weight[k]
        elif b < a:
            e = _edge(indptr, indices, b, a)
            if weight[k] < down[e]:
                down[e] = weight[k]
    for v in range(len(indptr) - 1):
        for i in range(indptr[v], indptr[v + 1]):
            u = indices[i]
            for j in range(i + 1, indptr[v + 1]):  # u < x, both above v: the edge {u, x} exists
                e = _edge(indptr, indices, u, indices[j])
                via = down[i] + up[j]  # u -> v -> x
                if via < up[e]:
                    up[e] = via
                via = down[j] + up[i]  # x -> v -> u
                if via < down[e]:
                    down[e] = via


@njit(cache=True, nogil=True)
def _select(indptr, indices, targets, mark, selection):
    """The union of the targets' ancestors into `selection`, every node after all of its ancestors (see
    `one_to_many`), marking them in `mark`; returns how many."""
    count = 0
    for t in targets:
        x = t
        start = count
        while x != -1 and not mark[x]:
            mark[x] = True
            selection[count] = x
            count += 1
            x = indices[indptr[x]] if indptr[x + 1] > indptr[x] else -1
        lo, hi = start, count - 1
        while lo < hi:  # top first
            selection[lo], selection[hi] = selection[hi], selection[lo]
            lo += 1
            hi -= 1
    return count


@njit(cache=True, nogil=True)
def _sweep(indptr, indices, up, down, source, best, selection, count):
    """Up the source's ancestors, then down the selection: `best` holds the weights from `source`."""
    x = source
    best[x] = 0
    while x != -1:
        here = best[x]
        for e in range(indptr[x], indptr[x + 1]):
            y = indices[e]
            if here + up[e] < best[y]:
                best[y] = here + up[e]
        x = indices[indptr[x]] if indptr[x + 1] > indptr[x] else -1
    for k in range(count):
        x = selection[k]
        here = best[x]
        for e in range(indptr[x], indptr[x + 1]):
            via = best[indices[e]] + down[e]
            if via < here:
                here = via
        best[x] = here


@njit(cache=True, nogil=True)
def _reset(indptr, indices, source, best, selection, count):
    for k in range(count):
        best[selection[k]] = INF
    x = source
    while x != -1:
        best[x] = INF
        x = indices[indptr[x]] if indptr[x + 1] > indptr[x] else -1


@njit(cache=True, nogil=True)
def many_to_many(indptr, indices, up, down, sources, targets, best, mark, selection, out):
    """`one_to_many` from each of `sources` into the rows of `out`, the targets' ancestors selected once. The
    scratch arrays are as `one_to_many` wants them, on entry and on return."""
    count = _select(indptr, indices, targets, mark, selection)
    for i in range(len(sources)):
        _sweep(indptr, indices, up, down, sources[i], best, selection, count)
        for j in range(len(targets)):
            out[i, j] = best[targets[j]]
        _reset(indptr, indices, sources[i], best, selection, count)
    for k in range(count):
        mark[selection[k]] = False


@njit(cache=True, nogil=True)
def one_to_many(indptr, indices, up, down, source, targets, best, mark, selection):
    """Packed weights from `source` to each of `targets` (ranks; INF where no path): up the source's ancestors,
    then down the union of the targets' ancestors, every node after all of its ancestors. `best` must hold INF
    and `mark` False everywhere on entry, and do again on return; `selection` is scratch of the node count. For
    the reverse direction pass `down` as `up` and `up` as `down`.

    The union is collected one target's chain at a time, from the target up to the first node already collected
    (whose ancestors all are); each chain is stored top first, so the selection lists every node after its
    ancestors without sorting it."""
    count = _select(indptr, indices, targets, mark, selection)
    _sweep(indptr, indices, up, down, source, best, selection, count)
    out = np.empty(len(targets), dtype=np.int64)
    for i in range(len(targets)):
        out[i] = best[targets[i]]
    _reset(indptr, indices, source, best, selection, count)
    for k in range(count):
        mark[selection[k]] = False
    return out


def warm_up() -> None:
    """Compile (or load) the kernels on a two-node graph."""
    indptr = np.array([0, 1, 1], dtype=np.int64)
    indices = np.array([1], dtype=np.int64)
    up, down = np.empty(1, dtype=np.int64), np.empty(1, dtype=np.int64)
    customize(indptr, indices, np.array([0], dtype=np.int64), np.array([1], dtype=np.int64),
              np.array([7], dtype=np.int64), up, down)
    one = np.array([1], dtype=np.int64)
    scratch = (np.full(2, INF, dtype=np.int64), np.zeros(2, dtype=np.bool_), np.empty(2, dtype=np.int64))
    one_to_many(indptr, indices, up, down, 0, one, *scratch)
    many_to_many(indptr, indices, up, down, one - 1, one, *scratch, np.empty((1, 1), dtype=np.int64))
