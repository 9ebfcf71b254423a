"""One contract for every store: the memory store and the Redis store must behave alike."""

from __future__ import annotations

import threading
import time

from api.store import Op, Store, body_hash, order_key
from api.store.base import Applied


def test_append_numbers_commands_and_time_never_goes_back(store: Store) -> None:
    """Sequence numbers count from 1 and the stamped time is the latest seen, even if a caller's clock lags."""
    a = store.append({"op": "tick", "store": "s"}, now=100)
    b = store.append({"op": "tick", "store": "s"}, now=90)
    c = store.append({"op": "tick", "store": "s"}, now=130)
    assert [(x.status, x.seq, x.now) for x in (a, b, c)] == [("accepted", 1, 100), ("accepted", 2, 100),
                                                             ("accepted", 3, 130)]
    got = store.read(0)
    assert [seq for seq, _ in got] == [1, 2, 3]
    assert got[1][1] == {"op": "tick", "store": "s", "now": 100, "seq": 2}
    assert [seq for seq, _ in store.read(2)] == [3]
    assert store.last_seq() == 3


def test_idempotency_key_returns_the_first_command(store: Store) -> None:
    """The same key with the same body is the first command again; with another body it is a conflict."""
    first = store.append({"op": "place", "order": {"id": "o1"}}, now=5, idempotency=("k", body_hash({"id": "o1"})),
                         order=("o1", {"state": "received"}))
    again = store.append({"op": "place", "order": {"id": "o1"}}, now=6, idempotency=("k", body_hash({"id": "o1"})),
                         order=("o1", {"state": "received"}))
    other = store.append({"op": "place", "order": {"id": "o2"}}, now=7, idempotency=("k", body_hash({"id": "o2"})),
                         order=("o2", {"state": "received"}))
    assert (first.status, again.status, other.status) == ("accepted", "duplicate", "conflict")
    assert again.seq == first.seq == 1
    assert store.last_seq() == 1
    assert store.hgetall(order_key("o1")) == {"state": "received"}
    assert store.hgetall(order_key("o2")) == {}


def test_an_order_id_is_taken_once(store: Store) -> None:
    """A second order with a taken id, under another key, is refused and appends nothing."""
    store.append({"op": "place"}, now=0, idempotency=("k1", "h1"), order=("o1", {"state": "received"}))
    taken = store.append({"op": "place"}, now=0, idempotency=("k2", "h2"), order=("o1", {"state": "received"}))
    assert taken.status == "exists"
    assert store.last_seq() == 1


def test_concurrent_retries_append_once(store: Store) -> None:
    """Twenty threads sending the same key at once: one command, every thread told its sequence number."""
    results = []
    barrier = threading.Barrier(20)

    def send() -> None:
        barrier.wait()
        results.append(store.append({"op": "place"}, now=1, idempotency=("same", "h"), order=("o9", {"a": "b"})))

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == ["accepted"] + ["duplicate"] * 19
    assert {r.seq for r in results} == {1}
    assert store.last_seq() == 1


def test_publish_needs_the_lease_and_happens_once(store: Store) -> None:
    """Only the lease holder publishes; a command already published is not published again."""
    store.append({"op": "tick"}, now=0)
    store.append({"op": "tick"}, now=0)
    store.append({"op": "tick"}, now=0)
    ops = [Op(kind="hset", key="order:o1", value={"state": "allocated"}), Op(kind="rpush", key="order:o1:events",
                                                                            value='{"event": "allocated"}'),
           Op(kind="set", key="route:c1", value='{"stops": []}')]
    assert not store.publish("w1", [Applied(seq=1, ops=ops, reply={"ok": True})])
    assert store.lease("w1", 5000)
    assert not store.lease("w2", 5000)
    assert store.publish("w1", [Applied(seq=1, ops=ops, reply={"ok": True, "n": 1})])
    assert store.publish("w1", [Applied(seq=1, ops=ops, reply={"ok": True, "n": 2})])  # replayed: nothing written
    assert store.applied() == 1
    assert store.reply(1) == {"ok": True, "n": 1}
    assert store.hgetall("order:o1") == {"state": "allocated"}
    assert store.lrange("order:o1:events") == ['{"event": "allocated"}']
    assert store.get("route:c1") == '{"stops": []}'
    assert store.publish("w1", [
        Applied(seq=2, ops=[Op(kind="delete", key="route:c1"), Op(kind="hincrby", key="n", value={"a": 2})],
                reply={"ok": True, "n": 2}),
        Applied(seq=3, ops=[Op(kind="hincrby", key="n", value={"a": 3, "b": 1})], reply={"ok": True, "n": 3})])
    assert store.applied() == 3 and store.reply(3) == {"ok": True, "n": 3}
    assert store.get("route:c1") is None
    assert store.hgetall("n") == {"a": "5", "b": "1"}


