"""Compiled first-come-first-served courier queue of a store's load (numba); compiled once per machine, cached.

`first_free` plays the open orders, in order, through the couriers as `DispatcherLoad` does: the courier free
first (ties: the lower rank, i.e. the smaller courier id) takes the next order for one round trip; an order no
road serves takes no courier; a courier whose shift would end before it is back counts no more.
"""

import numpy as np
from numba import njit

NONE = -1


@njit(cache=True)
def _down(heap_t, heap_r, heap_c, size, i):
    t, r, c = heap_t[i], heap_r[i], heap_c[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and (heap_t[child + 1] < heap_t[child] or (
                heap_t[child + 1] == heap_t[child] and heap_r[child + 1] < heap_r[child])):
            child += 1
        if heap_t[child] > t or (heap_t[child] == t and heap_r[child] > r):
            break
        heap_t[i], heap_r[i], heap_c[i] = heap_t[child], heap_r[child], heap_c[child]
        i = child
    heap_t[i], heap_r[i], heap_c[i] = t, r, c


@njit(cache=True)
def first_free(free_t, rank, shift_end, profile, round_trip, ready, service, handoff):
    """When the first courier is free after the queue (NONE if no courier is left).

    free_t, rank, shift_end, profile: one entry per courier (free time, tie-break rank, shift end, row of
    `round_trip`); round_trip[p, k]: seconds out and back for order k by profile p (-1: no road); ready and
    service: per order, in queue order.
    """
    m = len(free_t)
    heap_t = free_t.copy()
    heap_r = rank.copy()
    heap_c = np.arange(m)
    size = m
    for i in range(size // 2 - 1, -1, -1):
        _down(heap_t, heap_r, heap_c, size, i)
    for k in range(len(ready)):
        if size == 0:
            return NONE
        c = heap_c[0]
        rt = round_trip[profile[c], k]
        if rt < 0:
            continue
        t = max(heap_t[0], ready[k]) + rt + service[k] + handoff
        if t < shift_end[c]:
            heap_t[0] = t
        else:
            size -= 1
            heap_t[0], heap_r[0], heap_c[0] = heap_t[size], heap_r[size], heap_c[size]
        if size > 0:
            _down(heap_t, heap_r, heap_c, size, 0)
    return heap_t[0] if size > 0 else NONE


def warm_up() -> None:
    """Compile (or load) the kernel on a one-courier, one-order queue."""
    one = np.ones(1, dtype=np.int64)
    first_free(one * 0, one * 0, one * 100, one * 0, np.ones((1, 1), dtype=np.int64), one, one, 0)
