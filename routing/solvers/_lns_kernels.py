"""Compiled kernels of the string-removal search (numba); imported on first use, compiled once and cached."""

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _seed(seed: int) -> None:
    np.random.seed(seed)


@njit(cache=True)
def _update(v, nxt, prv, early, late, load, size, n_jobs, n_veh, loc, service, ready, due, demand, times, profile):
    """Recompute route `v`'s earliest and latest service starts, load and size; False when a window breaks."""
    p = profile[v]
    start, end = n_jobs + v, n_jobs + n_veh + v
    early[start] = ready[start]
    for d in range(load.shape[1]):
        load[v, d] = 0
    count = 0
    feasible = True
    prev, cur = start, nxt[start]
    while True:
        early[cur] = max(ready[cur], early[prev] + service[prev] + times[p, loc[prev], loc[cur]])
        if early[cur] > due[cur]:
            feasible = False
        if cur == end:
            break
        for d in range(load.shape[1]):
            load[v, d] += demand[cur, d]
        count += 1
        prev, cur = cur, nxt[cur]
    size[v] = count
    late[end] = due[end]
    cur = end
    while cur != start:
        before = prv[cur]
        late[before] = min(due[before], late[cur] - service[before] - times[p, loc[before], loc[cur]])
        cur = before
    return feasible


@njit(cache=True)
def _route_nodes(v, nxt, n_jobs, n_veh, out):
    count = 0
    cur = nxt[n_jobs + v]
    end = n_jobs + n_veh + v
    while cur != end:
        out[count] = cur
        count += 1
        cur = nxt[cur]
    return count


@njit(cache=True)
def _ruin(nxt, prv, route, size, n_jobs, n_veh, costs, loc, profile, fixed, penalty, neighbours,
          removed_mean, max_string, scratch, touched):
    """Remove strings of jobs from routes near a random job; returns the change of cost."""
    assigned = 0
    used = 0
    for v in range(n_veh):
        if size[v] > 0:
            used += 1
            assigned += size[v]
    delta = 0
    if assigned == 0:
        return delta
    mean_size = assigned / used
    string_max = min(float(max_string), mean_size)
    routes_max = 4.0 * removed_mean / (1.0 + string_max) - 1.0
    n_routes = int(np.random.random() * routes_max) + 1
    anchor = np.random.randint(n_jobs)
    while route[anchor] < 0:
        anchor = np.random.randint(n_jobs)
    ruined = 0
    k = -1
    while ruined < n_routes and k < n_jobs - 1:
        c = anchor if k < 0 else neighbours[anchor, k]
        k += 1
        v = route[c]
        if v < 0 or touched[v]:
            continue
        touched[v] = True
        ruined += 1
        count = _route_nodes(v, nxt, n_jobs, n_veh, scratch)
        pos = 0
        while scratch[pos] != c:
            pos += 1
        length = int(np.random.random() * min(float(count), string_max)) + 1
        keep = 0
        if length < count and np.random.random() < 0.5:
            keep = 1
            while length + keep < count and np.random.random() < 0.5:
                keep += 1
        span = length + keep
        lo = max(0, pos - span + 1)
        hi = min(pos, count - span)
        first = lo + int(np.random.random() * (hi - lo + 1))
        kept_from = first + int(np.random.random() * (length + 1)) if keep else -1
        p = profile[v]
        for i in range(first, first + span):
            if keep and kept_from <= i < kept_from + keep:
                continue
            node = scratch[i]
            a, b = prv[node], nxt[node]
            delta += costs[p, loc[a], loc[b]] - costs[p, loc[a], loc[node]] - costs[p, loc[node], loc[b]]
            delta += penalty[node]
            nxt[a] = b
            prv[b] = a
            route[node] = -1
        if span - keep == count:
            delta -= fixed[v] + costs[p, loc[n_jobs + v], loc[n_jobs + n_veh + v]]
    return delta


