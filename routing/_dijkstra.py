"""Compiled one-to-many Dijkstra (numba) on lexicographic arc weights; imported on first use, cached per machine.

An arc's weight packs (travel time in ms, length in cm) into one int64 as `ms << LENGTH_BITS | cm`, so a path's
packed sum orders paths by time first and, among equally fast ones, by length: one search gives the fastest
time and the exact length of that fastest path. The search stops as soon as every target is settled.
"""

import numpy as np
from numba import njit

LENGTH_BITS = 30
"""Bits of a packed weight that hold the length in cm (paths up to 10,737 km; the time gets the other 33)."""
NOT_REACHED = -1
ARITY = 4
"""Children per heap entry: a 4-ary heap is shallower than a binary one and an entry's children share a cache
line (about a quarter less time per search than a binary heap on the Porto maps' car rows)."""


@njit(cache=True, nogil=True)
def one_to_many(indptr, indices, weight, source, is_target, n_targets, best, touched, heap_k, heap_v):
    """Packed weights of the fastest paths from `source`, in `best` (NOT_REACHED where the search did not get).

    `is_target` marks target nodes (`n_targets` of them, distinct); `best` must hold NOT_REACHED everywhere on
    entry, and the caller resets the nodes listed in `touched[:count]` (count is returned) after reading it.
    `heap_k` and `heap_v` are scratch arrays of at least len(indices) + 1 entries.
    """
    size = 1
    heap_k[0] = 0
    heap_v[0] = source
    best[source] = 0
    touched[0] = source
    count = 1
    left = n_targets
    while size > 0:
        k = heap_k[0]
        v = heap_v[0]
        size -= 1
        if size > 0:  # sift the last entry down from the root (ARITY children per entry)
            lk = heap_k[size]
            lv = heap_v[size]
            i = 0
            while True:
                c = ARITY * i + 1
                if c >= size:
                    break
                m = c
                mk = heap_k[c]
                end = min(c + ARITY, size)
                for j in range(c + 1, end):
                    if heap_k[j] < mk:
                        mk = heap_k[j]
                        m = j
                if mk >= lk:
                    break
                heap_k[i] = mk
                heap_v[i] = heap_v[m]
                i = m
            heap_k[i] = lk
            heap_v[i] = lv
        if k > best[v]:
            continue
        if is_target[v]:
            left -= 1
            if left == 0:
                break
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            nk = k + weight[e]
            if best[u] == NOT_REACHED:
                touched[count] = u
                count += 1
            elif nk >= best[u]:
                continue
            best[u] = nk
            i = size
            size += 1
            while i > 0:
                p = (i - 1) // ARITY
                if heap_k[p] <= nk:
                    break
                heap_k[i] = heap_k[p]
                heap_v[i] = heap_v[p]
                i = p
            heap_k[i] = nk
            heap_v[i] = u
    return count


def warm_up() -> None:
    """Compile (or load) the kernel on a two-node graph."""
    indptr = np.array([0, 1, 1], dtype=np.int64)
    indices = np.array([1], dtype=np.int64)
    weight = np.array([(5 << LENGTH_BITS) | 7], dtype=np.int64)
    is_target = np.array([False, True])
    best = np.full(2, NOT_REACHED, dtype=np.int64)
    scratch = np.empty(2, dtype=np.int64)
    one_to_many(indptr, indices, weight, 0, is_target, 1, best, np.empty(2, dtype=np.int64), scratch,
                scratch.copy())
