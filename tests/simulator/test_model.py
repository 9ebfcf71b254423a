"""The simulated day on the tiny Ostankino scenario: deterministic, nothing lost, events in a possible order."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from routing.network import RoadNetwork
from simulator.model import SimulationResult, simulate
from simulator.recorder import ORDER_EVENTS
from simulator.scenario import Scenario, apply_setting
from tests.hash_seed import run_with_hash_seed


@pytest.fixture(scope="module")
def day(scenario: Scenario, network: RoadNetwork) -> SimulationResult:
    return simulate(scenario, network=network)


def test_same_scenario_and_seed_give_identical_kpis(scenario: Scenario, network: RoadNetwork,
                                                    day: SimulationResult) -> None:
    """A second run of the same scenario and seed repeats every KPI and event; another seed gives another day."""
    again = simulate(scenario, network=network)
    assert again.kpis == day.kpis
    assert list(again.recorder.event_lines()) == list(day.recorder.event_lines())
    other = simulate(apply_setting(scenario, "seed", "2"), network=network)
    assert list(other.recorder.event_lines()) != list(day.recorder.event_lines())


def _events_under_hash_seed(seed: int, cache_dir: Path) -> str:
    code = ("import sys; from api.scenario_file import load_scenario; from routing.network import RoadNetwork; "
            "from simulator.model import simulate; s = load_scenario(sys.argv[1]); "
            "r = simulate(s, network=RoadNetwork.from_osm(s.map_file, cache_dir=sys.argv[2])); "
            "print(repr(sorted(r.kpis.items())), *(repr(sorted(e.items())) for e in r.recorder.event_lines()))")
    tiny = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"
    return run_with_hash_seed(code, str(tiny), str(cache_dir), seed=seed)


def test_a_day_is_the_same_whatever_the_string_hash_seed(tmp_path: Path) -> None:
    """Processes with different string hash seeds (as on two machines) build the map and replay the day alike."""
    first, second = (_events_under_hash_seed(seed, tmp_path / str(seed)) for seed in (1, 2))
    assert first.count("delivered") > 10
    assert first == second


def test_every_order_ends_in_exactly_one_status(day: SimulationResult) -> None:
    """Delivered, rejected, cancelled, failed and open add up to the orders placed; each has a placed event."""
    k = day.kpis
    assert k["orders"] == len(day.recorder.orders) > 0
    assert k["delivered"] + k["rejected"] + k["cancelled"] + k["failed"] + k["open_at_end"] == k["orders"]
    placed = {e["order"] for e in day.recorder.event_lines() if e["event"] == "placed"}
    assert placed == set(day.recorder.orders)


def test_delivered_orders_follow_the_chain_of_events(day: SimulationResult) -> None:
    """Each delivered order was placed, picked, assigned, picked up and delivered, in that order in time, by
    the courier it was assigned to, and never picked up before picking was done."""
    delivered = [o for o in day.recorder.orders.values() if o.status == "delivered"]
    assert delivered
    for o in delivered:
        assert o.ready_at is not None and o.assigned_at is not None and o.pickup_at is not None
        assert o.delivered_at is not None and o.courier is not None
        assert o.placed_at <= o.ready_at <= o.pickup_at <= o.delivered_at
        assert o.placed_at <= o.assigned_at <= o.pickup_at
    assert {e["event"] for e in day.recorder.event_lines()} <= set(ORDER_EVENTS)


def test_courier_work_lies_within_the_run(day: SimulationResult) -> None:
    """Couriers are busy only after their shift starts and before the run ends; utilisation is a share."""
    rec = day.recorder
    for c in rec.couriers.values():
        for a, b in c.busy:
            assert c.shift_start <= a <= b <= rec.end
    assert 0.0 < day.kpis["courier_utilisation"] <= 1.0


def test_express_quotes_are_made_and_measured(day: SimulationResult) -> None:
    """Courier orders get an express ETA at checkout, after placing; the share met is that of delivered orders
    arriving by their quote."""
    quoted = [o for o in day.recorder.orders.values() if o.quoted_eta is not None]
    assert quoted and all(o.mode == "courier" and o.quoted_eta > o.placed_at for o in quoted)
    met = [o.delivered_at <= o.quoted_eta for o in quoted if o.status == "delivered" and o.delivered_at is not None]
    assert day.kpis["express_quote_met_rate"] == round(sum(met) / len(met), 4)
    assert day.kpis["express_quote_mean_min"] > 0


def test_wider_margins_make_quotes_later_and_met_more_often(scenario: Scenario, network: RoadNetwork,
                                                            day: SimulationResult) -> None:
    """A larger safety margin moves every quote later and so is met at least as often (the day is the same)."""
    wide = replace(scenario, promise=replace(scenario.promise, margin_s=scenario.promise.margin_s + 1200))
    run = simulate(wide, network=network)
    assert run.kpis["express_quote_mean_min"] > day.kpis["express_quote_mean_min"]
    assert run.kpis["express_quote_met_rate"] >= day.kpis["express_quote_met_rate"]
    assert run.kpis["delivered"] == day.kpis["delivered"]


def test_absent_customers_fail_and_nothing_is_delivered(scenario: Scenario, network: RoadNetwork) -> None:
    """With every customer absent no order is delivered; the attempted ones are failed, back at the store."""
    absent = replace(scenario, delivery=replace(scenario.delivery, failure_rate=1.0, cancel_rate=0.0))
    run = simulate(absent, network=network)
    assert run.kpis["delivered"] == 0 and run.kpis["failed"] > 0
    failed = [o for o in run.recorder.orders.values() if o.status == "failed"]
    assert all(o.reason == "customer_absent" and o.closed_at is not None and o.pickup_at is not None
               and o.closed_at > o.pickup_at for o in failed)


def test_busy_store_spills_over_under_eta_ranking(scenario: Scenario, network: RoadNetwork) -> None:
    """With one slow picker at Ostankino, ranking stores by door ETA sends more orders to VDNH than ranking by
    road time alone, and more orders are delivered, more of them on time."""
    busy = apply_setting(apply_setting(scenario, "stores.ostankino.pickers", "1"), "stores.ostankino.picking_s", "300")
    by_eta = simulate(busy, network=network)
    nearest = simulate(apply_setting(busy, "allocation.rank", "nearest"), network=network)

    def at_vdnh(run: SimulationResult) -> int:
        return sum(o.store == "vdnh" for o in run.recorder.orders.values())

    assert at_vdnh(by_eta) > at_vdnh(nearest)
    assert by_eta.kpis["delivered"] > nearest.kpis["delivered"]
    assert by_eta.kpis["on_time_rate"] > nearest.kpis["on_time_rate"]


def test_absent_customers_parcels_go_to_a_locker_when_asked(scenario: Scenario, network: RoadNetwork) -> None:
    """With failed_to = locker, a parcel the customer was absent for is taken out again to a locker and delivered
    there; no compartment is held by it once collected, and with no locker room left it fails as before."""
    absent = replace(scenario, delivery=replace(scenario.delivery, failure_rate=1.0, cancel_rate=0.0,
                                                failed_to="locker", collect_after_s=600))
    run = simulate(absent, network=network)
    sent = [o for o in run.recorder.orders.values() if o.redirected_to is not None]
    assert sent and run.kpis["redirected_to_locker"] == len(sent)
    assert all(o.redirected_to == "locker-a" for o in sent)
    delivered = [o for o in sent if o.status == "delivered"]
    assert delivered and all(o.delivered_at is not None and o.pickup_at is not None
                             and o.delivered_at > o.pickup_at for o in delivered)
    events = {(e["order"], e["event"]) for e in run.recorder.event_lines()}
    assert all((o.id, "failed") in events and (o.id, "redirected") in events for o in sent)
    courier_orders = sum(o.mode == "courier" and o.pickup_at is not None for o in run.recorder.orders.values())
    assert len(sent) < courier_orders  # ten compartments cannot take every parcel of the day
    assert run.kpis["failed"] > 0


def test_a_co2_price_cuts_the_days_co2_under_reoptimize(scenario: Scenario, network: RoadNetwork) -> None:
    """`--set policy.co2_cost_m_per_kg` reaches the optimizer: priced, the tiny day's car rides less and emits less."""
    reopt = apply_setting(scenario, "policy", "reoptimize")
    free = simulate(apply_setting(reopt, "policy.co2_cost_m_per_kg", "0"), network=network).kpis
    priced = simulate(apply_setting(reopt, "policy.co2_cost_m_per_kg", "10000"), network=network).kpis
    assert priced["co2_g"] < 0.5 * free["co2_g"]
    assert priced["open_at_end"] == free["open_at_end"] == 0 and priced["delivered"] >= free["delivered"] - 2