@njit(cache=True)
def _recreate(order, nxt, prv, route, early, late, load, size, touched, n_jobs, n_veh, loc, service, ready, due,
              demand, penalty, allowed, capacity, fixed, profile, vclass, times, costs, blink, seen):
    delta = 0
    n_classes = seen.shape[0]
    for c in order:
        best = np.int64(2**62)
        best_a = -1
        best_v = -1
        for q in range(n_classes):
            seen[q] = False
        for v in range(n_veh):
            if not allowed[c, v]:
                continue
            fits = True
            for d in range(demand.shape[1]):
                if load[v, d] + demand[c, d] > capacity[v, d]:
                    fits = False
            if not fits:
                continue
            if size[v] == 0:
                if seen[vclass[v]]:
                    continue
                seen[vclass[v]] = True
            p = profile[v]
            a = n_jobs + v
            end = n_jobs + n_veh + v
            while a != end:
                b = nxt[a]
                if blink > 0 and np.random.random() < blink:
                    a = b
                    continue
                cost = costs[p, loc[a], loc[c]] + costs[p, loc[c], loc[b]] - costs[p, loc[a], loc[b]]
                if size[v] == 0:
                    cost += fixed[v] + costs[p, loc[a], loc[b]]
                if cost < best:
                    arrival = early[a] + service[a] + times[p, loc[a], loc[c]]
                    begin = max(arrival, ready[c])
                    if begin <= due[c] and begin + service[c] + times[p, loc[c], loc[b]] <= late[b]:
                        best, best_a, best_v = cost, a, v
                a = b
        if best_v < 0 or best >= penalty[c]:
            continue
        b = nxt[best_a]
        nxt[best_a] = c
        prv[c] = best_a
        nxt[c] = b
        prv[b] = c
        route[c] = best_v
        delta += best - penalty[c]
        _update(best_v, nxt, prv, early, late, load, size, n_jobs, n_veh, loc, service, ready, due, demand, times,
                profile)
        touched[best_v] = True
    return delta


@njit(cache=True)
def _copy(dst, src):
    dst[0][:] = src[0]
    dst[1][:] = src[1]
    dst[2][:] = src[2]
    dst[3][:] = src[3]
    dst[4][:] = src[4]
    dst[5][:] = src[5]
    dst[6][:] = src[6]


@njit(cache=True)
def _search(steps, temp_from, temp_to, cur, best, n_jobs, n_veh, loc, service, ready, due, demand, penalty,
            allowed, capacity, fixed, profile, vclass, times, costs, neighbours, removed_mean, max_string, blink):
    """Run `steps` ruin-and-recreate steps from `cur`; keep `best`.

    A state is (next, previous, route of each node, earliest and latest service starts, loads, route sizes, cost);
    the cost sits at index 0 of its last array.
    """
    nxt, prv, route, early, late, load, size = (cur[0].copy(), cur[1].copy(), cur[2].copy(), cur[3].copy(),
                                                cur[4].copy(), cur[5].copy(), cur[6].copy())
    work = (nxt, prv, route, early, late, load, size)
    touched = np.zeros(n_veh, dtype=np.bool_)
    scratch = np.zeros(n_jobs + 1, dtype=np.int64)
    seen = np.zeros(vclass.max() + 1, dtype=np.bool_)
    pending = np.zeros(n_jobs, dtype=np.int64)
    for step in range(steps):
        temperature = temp_from * (temp_to / temp_from) ** (step / steps)
        touched[:] = False
        delta = _ruin(nxt, prv, route, size, n_jobs, n_veh, costs, loc, profile, fixed, penalty, neighbours,
                      removed_mean, max_string, scratch, touched)
        ok = True
        for v in range(n_veh):
            if touched[v] and not _update(v, nxt, prv, early, late, load, size, n_jobs, n_veh, loc, service, ready,
                                          due, demand, times, profile):
                ok = False
        accept = False
        candidate = cur[7][0]
        if ok:
            count = 0
            for c in range(n_jobs):
                if route[c] < 0:
                    pending[count] = c
                    count += 1
            keys = np.empty(count, dtype=np.float64)
            rule = np.random.random()
            for i in range(count):
                c = pending[i]
                if rule < 4 / 11:
                    keys[i] = np.random.random()
                elif rule < 8 / 11:
                    keys[i] = -float(demand[c].sum())
                elif rule < 10 / 11:
                    keys[i] = -float(costs[0, loc[n_jobs], loc[c]])
                else:
                    keys[i] = float(costs[0, loc[n_jobs], loc[c]])
            order = pending[:count][np.argsort(keys, kind="mergesort")]
            delta += _recreate(order, nxt, prv, route, early, late, load, size, touched, n_jobs, n_veh, loc,
                               service, ready, due, demand, penalty, allowed, capacity, fixed, profile, vclass,
                               times, costs, blink, seen)
            candidate = cur[7][0] + delta
            accept = candidate < cur[7][0] - temperature * math.log(1.0 - np.random.random())
        if accept:
            _copy(cur, work)
            cur[7][0] = candidate
            if candidate < best[7][0]:
                _copy(best, work)
                best[7][0] = candidate
        else:
            _copy(work, cur)