def test_a_lease_expires_and_passes_on(store: Store) -> None:
    """A worker that stops renewing loses the lease to another after its time; then it can publish nothing."""
    assert store.lease("w1", 150)
    assert not store.lease("w2", 150)
    time.sleep(0.3)
    assert store.lease("w2", 5000)
    assert not store.publish("w1", [Applied(seq=1, ops=[], reply={"ok": True})])
    assert not store.save_snapshot("w1", 1, b"old")
    assert store.save_snapshot("w2", 1, b"new")
    assert store.load_snapshot() == (1, b"new")
    store.release("w2")
    assert store.lease("w1", 150)


def test_wait_reply_returns_when_published(store: Store) -> None:
    """A waiting request sees the reply as soon as the worker publishes it, and None after its timeout."""
    store.append({"op": "tick"}, now=0)
    store.lease("w", 5000)
    assert store.wait_reply(1, 0.05) is None
    timer = threading.Timer(0.1, lambda: store.publish("w", [Applied(seq=1, ops=[], reply={"ok": True})]))
    timer.start()
    started = time.monotonic()
    assert store.wait_reply(1, 5.0) == {"ok": True}
    assert time.monotonic() - started < 4.0
    timer.join()


def test_every_waiter_for_one_command_wakes(store: Store) -> None:
    """Three requests waiting on the same command (retries of one order) all get its reply when published."""
    store.append({"op": "tick"}, now=0)
    store.lease("w", 5000)
    got: list[dict[str, object] | None] = []
    waiters = [threading.Thread(target=lambda: got.append(store.wait_reply(1, 5.0))) for _ in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.1)
    started = time.monotonic()
    store.publish("w", [Applied(seq=1, ops=[], reply={"ok": True})])
    for t in waiters:
        t.join()
    assert got == [{"ok": True}] * 3
    assert time.monotonic() - started < 2.0


def test_read_blocks_until_a_command_arrives(store: Store) -> None:
    """A blocking read returns the command appended while it waited."""
    timer = threading.Timer(0.1, lambda: store.append({"op": "tick"}, now=3))
    timer.start()
    got = store.read(0, block_ms=3000)
    timer.join()
    assert [seq for seq, _ in got] == [1]


def test_trimming_keeps_the_numbers_and_what_is_not_applied(store: Store) -> None:
    """Trimmed commands are gone from reads, later ones keep their numbers, nothing unapplied is dropped."""
    for _ in range(5):
        store.append({"op": "tick"}, now=0)
    store.lease("w", 5000)
    store.publish("w", [Applied(seq=k, ops=[], reply={"ok": True}) for k in (1, 2, 3)])
    store.trim(4)  # only up to what is applied: 3
    assert [seq for seq, _ in store.read(0)] == [4, 5]
    assert store.append({"op": "tick"}, now=0).seq == 6
    assert store.last_seq() == 6
    assert [seq for seq, _ in store.read(4)] == [5, 6]


def test_keys_are_stored_and_revoked(store: Store) -> None:
    """A key record can be read back by its id until it is deleted."""
    store.put_key("abc", {"role": "courier", "courier": "c1"})
    assert store.get_key("abc") == {"role": "courier", "courier": "c1"}
    assert store.delete_key("abc")
    assert store.get_key("abc") is None
    assert not store.delete_key("abc")
    assert store.ping()


