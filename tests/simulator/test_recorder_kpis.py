"""The headline KPIs of a day against values computed by hand on a tiny recorded day."""

from __future__ import annotations

import pytest

from simulator.recorder import CourierRecord, OrderRecord, Recorder, TripRecord, kpis, quote_calibration

COSTS = {"courier_hour_cost": {"bike": 11.0, "car": 15.0}, "per_km_cost": {"bike": 0.0, "car": 0.25},
         "co2_g_per_km": {"bike": 0.0, "car": 120.0}}


def tiny_day() -> Recorder:
    """Three delivered orders, one rejected, one cancelled; a bike courier and a car courier that went off late.

    | order | placed | ready | picked up | delivered | promise by | quoted ETA |
    |---|---|---|---|---|---|---|
    | o1 | 0 | 300 | 600 | 1200 | 1800 | 1500 |
    | o2 | 600 | 900 | 1500 | 3000 | 2400 | 2000 |
    | o3 | 1200 | 1500 | 1500 | 2400 | 3000 | none |
    """
    rec = Recorder(end=7200)
    for oid, placed in (("o1", 0), ("o2", 600), ("o3", 1200), ("o4", 0), ("o5", 100)):
        rec.orders[oid] = OrderRecord(id=oid, placed_at=placed, location=(0.0, 0.0), mode="courier")
    day = [
        (0, "o1", "placed", {"mode": "courier", "quoted_eta": 1500}),
        (0, "o1", "allocated", {"store": "s", "facility": "s", "boxes": ["small"], "promise_by": 1800}),
        (0, "o4", "placed", {"mode": "courier", "quoted_eta": None}),
        (0, "o4", "rejected", {"reason": "out_of_stock: tea"}),
        (100, "o5", "placed", {"mode": "courier", "quoted_eta": 900}),
        (100, "o5", "allocated", {"store": "s", "facility": "s", "boxes": ["small"], "promise_by": 1900}),
        (200, "o5", "cancelled", {}),
        (300, "o1", "picked", {"store": "s"}),
        (600, "o1", "assigned", {"courier": "c1", "eta": 1100}),
        (600, "o1", "picked_up", {"courier": "c1"}),
        (600, "o2", "placed", {"mode": "courier", "quoted_eta": 2000}),
        (600, "o2", "allocated", {"store": "s", "facility": "s", "boxes": ["small", "medium"], "promise_by": 2400}),
        (900, "o2", "picked", {"store": "s"}),
        (1200, "o1", "delivered", {"courier": "c1", "on_time": True}),
        (1200, "o3", "placed", {"mode": "courier", "quoted_eta": None}),
        (1200, "o3", "allocated", {"store": "s", "facility": "s", "boxes": ["small"], "promise_by": 3000}),
        (1500, "o2", "assigned", {"courier": "c2", "eta": 2300}),
        (1500, "o2", "picked_up", {"courier": "c2"}),
        (1500, "o3", "picked", {"store": "s"}),
        (1500, "o3", "assigned", {"courier": "c1", "eta": 2300}),
        (1500, "o3", "picked_up", {"courier": "c1"}),
        (2400, "o3", "delivered", {"courier": "c1", "on_time": True}),
        (3000, "o2", "delivered", {"courier": "c2", "on_time": False}),
    ]
    for t, oid, event, fields in day:
        rec.apply(t, oid, event, fields)
    rec.couriers["c1"] = CourierRecord(id="c1", store="s", profile="bike", shift_start=0, shift_end=7200,
                                       driving_s=3600, service_s=600, metres=12_000, trips=2, delivered=2)
    rec.couriers["c2"] = CourierRecord(id="c2", store="s", profile="car", shift_start=0, shift_end=3600,
                                       driving_s=1800, service_s=0, metres=18_000, trips=1, delivered=1, off_at=5400)
    rec.trips = [TripRecord(courier="c1", store="s", profile="bike", orders=("o1",), nodes=(0, 1, 0),
                            times=(600, 1200, 1500), metres=6000),
                 TripRecord(courier="c1", store="s", profile="bike", orders=("o3",), nodes=(0, 2, 0),
                            times=(1500, 2400, 3000), metres=6000),
                 TripRecord(courier="c2", store="s", profile="car", orders=("o2",), nodes=(0, 3, 0),
                            times=(1500, 3000, 3600), metres=18_000)]
    return rec


def test_counts_and_promises() -> None:
    """3 of 5 delivered, 1 rejected, 1 cancelled; 2 of 3 on time; 1 of 2 quotes met, quoted 24.17 min ahead."""
    k = kpis(tiny_day(), **COSTS)
    assert (k["orders"], k["delivered"], k["rejected"], k["cancelled"], k["open_at_end"]) == (5, 3, 1, 1, 0)
    assert k["on_time_rate"] == 0.6667 and k["express_met_rate"] == 0.6667
    assert k["express_quote_met_rate"] == 0.5
    assert k["express_quote_mean_min"] == 24.17  # ((1500 - 0) + (2000 - 600)) / 2 = 1450 s
    assert k["express_quote_slack_mean_min"] == -5.83  # ((1500 - 1200) + (2000 - 3000)) / 2 = -350 s


