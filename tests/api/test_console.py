"""The map console: the /v1 reads it polls (over the memory store) and the page itself in Debian's headless chromium
over a live server on the tiny Ostankino map (skipped without chromium and chromedriver, failed on CI)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import Deployment, Service
from tests.api.live import free_port, request, wait_for
from tests.api.test_app import ADMIN, NEAR_VDNH, deployment, key, make_service, order, until  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "scenarios" / "moscow-ostankino-tiny.toml"


# --- the reads, over TestClient ------------------------------------------------------------------------------------

@pytest.fixture
def service(deployment: Deployment) -> Service:  # noqa: F811
    return make_service(deployment, scenarios_dir=ROOT / "scenarios")


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


def test_the_map_is_small_simplified_geojson_of_the_roads(client: TestClient, service: Service) -> None:
    """GET /v1/map: major and minor roads as MultiLineStrings within the map's bbox, a few kB; planner keys only."""
    planner = key(client, "planner")
    r = client.get("/v1/map", headers=planner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["source"] == "moscow_ostankino_drive.osm.bz2"
    assert [f["properties"]["roads"] for f in body["features"]] == ["major", "minor"]
    w, s, e, n = body["bbox"]
    points = [p for f in body["features"] for line in f["geometry"]["coordinates"] for p in line]
    assert all(f["geometry"]["type"] == "MultiLineString" for f in body["features"])
    assert all(w <= lon <= e and s <= lat <= n for lon, lat in points)
    segments = sum(f["properties"]["segments"] for f in body["features"])
    assert len(service.deployment.network.tail) / 2 <= segments < len(service.deployment.network.tail)  # each once
    assert len(points) < 2 * segments and len(r.content) < 20_000  # merged, simplified, rounded
    assert r.headers["content-encoding"] == "gzip" and int(r.headers["content-length"]) < len(r.content) / 2
    plain = client.get("/v1/map", headers={**planner, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == body
    coarse = client.get("/v1/map?tolerance_m=50", headers=planner)
    assert len(coarse.content) < len(r.content)
    bad = client.get("/v1/map?tolerance_m=500", headers=planner)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "tolerance_m"
    courier = key(client, "courier", next(iter(service.deployment.couriers)))
    for path in ("/v1/map", "/v1/facilities", "/v1/couriers", "/v1/stats"):
        assert client.get(path, headers=courier).json()["error"]["code"] == "forbidden"


def test_facilities_couriers_orders_and_stats_follow_the_day(client: TestClient, service: Service) -> None:
    """An order is listed open, its store shows a picker busy, its courier is shown out on its route, and once
    delivered on time all of it clears; a store's low stock is an alert."""
    planner, osys = key(client, "planner"), key(client, "order_system")
    facilities = client.get("/v1/facilities", headers=planner).json()
    assert facilities["live"] is True
    kinds = {f["id"]: f["kind"] for f in facilities["facilities"]}
    assert kinds == {"ostankino": "store", "vdnh": "store", "locker-a": "locker", "pvz-1": "pickup_point"}
    locker = next(f for f in facilities["facilities"] if f["kind"] == "locker")
    assert locker["free_compartments"] == locker["compartments"] == {"S": 4, "M": 4, "L": 2}
    stores = [f for f in facilities["facilities"] if f["kind"] == "store"]
    assert [(f["pickers"], f["pickers_busy"]) for f in stores] == [(2, 0), (2, 0)]
    before = client.get("/v1/couriers", headers=planner).json()["couriers"]
    assert {c["status"] for c in before} == {"off"} and all(c["at"] is None for c in before)
    for cid in service.deployment.couriers:
        assert client.post(f"/v1/couriers/{cid}/shift", json={"on": True}, headers=ADMIN).status_code == 200
    assert client.post("/v1/orders", json=order("c1"), headers={**osys, "Idempotency-Key": "c1"}).status_code == 201
    picking = {f["id"]: f["pickers_busy"] for f in client.get("/v1/facilities", headers=planner).json()["facilities"]
               if f["kind"] == "store"}
    assert sorted(picking.values()) == [0, 1]  # c1 is being picked at its store
    listed = client.get("/v1/orders?state=open", headers=osys).json()["orders"]
    assert [(o["id"], o["state"], o["mode"]) for o in listed] == [("c1", "allocated", "courier")]
    courier = until(lambda: client.get("/v1/orders/c1", headers=osys).json()["courier"], service)
    rows = {c["id"]: c for c in client.get("/v1/couriers?geometry=true", headers=planner).json()["couriers"]}
    mine = rows[courier]
    assert mine["status"] == "assigned" and [s["id"] for s in mine["route"]["stops"]] == ["pickup", "c1", "return"]
    assert len(mine["route"]["geometry"]["coordinates"]) == 2
    assert {c["status"] for cid, c in rows.items() if cid != courier} == {"idle"}
    stats = client.get("/v1/stats", headers=planner).json()
    store = mine["store"]
    assert stats["stores"][store]["couriers"]["assigned"] == 1 and stats["on_time_rate"] is None
    assert stats["last_decision_at"] == mine["route"]["dispatch_at"] and stats["decisions"]["count"] >= 1
    app_key = key(client, "courier", courier)
    for stop, status in (("pickup", "completed"), ("c1", "arrived"), ("c1", "completed"), ("return", "arrived")):
        service.clock.t += 120  # type: ignore[attr-defined]
        assert client.post(f"/v1/couriers/{courier}/stops/{stop}", json={"status": status},
                           headers=app_key).status_code == 200
    assert client.get("/v1/orders", headers=osys).json()["orders"] == []
    stats = client.get("/v1/stats", headers=planner).json()
    assert stats["on_time_rate"] == 1.0 and stats["events"]["delivered"] == 1
    assert rows[courier]["store"] == store
    after = {c["id"]: c for c in client.get("/v1/couriers", headers=planner).json()["couriers"]}
    assert after[courier]["status"] == "idle" and after[courier]["route"] is None
    views = {f["id"]: f for f in client.get("/v1/facilities", headers=planner).json()["facilities"]}
    assert views[store]["pickers_busy"] == 0  # picked long ago
    assert "bread" not in views["vdnh"]["stock_alerts"]
    assert client.put("/v1/stores/vdnh/stock/bread", json={"available": 2}, headers=osys).status_code == 200
    alerts = until(lambda: {f["id"]: f["stock_alerts"] for f in client.get("/v1/facilities", headers=planner)
                            .json()["facilities"] if f["kind"] == "store"}["vdnh"].get("bread"), service)
    assert alerts == 2


def deliver(client: TestClient, service: Service, oid: str) -> None:
    """The courier the order is committed to serves its whole trip, two minutes a step, and is back at its store."""
    courier = until(lambda: client.get(f"/v1/orders/{oid}", headers=ADMIN).json()["courier"], service)
    app_key = key(client, "courier", courier)
    stops = client.get(f"/v1/couriers/{courier}/route", headers=app_key).json()["stops"]
    steps = {"pickup": ("completed",), "dropoff": ("arrived", "completed"), "return": ("arrived",)}
    for stop in stops:
        for status in steps[stop["kind"]]:
            service.clock.t += 120  # type: ignore[attr-defined]
            assert client.post(f"/v1/couriers/{courier}/stops/{stop['id']}", json={"status": status},
                               headers=app_key).status_code == 200


def shifts(client: TestClient, service: Service, on: bool) -> None:
    """Every courier of the deployment starts (`on`) or ends its shift."""
    for cid in service.deployment.couriers:
        assert client.post(f"/v1/couriers/{cid}/shift", json={"on": on}, headers=ADMIN).status_code == 200


def placed(client: TestClient, body: dict[str, Any]) -> int:
    """Place an order; its `promise_by`."""
    osys = key(client, "order_system")
    assert client.post("/v1/orders", json=body, headers={**osys, "Idempotency-Key": body["id"]}).status_code == 201
    promise_by = client.get(f"/v1/orders/{body['id']}", headers=osys).json()["promise_by"]
    assert isinstance(promise_by, int)
    return promise_by


def test_an_open_order_past_its_promise_is_overdue_and_lowers_the_on_time_rate(client: TestClient,
                                                                                service: Service) -> None:
    """An order not delivered by its promise counts in `overdue` and as late in on_time_rate."""
    planner = key(client, "planner")
    shifts(client, service, True)
    placed(client, order("d1"))
    deliver(client, service, "d1")
    shifts(client, service, False)  # no courier left to take o2
    promise_by = placed(client, order("o2"))
    service.clock.t = promise_by + 1  # type: ignore[attr-defined]
    stats = client.get("/v1/stats", headers=planner).json()
    assert client.get("/v1/orders/o2", headers=ADMIN).json()["state"] in ("allocated", "ready")
    assert (stats["on_time"], stats["late"], stats["overdue"]) == (1, 0, 1)
    assert stats["on_time_rate"] == 0.5 and stats["now"] == promise_by + 1


def test_an_open_order_is_not_overdue_until_its_promise_has_passed(client: TestClient, service: Service) -> None:
    """An open order is not overdue before or at its promise (delivered then, it is on time), only after it."""
    planner = key(client, "planner")
    promise_by = placed(client, order("o1"))
    seen = []
    for t in (promise_by - 600, promise_by, promise_by + 1):
        service.clock.t = t  # type: ignore[attr-defined]
        stats = client.get("/v1/stats", headers=planner).json()
        seen.append((stats["overdue"], stats["on_time_rate"]))
    assert seen == [(0, None), (0, None), (1, 0.0)]


def test_a_delivered_order_is_not_overdue(client: TestClient, service: Service) -> None:
    """A delivered order is never overdue, not even one still open waiting in a locker for its customer."""
    planner = key(client, "planner")
    shifts(client, service, True)
    promises = []
    for body in (order("d1"), {**order("l1"), "mode": "locker"}):
        promises.append(placed(client, body))
        deliver(client, service, body["id"])
    service.clock.t = max(promises) + 3600  # type: ignore[attr-defined]
    open_ = client.get("/v1/orders?state=open", headers=planner).json()["orders"]
    assert [(o["id"], o["state"]) for o in open_] == [("l1", "delivered")]  # in the locker, not yet collected
    stats = client.get("/v1/stats", headers=planner).json()
    assert (stats["on_time"], stats["late"], stats["overdue"], stats["on_time_rate"]) == (2, 0, 0, 1.0)


def test_replay_places_are_those_of_the_simulated_day(client: TestClient, tmp_path: Path) -> None:
    """POST /v1/replay gives the very orders of events.jsonl (id, time, mode); an unknown scenario is 422 naming it."""
    events = simulated_day(tmp_path) / "events.jsonl"
    placed = {e["order"]: e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "placed"}
    planner = key(client, "planner")
    r = client.post("/v1/replay", json={"scenario": "moscow-ostankino-tiny"}, headers=planner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {o["id"]: (o["placed_at"], o["mode"]) for o in body["orders"]} == {
        oid: (e["t"], e["mode"]) for oid, e in placed.items()}
    assert (body["start"], body["end"], body["seed"]) == (10 * 3600, 14 * 3600, 1)
    assert len(body["couriers"]) == 7 and {f["id"] for f in body["facilities"]} == {"ostankino", "vdnh", "locker-a",
                                                                                   "pvz-1"}
    other = client.post("/v1/replay", json={"scenario": "moscow-ostankino-tiny", "seed": 2}, headers=planner).json()
    assert [o["location"] for o in other["orders"]] != [o["location"] for o in body["orders"]]
    missing = client.post("/v1/replay", json={"scenario": "nowhere"}, headers=planner)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "scenario"
    knob = client.post("/v1/replay", json={"scenario": "moscow-ostankino-tiny", "set": {"no.such": 1}},
                       headers=planner)
    assert knob.status_code == 422 and knob.json()["error"]["field"].startswith("set")


def test_the_page_and_its_files_are_served_and_nothing_else(client: TestClient) -> None:
    """/console is the page (no key needed, a strict CSP); /static serves the console's and Leaflet's files only."""
    page = client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="static/console/console.js"' in page.text
    for path, kind in (("console/console.js", "text/javascript"), ("console/console.css", "text/css"),
                       ("vendor/leaflet/leaflet.js", "text/javascript"), ("vendor/leaflet/images/layers.png",
                                                                          "image/png")):
        r = client.get(f"/static/{path}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), path
    for path in ("track.html", "../app.py", "console/../../app.py", "vendor/leaflet/leaflet.js.map"):
        r = client.get(f"/static/{path}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path


# --- the page in a browser -----------------------------------------------------------------------------------------

def simulated_day(folder: Path) -> Path:
    """The files `lastmile simulate` writes for the tiny scenario."""
    subprocess.run([sys.executable, "-m", "api.cli", "simulate", str(TINY), "--out", str(folder)], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    return folder


def chromium_or_skip() -> tuple[str, str]:
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromedriver are required on CI (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium and chromedriver on this machine (apt-get install chromium chromium-driver)")
    return browser, driver


class LiveServer:
    """The API (dispatch workers in-process, a clock the test moves) under uvicorn on a free loopback port."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=self.port,
                                                    log_level="warning", ws="none", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="console-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        return request(self.url + path, body, headers={"Authorization": ADMIN["Authorization"], **headers})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, what="uvicorn")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="module")
def live(deployment: Deployment) -> Iterator[LiveServer]:  # noqa: F811
    with LiveServer(make_service(deployment, scenarios_dir=ROOT / "scenarios", track_rate_per_s=100.0)) as server:
        yield server


@pytest.fixture(scope="module")
def planner_key(live: LiveServer) -> str:
    status, body = live.call("/v1/keys", {"role": "planner"})
    assert status == 201, body
    return str(body["key"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary, driver_path = chromium_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The folder the browser tests save their screenshots in (its path is printed, captured output or not)."""
    folder = tmp_path_factory.mktemp("console-screenshots")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(f"console screenshots: {folder}")
    return folder


def wait(driver: Any, check: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    """`check()` once truthy; on timeout the browser's log is in the message. An element the page re-rendered between
    `check` finding it and reading it (a stale reference) counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = check()
        except StaleElementReferenceException:
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; browser log: {driver.get_log('browser')}")


def count(driver: Any, selector: str) -> int:
    return int(driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector))


def no_browser_errors(driver: Any) -> None:
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def open_console(driver: Any, live: LiveServer, planner_key: str) -> None:
    driver.get(f"{live.url}/console?key={planner_key}&poll=1")
    wait(driver, lambda: count(driver, "path.road") and count(driver, ".facility-marker") == 4, "the map")


def test_the_console_draws_roads_facilities_and_couriers(browser: Any, live: LiveServer, planner_key: str,
                                                          shots: Path) -> None:
    """The URL's key is kept for the tab; roads, one marker per facility and per courier are drawn, with no error."""
    open_console(browser, live, planner_key)
    assert "key=" not in browser.current_url
    assert browser.execute_script("return sessionStorage.getItem('lastmile.console.key')") == planner_key
    assert count(browser, "path.road-major") == 1 and count(browser, "path.road-minor") == 1
    facilities = browser.execute_script(
        "return [...document.querySelectorAll('.facility-marker')].map(e => e.dataset.facility + ':' + e.textContent)")
    assert sorted(facilities) == ["locker-a:L", "ostankino:S", "pvz-1:P", "vdnh:S"]
    wait(browser, lambda: count(browser, ".courier") == 7, "the couriers")
    assert count(browser, ".courier.courier-off") == 7
    assert count(browser, "path.zone") == 1  # vdnh's delivery zone
    browser.save_screenshot(str(shots / "1-map.png"))
    no_browser_errors(browser)


def test_a_posted_order_appears_and_its_courier_route_is_drawn(browser: Any, live: LiveServer, planner_key: str,
                                                               shots: Path) -> None:
    """A posted order is drawn; once assigned, its courier's route with a numbered stop and the panel follow."""
    open_console(browser, live, planner_key)
    for cid in live.service.deployment.couriers:
        assert live.call(f"/v1/couriers/{cid}/shift", {"on": True})[0] == 200
    status, body = live.call("/v1/orders", order("w1", location=NEAR_VDNH), **{"Idempotency-Key": "w1"})
    assert status == 201, body
    wait(browser, lambda: count(browser, ".order[data-order='w1']"), "the open order")
    courier = until(lambda: live.call("/v1/orders/w1")[1]["courier"], live.service)
    wait(browser, lambda: count(browser, "path.route") == 1 and count(browser, ".stop-marker") == 1, "the route")
    assert browser.find_element("css selector", ".stop-marker").text == "1"
    wait(browser, lambda: count(browser, f".courier-assigned[data-courier='{courier}']"), "the courier assigned")
    store = live.call("/v1/orders/w1")[1]["store"]
    wait(browser, lambda: browser.find_element("css selector", f"#stores tr[data-store='{store}']").text.split()[1:3]
         == ["1", "2"], "one open order and two idle couriers at the store")
    browser.save_screenshot(str(shots / "2-live.png"))
    no_browser_errors(browser)


def test_clicking_an_order_opens_its_timeline_and_facility(browser: Any, live: LiveServer, planner_key: str,
                                                           shots: Path) -> None:
    """Clicking an open order shows its state, facility and timeline; clicking a courier shows its route's stops."""
    from selenium.webdriver.common.action_chains import ActionChains

    open_console(browser, live, planner_key)
    if live.call("/v1/orders/w1")[0] != 200:
        status, body = live.call("/v1/orders", order("w1", location=NEAR_VDNH), **{"Idempotency-Key": "w1"})
        assert status == 201, body
    target = wait(browser, lambda: browser.find_elements("css selector", ".order[data-order='w1']"), "the order")
    ActionChains(browser).move_to_element(target[0]).click().perform()
    wait(browser, lambda: browser.find_element("id", "detail").is_displayed(), "the order's detail")
    detail = browser.find_element("id", "detail")
    assert detail.find_element("tag name", "h2").text == "Order w1"
    events = [li.get_attribute("data-event") for li in detail.find_elements("css selector", "ol.timeline li")]
    assert events[:2] == ["placed", "allocated"]
    store = live.call("/v1/orders/w1")[1]["store"]
    assert f"{store} (store)" in detail.text
    assert count(browser, f".facility-marker.highlight[data-facility='{store}']") == 1
    browser.save_screenshot(str(shots / "3-order.png"))
    courier = live.call("/v1/orders/w1")[1]["courier"]
    if courier:  # couriers at one store overlap: the click goes to this one's marker itself
        click(browser, browser.find_element("css selector", f".courier[data-courier='{courier}']"))
        wait(browser, lambda: browser.find_element("css selector", "#detail h2").text == f"Courier {courier}",
             "the courier")
        stops = wait(browser, lambda: [li.get_attribute("data-stop")  # a poll re-renders a courier's detail
                                       for li in browser.find_elements("css selector", "#detail ol.stops li")],
                     "the courier's stops")
        assert stops == ["pickup", "w1", "return"]
    no_browser_errors(browser)


def test_a_replay_plays_the_day_with_the_slider(browser: Any, live: LiveServer, planner_key: str, shots: Path,
                                                tmp_path: Path) -> None:
    """A run's files replay: the slider moves couriers, orders and chart cursors; an order shows its timeline."""
    run = simulated_day(tmp_path)
    open_console(browser, live, planner_key)
    browser.find_element("id", "tab-replay").click()
    files = "\n".join(str(run / name) for name in ("events.jsonl", "kpis.json", "couriers.json"))
    browser.find_element("id", "replay-input").send_keys(files)
    wait(browser, lambda: browser.find_element("id", "replay-scenario-name").get_attribute("value"), "kpis.json read")
    assert browser.find_element("id", "replay-scenario-name").get_attribute("value") == "moscow-ostankino-tiny"
    browser.find_element("id", "replay-load").click()
    wait(browser, lambda: browser.find_element("id", "replay-status").get_attribute("data-ready"), "the replay")
    assert "120 orders, 7 couriers" in browser.find_element("id", "replay-status").text
    assert "addresses unknown" not in browser.find_element("id", "replay-status").text

    def at(t: int) -> dict[str, Any]:
        browser.execute_script("const s = document.getElementById('replay-slider'); s.value = arguments[0];"
                               "s.dispatchEvent(new Event('input'));", t)
        return browser.execute_script("""return {
            couriers: Object.fromEntries([...document.querySelectorAll('.courier')]
                .map(p => [p.dataset.courier, p.style.transform])),
            orders: [...document.querySelectorAll('.order')].map(p => p.dataset.order).sort(),
            cursor: document.querySelector('#chart-open .chart-cursor').getAttribute('x1'),
            open: document.querySelector('#chart-open').dataset.value,
            time: document.getElementById('replay-time').textContent}""")

    morning, noon = at(10 * 3600 + 40 * 60), at(12 * 3600)
    assert (morning["time"], noon["time"]) == ("10:40", "12:00")
    assert len(morning["couriers"]) == len(noon["couriers"]) == 7
    moved = [c for c in morning["couriers"] if morning["couriers"][c] != noon["couriers"][c]]
    assert moved, "no courier moved between 10:40 and 12:00"
    assert morning["orders"] != noon["orders"] and noon["orders"]
    assert float(noon["cursor"]) > float(morning["cursor"])
    assert count(browser, "#replay-kpis tr[data-kpi='on_time_rate']") == 1
    browser.save_screenshot(str(shots / "4-replay.png"))
    click(browser, browser.find_element("css selector", f".order[data-order='{noon['orders'][0]}']"))
    detail = browser.find_element("id", "detail")
    wait(browser, lambda: detail.is_displayed() and detail.find_element("tag name", "h2").text.startswith("Order"),
         "the replayed order's detail")
    events = [li.get_attribute("data-event") for li in detail.find_elements("css selector", "ol.timeline li")]
    assert events[:2] == ["placed", "allocated"]
    browser.find_element("id", "replay-play").click()
    wait(browser, lambda: at_time(browser) != "12:00", "the replay playing")
    browser.find_element("id", "replay-play").click()
    no_browser_errors(browser)


def test_a_finished_planner_job_replays_from_its_files(browser: Any, deployment: Deployment,  # noqa: F811
                                                       tmp_path: Path, shots: Path) -> None:
    """A finished planner job is listed in the replay tab and replays from its files fetched over the API."""
    import dask
    from distributed import LocalCluster

    from api.jobs import LOOPBACK

    with (dask.config.set({"distributed.worker.profile.enabled": False}),
          LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=LOOPBACK,
                       scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR) as cluster,
          LiveServer(make_service(deployment, scenarios_dir=ROOT / "scenarios", jobs_dir=tmp_path / "jobs",
                                  scheduler=cluster.scheduler_address)) as server):
        status, job = server.call("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "seed": 2})
        assert status == 202, job
        wait_for(lambda: server.call(f"/v1/simulations/{job['id']}")[1]["status"] == "done", 120, "the job")
        status, planner = server.call("/v1/keys", {"role": "planner"})
        open_console(browser, server, planner["key"])
        browser.find_element("id", "tab-replay").click()
        option = f"#replay-jobs option[value='{job['id']}']"
        wait(browser, lambda: count(browser, option), "the job in the list")
        browser.find_element("css selector", option).click()
        wait(browser, lambda: "read" in browser.find_element("id", "replay-status").text, "the job's files")
        assert browser.find_element("id", "replay-seed").get_attribute("value") == "2"
        browser.find_element("id", "replay-load").click()
        wait(browser, lambda: browser.find_element("id", "replay-status").get_attribute("data-ready"), "the replay")
        assert "120 orders, 7 couriers" in browser.find_element("id", "replay-status").text
        assert "addresses unknown" not in browser.find_element("id", "replay-status").text
        browser.execute_script("const s = document.getElementById('replay-slider'); s.value = 43200;"
                               "s.dispatchEvent(new Event('input'));")
        assert count(browser, ".order") > 0 and count(browser, ".courier") == 7
        browser.save_screenshot(str(shots / "5-job-replay.png"))
        no_browser_errors(browser)


def click(driver: Any, element: Any) -> None:
    """A click on the element itself, even where other markers cover it."""
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true, view: window}))",
                          element)


def at_time(driver: Any) -> str:
    return str(driver.find_element("id", "replay-time").text)


def test_the_tracking_page_draws_the_streets_around_the_address(browser: Any, live: LiveServer, shots: Path) -> None:
    """The customer's page (no key) shows the order's state and draws the roads near its address and its pin."""
    status, body = live.call("/v1/orders", order("t-page", location=NEAR_VDNH), **{"Idempotency-Key": "t-page"})
    assert status == 201, body
    browser.get(f"{live.url}/track/{body['tracking']}")
    wait(browser, lambda: browser.find_element("css selector", "#state").text not in ("", "Loading…"), "the state")
    wait(browser, lambda: count(browser, "#map path.leaflet-interactive") >= 3, "the roads and the pin")
    assert browser.find_element("css selector", "#state").text in ("Being prepared", "A courier is on the way to "
                                                                   "the store", "Packed, waiting for a courier")
    browser.save_screenshot(str(shots / "6-tracking.png"))
    no_browser_errors(browser)