def test_published_events_stream_in_order_and_read_after_an_id(store: Store) -> None:
    """`xadd` ops of a publish land in the event stream in id order; reads resume after any id, and block for one."""
    assert store.lease("w", 5000)
    ops = [Op(kind="xadd", key="events", value=[f"{seq}-{k}", f'{{"n": {seq * 10 + k}}}']) for seq, k in
           ((1, 0), (1, 1), (2, 0))]
    assert store.publish("w", [Applied(seq=1, ops=ops[:2], reply={}), Applied(seq=2, ops=ops[2:], reply={})])
    assert store.read_stream("events", "0-0") == [("1-0", '{"n": 10}'), ("1-1", '{"n": 11}'), ("2-0", '{"n": 20}')]
    assert [i for i, _ in store.read_stream("events", "1-0")] == ["1-1", "2-0"]
    assert [i for i, _ in store.read_stream("events", "1-1", count=1)] == ["2-0"]
    started = time.perf_counter()
    assert store.read_stream("events", "2-0", block_ms=200) == []
    assert time.perf_counter() - started >= 0.15
    late = [Applied(seq=3, ops=[Op(kind="xadd", key="events", value=["3-0", "{}"])], reply={})]
    errors: list[BaseException] = []

    def publish_late() -> None:
        time.sleep(0.1)
        try:
            store.publish("w", late)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=publish_late)
    thread.start()
    got = store.read_stream("events", "2-0", block_ms=3000)
    thread.join()
    assert not errors, errors
    assert [i for i, _ in got] == ["3-0"]


def test_direct_writes_and_capped_logs(store: Store) -> None:
    """hset/hdel/set write outside the stream (get_many and hgetall_many read several at once, None or empty where
    missing); a log keeps only its last `keep` values."""
    store.hset("webhooks", {"a": "1", "b": "2"})
    assert store.hdel("webhooks", "a") and not store.hdel("webhooks", "a")
    assert store.hgetall("webhooks") == {"b": "2"}
    store.hset("hooks", {"c": "3"})
    assert store.hgetall_many(["hooks", "missing", "webhooks"]) == [{"c": "3"}, {}, {"b": "2"}]
    assert store.hgetall_many([]) == []
    store.set("cursor", "4-1")
    assert store.get("cursor") == "4-1"
    store.set("other", "x")
    assert store.get_many(["cursor", "missing", "other"]) == ["4-1", None, "x"] and store.get_many([]) == []
    for n in range(7):
        store.log("log", str(n), keep=3)
    assert store.lrange("log") == ["4", "5", "6"]


def test_named_leases_are_independent(store: Store) -> None:
    """A lease by another name does not stop the deployment's lease, nor the other way round."""
    assert store.lease("worker-1", 5000)
    assert store.lease("sender-1", 5000, name="webhook-sender")
    assert not store.lease("sender-2", 5000, name="webhook-sender")
    store.release("sender-1", name="webhook-sender")
    assert store.lease("sender-2", 5000, name="webhook-sender")
    assert not store.lease("worker-2", 5000)


def test_claims_take_counts_all_or_nothing(store: Store) -> None:
    """An append takes every claimed count or, if one holds less, writes nothing and names that counter."""
    store.seed_counters({"stock:s1": {"milk": 3, "eggs": 1}, "pickup:p1": {"free": 1}})
    store.seed_counters({"stock:s1": {"milk": 99}})  # seeding never overwrites a count
    short = store.append({"op": "place", "order": {"id": "a"}}, now=1, idempotency=("ka", "h"),
                         order=("a", {"state": "allocated"}), claims=[("stock:s1", "milk", 2), ("stock:s1", "eggs", 2)])
    assert short.status == "short" and short.short == "stock:s1|eggs"
    assert store.last_seq() == 0 and store.hgetall(order_key("a")) == {}
    assert store.counters([("stock:s1", ["milk", "eggs", "bread"])]) == [[3, 1, 0]]
    ok = store.append({"op": "place", "order": {"id": "a"}}, now=1, idempotency=("ka", "h"),
                      order=("a", {"state": "allocated"}), claims=[("stock:s1", "milk", 2), ("pickup:p1", "free", 1)])
    assert ok.status == "accepted" and ok.seq == 1
    assert store.counters([("stock:s1", ["milk"]), ("pickup:p1", ["free"])]) == [[1], [0]]
    again = store.append({"op": "place", "order": {"id": "a"}}, now=1, idempotency=("ka", "h"),
                         order=("a", {"state": "allocated"}), claims=[("stock:s1", "milk", 2)])
    assert again.status == "duplicate" and again.seq == 1  # a retry takes nothing, even with counts short
    assert store.counters([("stock:s1", ["milk"])]) == [[1]]