def test_the_calibration_table_splits_quotes_by_quoted_lead() -> None:
    """The two quoted deliveries fall in two groups by quoted lead (o2: 1400 s, o1: 1500 s), each with its mean
    quote, its click-to-door, whether it was met and its slack; the quote basis is kept from the placed event."""
    rec = tiny_day()
    assert quote_calibration(rec) == [
        {"decile": 1, "orders": 1, "quoted_min": 23.33, "delivered_min": 40.0, "met_rate": 0.0, "slack_min": -16.67},
        {"decile": 2, "orders": 1, "quoted_min": 25.0, "delivered_min": 20.0, "met_rate": 1.0, "slack_min": 5.0}]
    assert quote_calibration(Recorder(end=0)) == []
    rec.apply(0, "o5", "placed", {"mode": "courier", "quoted_eta": 900,
                                  "quote_basis": {"picking_s": 120, "courier_wait_s": 0, "road_s": 300,
                                                  "planned_s": 480}})
    assert rec.orders["o5"].quote_basis == (120, 0, 300, 480)


def test_click_to_door_and_waiting() -> None:
    """Click-to-door 1200, 2400, 1200 s: mean 26.67 min, p50 20, p90 36 (1200 + 0.8 × 1200 s), p99 39.6 min;
    ready to pickup 300, 600, 0 s: 5 min."""
    k = kpis(tiny_day(), **COSTS)
    assert k["click_to_door_mean_min"] == 26.67
    assert k["click_to_door_p50_min"] == 20.0
    assert k["click_to_door_p90_min"] == 36.0
    assert k["click_to_door_p99_min"] == 39.6
    assert k["ready_to_pickup_mean_min"] == 5.0


def test_couriers_distance_cost_and_co2() -> None:
    """3.5 courier-hours (the car went off 30 min late), busy 6000 s: utilisation 0.4762, 0.857 orders per hour;
    30 km, 10 per order; cost 2 h × 11 + 1.5 h × 15 + 18 km × 0.25 = 49, 16.33 per order (to the cent); CO2 18 km
    × 120 g."""
    k = kpis(tiny_day(), **COSTS)
    assert k["couriers"] == 2 and k["courier_hours"] == 3.5
    assert k["courier_utilisation"] == 0.4762
    assert k["orders_per_courier_hour"] == 0.857
    assert (k["km"], k["km_per_order"]) == (30.0, 10.0)
    assert (k["cost"], k["cost_per_order"]) == (49.0, 16.33)
    assert (k["co2_g"], k["co2_g_per_order"]) == (2160.0, 720.0)
    assert (k["trips"], k["orders_per_trip"]) == (3, 1.0)


def test_an_empty_day_has_no_rates() -> None:
    """With nothing delivered the rates are None, not zero or a division error."""
    k = kpis(Recorder(end=0), **COSTS)
    assert k["orders"] == 0 and k["on_time_rate"] is None and k["click_to_door_mean_min"] is None
    assert k["courier_utilisation"] is None and k["km_per_order"] is None


@pytest.mark.parametrize("late_by", [0, 600])
def test_a_late_delivery_moves_only_the_on_time_rate(late_by: int) -> None:
    """Delivering o3 later than its promise changes on-time from 2/3 to 1/3 and nothing else about promises."""
    rec = tiny_day()
    rec.orders["o3"].delivered_at = 3000 + late_by
    k = kpis(rec, **COSTS)
    assert k["on_time_rate"] == (0.6667 if late_by == 0 else 0.3333)
    assert k["express_quote_met_rate"] == 0.5


def test_an_order_still_open_past_its_promise_counts_as_late() -> None:
    """An order open at the end of the run past its promise and quote lowers the on-time, express and quote rates
    (2/3 -> 2/4, 1/2 -> 1/3); one whose promise and quote fall after the end changes none of them."""
    rec = tiny_day()
    rec.orders["o6"] = OrderRecord(id="o6", placed_at=3000, location=(0.0, 0.0), mode="courier")
    rec.apply(3000, "o6", "placed", {"mode": "courier", "quoted_eta": 4000})
    rec.apply(3000, "o6", "allocated", {"store": "s", "facility": "s", "boxes": ["small"], "promise_by": 4800})
    k = kpis(rec, **COSTS)
    assert (k["open_at_end"], k["delivered"]) == (1, 3)
    assert k["on_time_rate"] == 0.5 and k["express_met_rate"] == 0.5 and k["express_quote_met_rate"] == 0.3333
    rec.end = 3600  # the run ended before o6 was due
    k = kpis(rec, **COSTS)
    assert k["on_time_rate"] == 0.6667 and k["express_met_rate"] == 0.6667 and k["express_quote_met_rate"] == 0.5