def test_a_store_without_couriers_does_not_look_punctual(scenario: Scenario, network: RoadNetwork) -> None:
    """With no courier at one store its orders stay open past their promise and count as late: the on-time rate
    falls below what the other store's deliveries alone would show."""
    fleet = tuple(replace(g, count=0) if g.store == "vdnh" else g for g in scenario.fleet)
    k = simulate(replace(scenario, fleet=fleet), network=network).kpis
    assert k["open_at_end"] > 10
    assert k["on_time_rate"] <= k["delivered"] / (k["delivered"] + k["open_at_end"])


def test_click_and_collect_orders_wait_at_their_store_without_a_courier(scenario: Scenario,
                                                                        network: RoadNetwork) -> None:
    """With a share of `store` orders, each is delivered at its store once picked, with no courier and on no trip,
    and collected later; the day's couriers carry only the other orders."""
    modes = {"courier": 0.7, "store": 0.3}
    run = simulate(replace(scenario, demand=replace(scenario.demand, modes=modes)), network=network)
    at_store = {o.id for o in run.recorder.orders.values() if o.mode == "store" and o.status == "delivered"}
    assert len(at_store) > 10
    on_trips = {oid for trip in run.recorder.trips for oid in trip.orders}
    assert on_trips and not on_trips & at_store
    events = [(e["order"], e["event"], e.get("courier")) for e in run.recorder.event_lines() if e["order"] in at_store]
    assert all(courier is None for _, event, courier in events if event == "delivered")
    assert {oid for oid, event, _ in events if event == "collected"} == at_store
    assert all(run.recorder.orders[o].delivered_at == run.recorder.orders[o].ready_at for o in at_store)