def test_setting_a_count_appends_its_delta(store: Store) -> None:
    """`count` sets a counter with the append, and the command carries how far the count moved."""
    store.seed_counters({"stock:s1": {"milk": 3}})
    store.append({"op": "stock", "store": "s1", "sku": "milk", "available": 10}, now=5, count=("stock:s1", "milk", 10))
    store.append({"op": "stock", "store": "s1", "sku": "tea", "available": 4}, now=6, count=("stock:s1", "tea", 4))
    (_, first), (_, second) = store.read(0)
    assert first["delta"] == 7 and second["delta"] == 4
    assert store.counters([("stock:s1", ["milk", "tea"])]) == [[10, 4]]


def test_concurrent_claims_never_overdraw(store: Store) -> None:
    """50 appends racing for 10 units: exactly 10 are accepted and the count ends at 0."""
    store.seed_counters({"stock:s1": {"bread": 10}})
    results: list[str] = []

    def claim(k: int) -> None:
        results.append(store.append({"op": "place", "order": {"id": f"o{k}"}}, now=1, order=(f"o{k}", {"s": "x"}),
                                    claims=[("stock:s1", "bread", 1)]).status)

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("accepted") == 10 and results.count("short") == 40
    assert store.counters([("stock:s1", ["bread"])]) == [[0]] and store.last_seq() == 10


def test_publish_deletes_hash_fields_and_keeps_no_empty_reply(store: Store) -> None:
    """An `hdel` op removes fields a former publish set; an empty reply is neither kept nor awaited."""
    assert store.lease("w1", 5000)
    a = store.append({"op": "place"}, now=1)
    b = store.append({"op": "place"}, now=1)
    assert store.publish("w1", [Applied(seq=a.seq, ops=[Op(kind="hset", key="idx", value={"o1": "1", "o2": "2"})],
                                        reply={"ok": True})])
    assert store.publish("w1", [Applied(seq=b.seq, ops=[Op(kind="hdel", key="idx", value=["o1"])], reply={})])
    assert store.hgetall("idx") == {"o2": "2"} and store.applied() == b.seq
    assert store.reply(a.seq) == {"ok": True} and store.reply(b.seq) is None


def test_appends_made_together_each_append_once_in_order(store: Store) -> None:
    """Appends awaited together (one pipeline on Redis) get numbers in the order made, a retry among them is a
    duplicate, and a short claim fails only its own append."""
    import asyncio

    store.seed_counters({"stock:s1": {"a": 3}})

    async def together() -> list[tuple[str, int]]:
        calls = [store.append_async({"op": "place", "order": {"id": f"o{k}"}}, now=10 + k,
                                    idempotency=(f"k{k % 20}", body_hash({"id": f"o{k % 20}"})),
                                    order=(f"o{k}", {"state": "allocated"}), claims=[("stock:s1", "a", 1)])
                 for k in range(25)]
        got = await asyncio.gather(*calls)
        await store.close_async()
        return [(a.status, a.seq) for a in got]

    got = asyncio.run(together())
    assert got[:3] == [("accepted", 1), ("accepted", 2), ("accepted", 3)]
    assert [status for status, _ in got[3:20]] == ["short"] * 17  # the count ran out after three
    assert got[20:23] == [("duplicate", 1), ("duplicate", 2), ("duplicate", 3)]  # retries of k0, k1, k2
    assert [status for status, _ in got[23:]] == ["short"] * 2
    assert store.last_seq() == 3 and store.counters([("stock:s1", ["a"])]) == [[0]]
