// lastmile map console: live couriers, routes and open orders over the road map, and replays of simulated days.
// Uses only the public /v1 endpoints (docs/api.md, "Map console") with the key kept in sessionStorage.
/* global L */

const KEY_ITEM = "lastmile.console.key";
const params = new URLSearchParams(window.location.search);
const POLL_MS = 1000 * Math.max(1, Number(params.get("poll")) || 5);
const ROUTE_COLOURS = ["#1565c0", "#00897b", "#6d4c41", "#5e35b1", "#c2185b", "#3949ab", "#7cb342", "#f4511e"];
const SPEEDS_KMH = { foot: 5, bike: 15, car: 25 };
const $ = (id) => document.getElementById(id);

// --- small helpers -------------------------------------------------------------------------------------------

function clock(t) {
  if (t === null || t === undefined) return "–";
  const s = Math.max(0, Math.round(t));
  const hh = String(Math.floor(s / 3600)).padStart(2, "0");
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  return `${hh}:${mm}`;
}

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
    "'": "&#39;" })[c]);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function status(message, error = false) {
  const node = $("status");
  node.textContent = message;
  node.classList.toggle("error", error);
}

function colourOf(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return ROUTE_COLOURS[h % ROUTE_COLOURS.length];
}

function slackClass(promiseBy, now, eta) {
  if (promiseBy === null || promiseBy === undefined) return "none";
  const margin = promiseBy - Math.max(now, eta ?? now);
  if (margin < 0) return "late";
  if (margin < 300) return "risk";
  if (margin < 900) return "tight";
  return "ok";
}

const latlng = (lonlat) => [lonlat[1], lonlat[0]];

// --- the key and the API ---------------------------------------------------------------------------------------

class KeyError extends Error {}

function askKey(message = "") {
  $("key-error").textContent = message;
  $("key-overlay").hidden = false;
  $("key-input").focus();
}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_ITEM);
  if (!key) throw new KeyError("no key");
  const headers = { Authorization: `Bearer ${key}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, document.baseURI), { ...options, headers });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => null);
    sessionStorage.removeItem(KEY_ITEM);
    throw new KeyError(body?.error?.message ?? response.statusText);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.error ? `${body.error.message}${body.error.field ? ` (${body.error.field})` : ""}`
      : `${response.status} ${response.statusText}`);
  }
  const type = response.headers.get("content-type") ?? "";
  return type.startsWith("application/json") ? response.json() : response.text(); // events.jsonl: x-ndjson
}

function failed(error) {
  if (error instanceof KeyError) {
    stopPolling();
    askKey(`The key was refused: ${error.message}`);
  } else {
    status(error.message, true);
  }
}

// --- the map ---------------------------------------------------------------------------------------------------

const map = L.map("map", { zoomSnap: 0.25 });
map.attributionControl.addAttribution("Roads © OpenStreetMap contributors");
map.setView([0, 0], 2);
const layers = {
  roads: L.layerGroup().addTo(map),
  zones: L.layerGroup().addTo(map),
  routes: L.layerGroup().addTo(map),
  orders: L.layerGroup().addTo(map),
  facilities: L.layerGroup().addTo(map),
  couriers: L.layerGroup().addTo(map),
  replay: L.layerGroup(),
};
L.control.layers(null, { Roads: layers.roads, "Store zones": layers.zones, Routes: layers.routes,
  "Open orders": layers.orders, Facilities: layers.facilities, Couriers: layers.couriers },
{ collapsed: true }).addTo(map);

const state = {
  mode: "live", mapName: "", mapSource: "", facilities: new Map(), facilityMarkers: new Map(), facilitiesDrawn: "",
  selected: null,
  couriers: [], orders: [], now: 0, timer: null, polling: false, replay: null, link: null,
};

async function loadMap() {
  const roads = await api("v1/map");
  state.mapName = roads.name;
  state.mapSource = roads.source;
  layers.roads.clearLayers();
  L.geoJSON(roads, {
    interactive: false,
    style: (f) => (f.properties.roads === "major"
      ? { className: "road road-major", color: "#9aa2a9", weight: 2.5, opacity: 1 }
      : { className: "road road-minor", color: "#c3c8cc", weight: 1.4, opacity: 1 }),
  }).addTo(layers.roads);
  const [w, s, e, n] = roads.bbox;
  map.fitBounds([[s, w], [n, e]], { padding: [12, 12] });
}

function facilityIcon(f) {
  const letter = { store: "S", locker: "L", pickup_point: "P" }[f.kind] ?? "?";
  const size = f.kind === "store" ? 22 : 18;
  const alert = Object.keys(f.stock_alerts ?? {}).length ? " has-stock-alert" : "";
  return L.divIcon({ className: `facility-marker ${f.kind}${alert}`, html: letter, iconSize: [size, size] });
}

function facilityText(f) {
  const lines = [`<b>${esc(f.id)}</b> (${esc(f.kind.replace("_", " "))})`];
  if (f.hours) lines.push(`open ${clock(f.hours[0])}–${clock(f.hours[1])}`);
  if (f.store) lines.push(`fed by ${esc(f.store)}`);
  if (f.kind === "store" && f.open_orders !== null && f.open_orders !== undefined) {
    lines.push(`${f.open_orders} open orders`);
  }
  if (f.pickers !== null && f.pickers !== undefined) lines.push(`pickers busy ${f.pickers_busy}/${f.pickers}`);
  const alerts = Object.entries(f.stock_alerts ?? {});
  if (alerts.length) {
    lines.push(`<span class="stock-alert">low stock: ${alerts.slice(0, 6).map(([sku, n]) => `${esc(sku)} ${n}`)
      .join(", ")}${alerts.length > 6 ? ` and ${alerts.length - 6} more` : ""}</span>`);
  }
  if (f.compartments) {
    const free = f.free_compartments;
    lines.push("compartments " + Object.entries(f.compartments)
      .map(([size, n]) => `${esc(size)} ${free ? `${free[size] ?? 0}/` : ""}${n}`).join(", ") + (free ? " free" : ""));
  }
  if (f.capacity !== null && f.capacity !== undefined) {
    lines.push(`${f.free_capacity !== null && f.free_capacity !== undefined ? `${f.free_capacity}/` : ""}`
      + `${f.capacity} places${f.free_capacity !== null && f.free_capacity !== undefined ? " free" : ""}`);
  }
  return lines.join("<br>");
}

function drawFacilities(list, zones = true) {
  state.facilities = new Map(list.map((f) => [f.id, f]));
  const drawn = JSON.stringify([zones, list.map((f) => [f.id, f.kind, f.location])]);
  if (drawn === state.facilitiesDrawn) { // the same places: only their counters change
    for (const f of list) {
      const marker = state.facilityMarkers.get(f.id);
      marker?.setTooltipContent(facilityText(f));
      marker?.getElement()?.classList.toggle("has-stock-alert", Object.keys(f.stock_alerts ?? {}).length > 0);
    }
    return;
  }
  state.facilitiesDrawn = drawn;
  layers.facilities.clearLayers();
  layers.zones.clearLayers();
  state.facilityMarkers = new Map();
  for (const f of list) {
    const marker = L.marker(latlng(f.location), { icon: facilityIcon(f), keyboard: false, zIndexOffset: 500 })
      .bindTooltip(facilityText(f)).addTo(layers.facilities);
    marker.on("add", () => marker.getElement()?.setAttribute("data-facility", f.id));
    marker.getElement()?.setAttribute("data-facility", f.id);
    state.facilityMarkers.set(f.id, marker);
    if (zones && f.zone) {
      L.geoJSON(f.zone, { interactive: false, style: { className: "zone", weight: 1.5 } }).addTo(layers.zones);
    }
  }
}

function highlightFacility(id, location) {
  for (const [fid, marker] of state.facilityMarkers) {
    marker.getElement()?.classList.toggle("highlight", fid === id);
  }
  if (state.link) state.link.remove();
  state.link = null;
  const f = id ? state.facilities.get(id) : null;
  if (f && location) {
    state.link = L.polyline([latlng(f.location), latlng(location)], { className: "order-link", color: "#c62828",
      weight: 2, interactive: false }).addTo(map);
  }
}

// Couriers and orders are dots (HTML markers): dots at one place, or at a facility, are fanned out around it by a
// few pixels, so that the couriers waiting at a store and the parcels bound for a locker can be told apart.

const placeKey = (lonlat) => `${lonlat[0].toFixed(5)},${lonlat[1].toFixed(5)}`;

function fanOut(items) {
  const groups = new Map();
  for (const { id, at } of items) {
    const k = placeKey(at);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(id);
  }
  const facilities = new Set([...state.facilities.values()].map((f) => placeKey(f.location)));
  const offsets = new Map();
  for (const [k, ids] of groups) {
    const around = facilities.has(k);
    ids.forEach((id, i) => {
      if (ids.length === 1 && !around) {
        offsets.set(id, [0, 0]);
        return;
      }
      const ring = Math.floor(i / 12);
      const inRing = Math.min(12, ids.length - ring * 12);
      const radius = (around ? 19 : 8) + ring * 11;
      const angle = -Math.PI / 2 + (2 * Math.PI * (i % 12)) / inRing;
      offsets.set(id, [Math.round(radius * Math.cos(angle)), Math.round(radius * Math.sin(angle))]);
    });
  }
  return offsets;
}

// One dot per id in `markers` (a Map) on `layer`: moved, restyled and its data attributes set; dots of ids not in
// `items` are removed. Each item: {id, at: [lon, lat], className, size, tooltip, data: {name: value}}.
function drawDots(markers, layer, items, onClick, zIndexOffset) {
  const offsets = fanOut(items);
  const seen = new Set();
  for (const item of items) {
    seen.add(item.id);
    const [dx, dy] = offsets.get(item.id);
    const look = `${item.className}|${dx}|${dy}`;
    let marker = markers.get(item.id);
    const icon = () => L.divIcon({ className: item.className, html: "", iconSize: [item.size, item.size],
      iconAnchor: [item.size / 2 - dx, item.size / 2 - dy] });
    if (!marker) {
      marker = L.marker(latlng(item.at), { icon: icon(), keyboard: false, zIndexOffset }).addTo(layer);
      marker.on("click", () => onClick(item.id));
      markers.set(item.id, marker);
    } else {
      marker.setLatLng(latlng(item.at));
      if (marker.look !== look) marker.setIcon(icon());
    }
    marker.look = look;
    for (const [name, value] of Object.entries(item.data)) marker.getElement()?.setAttribute(`data-${name}`, value);
    if (marker.getTooltip()) marker.setTooltipContent(item.tooltip);
    else marker.bindTooltip(item.tooltip);
  }
  for (const [id, marker] of markers) {
    if (!seen.has(id)) {
      marker.remove();
      markers.delete(id);
    }
  }
}

// --- live ------------------------------------------------------------------------------------------------------

const live = { courierMarkers: new Map(), orderMarkers: new Map() };

function courierText(c) {
  const next = c.route?.stops.find((s) => s.status !== "completed" && s.kind === "dropoff");
  return `<b>${esc(c.id)}</b> · ${esc(c.profile)} · ${esc(c.status.replace("_", " "))}`
    + (c.at === null ? "<br>at its store (no position reported)" : `<br>reported ${clock(c.at)}`)
    + (next ? `<br>next: ${esc(next.order)} ETA ${clock(next.eta)}` : "");
}

function drawCouriers(list) {
  drawDots(live.courierMarkers, layers.couriers, list.filter((c) => c.location).map((c) => ({
    id: c.id, at: c.location, className: `courier courier-${c.status}`, size: 14, tooltip: courierText(c),
    data: { courier: c.id, status: c.status } })), selectCourier, 1000);
}

function drawRoutes(list) {
  layers.routes.clearLayers();
  for (const c of list) {
    if (!c.route) continue;
    const selected = state.selected?.courier === c.id;
    const stops = c.route.stops.filter((s) => s.location);
    const first = Math.max(0, stops.findIndex((s) => s.status !== "completed") - 1);
    const legs = c.route.geometry?.coordinates ?? stops.slice(0, -1).map((s, k) => [s.location, stops[k + 1].location]);
    const remaining = legs.slice(first).map((line) => line.map(latlng));
    if (remaining.length) {
      L.polyline(remaining, { className: `route${selected ? " selected" : ""}`, color: colourOf(c.id),
        weight: selected ? 5 : 3, opacity: state.selected && !selected ? 0.35 : 0.85 })
        .on("click", () => selectCourier(c.id)).addTo(layers.routes);
    }
    let n = 0;
    for (const s of c.route.stops) {
      if (s.kind !== "dropoff") continue;
      n += 1;
      if (s.status === "completed" || !s.location) continue;
      const icon = L.divIcon({ className: "stop-marker", html: String(n), iconSize: [18, 18], iconAnchor: [-3, 21] });
      L.marker(latlng(s.location), { icon, keyboard: false, zIndexOffset: 200 })
        .bindTooltip(`${esc(c.id)} stop ${n}: ${esc(s.order)}<br>ETA ${clock(s.eta)}`
          + `${s.facility ? `<br>at ${esc(s.facility)}` : ""}`)
        .on("click", () => selectOrder(s.order)).addTo(layers.routes);
    }
  }
}

function orderPlace(o) {
  if (o.mode && o.mode !== "courier" && o.facility && state.facilities.has(o.facility)) {
    return state.facilities.get(o.facility).location;
  }
  return o.location;
}

// Open orders not yet handed over (those waiting in a locker or at a pickup point count in its free places).
function drawOrders(list, now) {
  drawDots(live.orderMarkers, layers.orders, list.filter((o) => o.state !== "delivered" && orderPlace(o)).map((o) => {
    const slack = slackClass(o.promise_by, now, o.eta);
    return { id: o.id, at: orderPlace(o), className: `order order-${slack}`, size: 11, data: { order: o.id, slack },
      tooltip: `<b>${esc(o.id)}</b> · ${esc(o.state)}${o.promise_by ? `<br>promised by ${clock(o.promise_by)}` : ""}`
        + `${o.eta ? ` · ETA ${clock(o.eta)}` : ""}` };
  }), selectOrder, 300);
}

function drawPanel(stats, orders) {
  $("clock").textContent = clock(stats.now);
  // Open orders past their promise count as late (as the simulator's KPIs count them).
  $("on-time").textContent = stats.on_time_rate === null ? "no delivery yet"
    : `${(100 * stats.on_time_rate).toFixed(1)} % (${stats.on_time} of ${stats.on_time + stats.late + stats.overdue}`
      + `${stats.overdue ? `, ${stats.overdue} overdue` : ""})`;
  $("open-orders").textContent = String(orders.length);
  $("last-decision").textContent = stats.last_decision_at === null ? "none yet" : clock(stats.last_decision_at);
  $("decision-time").textContent = stats.decisions
    ? `${stats.decisions.mean_ms.toFixed(1)} ms mean over ${stats.decisions.count}` : "no worker in this process";
  $("lag").textContent = String(stats.lag);
  const open = new Map();
  for (const o of orders) open.set(o.store ?? "(none)", (open.get(o.store ?? "(none)") ?? 0) + 1);
  const body = $("stores").tBodies[0];
  body.replaceChildren();
  for (const [store, s] of Object.entries(stats.stores)) {
    const n = (k) => s.couriers[k] ?? 0;
    body.append(el("tr", { "data-store": store }, el("td", { text: store }), el("td", { text: open.get(store) ?? 0 }),
      el("td", { text: n("idle") }), el("td", { text: n("assigned") + n("en_route") + n("returning") }),
      el("td", { text: n("off") })));
  }
}

async function poll() {
  if (state.polling || state.mode !== "live") return;
  state.polling = true;
  try {
    const [stats, couriers, orders, facilities] = await Promise.all([api("v1/stats"),
      api("v1/couriers?geometry=true"), api("v1/orders?state=open"), api("v1/facilities")]);
    if (state.mode !== "live") return;
    state.now = couriers.now;
    state.couriers = couriers.couriers;
    state.orders = orders.orders;
    drawFacilities(facilities.facilities);
    drawCouriers(couriers.couriers);
    drawRoutes(couriers.couriers);
    drawOrders(orders.orders, couriers.now);
    drawPanel(stats, orders.orders);
    if (state.selected?.courier) showCourier(state.selected.courier);
    status(`updated ${new Date().toLocaleTimeString()}${orders.truncated ? " · more open orders than shown" : ""}`);
  } catch (error) {
    failed(error);
  } finally {
    state.polling = false;
  }
}

function startPolling() {
  stopPolling();
  poll();
  state.timer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  if (state.timer !== null) clearInterval(state.timer);
  state.timer = null;
}

// --- details: an order's timeline, a courier's route ------------------------------------------------------------

function detail(title, ...content) {
  const close = el("button", { type: "button", class: "close", text: "×", "aria-label": "close" });
  close.addEventListener("click", () => {
    $("detail").hidden = true;
    state.selected = null;
    highlightFacility(null);
    if (state.mode === "live") drawRoutes(state.couriers);
  });
  $("detail").replaceChildren(close, el("h2", { text: title }), ...content);
  $("detail").hidden = false;
}

function facts(pairs) {
  const dl = el("dl", { class: "figures" });
  for (const [name, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(el("dt", { text: name }), el("dd", { text: value }));
  }
  return dl;
}

function timelineList(events) {
  const list = el("ol", { class: "timeline" });
  for (const e of events) {
    const extra = Object.entries(e).filter(([k]) => !["t", "order", "event"].includes(k))
      .map(([k, v]) => `${k} ${typeof v === "number" && /eta|_by|_at/.test(k) ? clock(v)
        : typeof v === "string" ? v : JSON.stringify(v)}`);
    const text = `${clock(e.t)} ${e.event}${extra.length ? ` · ${extra.join(", ")}` : ""}`;
    list.append(el("li", { "data-event": e.event, text }));
  }
  return list;
}

function facilityFacts(id) {
  const f = id ? state.facilities.get(id) : null;
  return f ? `${f.id} (${f.kind.replace("_", " ")})` : id;
}

async function selectOrder(id) {
  state.selected = { order: id };
  if (state.mode === "replay") {
    showReplayOrder(id);
    return;
  }
  try {
    const o = await api(`v1/orders/${encodeURIComponent(id)}`);
    detail(`Order ${o.id}`, facts([["State", o.state], ["Mode", o.mode], ["Store", o.store],
      ["Facility", facilityFacts(o.facility)], ["Locker", o.locker], ["Courier", o.courier],
      ["Promised by", o.promise_by ? clock(o.promise_by) : null], ["ETA", o.eta ? clock(o.eta) : null],
      ["Quoted ETA", o.quoted_eta ? clock(o.quoted_eta) : null], ["Reason", o.reason]]),
    el("h3", { text: "Timeline" }), timelineList(o.timeline ?? []));
    highlightFacility(o.locker ?? o.facility, o.location);
  } catch (error) {
    failed(error);
  }
}

function showCourier(id) {
  const c = state.couriers.find((x) => x.id === id);
  if (!c) return;
  const stops = el("ol", { class: "stops" });
  for (const s of c.route?.stops ?? []) {
    const what = s.kind === "dropoff" ? `${s.order}${s.facility ? ` at ${s.facility}` : ""}` : s.kind;
    stops.append(el("li", { "data-stop": s.id, text: `${what} · ETA ${clock(s.eta)} · ${s.status}` }));
  }
  detail(`Courier ${c.id}`, facts([["Store", c.store], ["Profile", c.profile], ["Status", c.status.replace("_", " ")],
    ["Position", c.at === null ? "its store (none reported)" : `reported ${clock(c.at)}`],
    ["Dispatched", c.route ? clock(c.route.dispatch_at) : null], ["Back by", c.route ? clock(c.route.end_at) : null],
    ["Distance", c.route ? `${(c.route.distance_m / 1000).toFixed(1)} km` : null]]),
  el("h3", { text: c.route ? "Route" : "No trip" }), stops);
}

function selectCourier(id) {
  state.selected = { courier: id };
  highlightFacility(null);
  if (state.mode === "replay") {
    showReplayCourier(id);
    return;
  }
  showCourier(id);
  drawRoutes(state.couriers);
}

// --- replay ----------------------------------------------------------------------------------------------------

function parseEvents(text) {
  const events = [];
  text.split("\n").forEach((line, k) => {
    if (!line.trim()) return;
    try {
      events.push(JSON.parse(line));
    } catch {
      throw new Error(`events.jsonl line ${k + 1} is not JSON`);
    }
  });
  if (!events.length || events.some((e) => typeof e.t !== "number" || !e.order || !e.event)) {
    throw new Error("events.jsonl: expected one {t, order, event, ...} object per line");
  }
  return events.sort((a, b) => a.t - b.t);
}

function metres(a, b) {
  const k = Math.PI / 180;
  const x = (b[0] - a[0]) * k * Math.cos(((a[1] + b[1]) / 2) * k);
  const y = (b[1] - a[1]) * k;
  return 6371008.8 * Math.hypot(x, y);
}

// The day as the map needs it: each order's place and life, each courier's known positions in time.
function buildReplay(events, kpis, courierRows, places) {
  const facilities = new Map((places?.facilities ?? [...state.facilities.values()]).map((f) => [f.id, f]));
  const addresses = new Map((places?.orders ?? []).map((o) => [o.id, o]));
  const placed = events.filter((e) => e.event === "placed");
  const consistent = placed.length > 0 && placed.every((e) => {
    const o = addresses.get(e.order);
    return o && o.placed_at === e.t && (!e.mode || o.mode === e.mode);
  });
  const orders = new Map();
  const couriers = new Map();
  for (const row of courierRows ?? places?.couriers ?? []) {
    couriers.set(row.id, { id: row.id, store: row.store, profile: row.profile, from: row.shift_start,
      to: row.off_at ?? row.shift_end, visits: [] });
  }
  const courier = (id, store) => {
    if (!couriers.has(id)) couriers.set(id, { id, store, profile: "", from: null, to: null, visits: [] });
    return couriers.get(id);
  };
  for (const e of events) {
    if (!orders.has(e.order)) {
      orders.set(e.order, { id: e.order, placed: e.t, closed: null, mode: e.mode ?? "courier", store: null,
        facility: null, promise_by: null, eta: [], courier: null, events: [],
        address: consistent ? addresses.get(e.order).location : null });
    }
    const o = orders.get(e.order);
    o.events.push(e);
    if (e.event === "allocated") Object.assign(o, { store: e.store, facility: e.facility, promise_by: e.promise_by });
    if (e.event === "redirected") o.facility = e.locker;
    if (e.event === "assigned") {
      o.courier = e.courier;
      o.eta.push([e.t, e.eta]);
    }
    if (o.closed === null && ["delivered", "rejected", "cancelled", "returned", "collected"].includes(e.event)) {
      o.closed = e.t; // handed over: at the door, or into a locker or pickup point
    }
    const store = facilities.get(o.store);
    if (e.event === "picked_up" && store) {
      const c = courier(e.courier, o.store);
      const last = c.visits.at(-1);
      if (!last || last.t !== e.t || last.kind !== "store") {
        c.visits.push({ t: e.t, kind: "store", at: store.location });
      }
    }
    if ((e.event === "delivered" || e.event === "failed") && e.courier) {
      const where = o.mode === "courier" ? o.address : facilities.get(o.facility)?.location;
      if (where) courier(e.courier, o.store).visits.push({ t: e.t, kind: "door", at: where, order: o.id });
    }
  }
  // back at the store: the straight line at the profile's speed (1.3 for the roads' detours), before the next pickup
  for (const c of couriers.values()) {
    const store = facilities.get(c.store);
    const visits = [];
    c.visits.forEach((v, k) => {
      visits.push(v);
      const next = c.visits[k + 1];
      if (v.kind === "door" && store && (!next || next.kind === "store")) {
        const speed = (SPEEDS_KMH[c.profile] ?? 15) / 3.6;
        const back = v.t + Math.round((1.3 * metres(v.at, store.location)) / speed);
        visits.push({ t: next ? Math.min(back, next.t) : back, kind: "store", at: store.location, estimated: true });
      }
    });
    c.visits = visits;
    c.home = store?.location ?? null;
  }
  const start = places?.start ?? Math.floor(events[0].t / 3600) * 3600;
  const end = Math.max(places?.end ?? 0, ...events.map((e) => e.t));
  return { events, kpis, orders, couriers, facilities, start, end, located: consistent, markers: new Map(),
    orderMarkers: new Map(), t: start, playing: false, speed: Number($("replay-speed").value), series: null };
}

function courierAt(c, t) {
  const v = c.visits;
  if (!v.length || t < v[0].t) return { at: c.home, status: c.from !== null && t < c.from ? "off" : "idle" };
  let k = v.length - 1;
  while (k > 0 && v[k].t > t) k -= 1;
  const a = v[k];
  const b = v[k + 1];
  const off = c.to !== null && t > c.to;
  if (!b) return { at: a.at, status: off ? "off" : "idle" };
  if (a.kind === "store" && a.estimated && b.kind === "store") return { at: a.at, status: "idle" };
  const f = b.t > a.t ? (t - a.t) / (b.t - a.t) : 1;
  const at = [a.at[0] + (b.at[0] - a.at[0]) * f, a.at[1] + (b.at[1] - a.at[1]) * f];
  const returning = b.kind === "store" && b.estimated;
  return { at, status: returning ? "returning" : "en_route" };
}

function replayOrderPlace(r, o) {
  if (o.mode !== "courier" && o.facility && r.facilities.has(o.facility)) return r.facilities.get(o.facility).location;
  if (o.address) return o.address;
  return null;
}

function etaAt(o, t) {
  let eta = null;
  for (const [when, value] of o.eta) if (when <= t) eta = value;
  return eta;
}

function renderReplay() {
  const r = state.replay;
  if (!r) return;
  const t = r.t;
  $("replay-time").textContent = clock(t);
  $("clock").textContent = clock(t);
  $("replay-slider").value = String(t);
  const couriers = [];
  for (const c of r.couriers.values()) {
    const { at, status: s } = courierAt(c, t);
    if (at) {
      couriers.push({ id: c.id, at, className: `courier courier-${s}`, size: 14, data: { courier: c.id, status: s },
        tooltip: `<b>${esc(c.id)}</b> · ${esc(s.replace("_", " "))}` });
    }
  }
  drawDots(r.markers, layers.replay, couriers, selectCourier, 1000);
  const orders = [];
  for (const o of r.orders.values()) {
    const where = replayOrderPlace(r, o);
    if (o.placed > t || (o.closed !== null && o.closed <= t) || !where) continue;
    const slack = slackClass(o.promise_by, t, etaAt(o, t));
    orders.push({ id: o.id, at: where, className: `order order-${slack}`, size: 11, data: { order: o.id, slack },
      tooltip: `<b>${esc(o.id)}</b>${o.promise_by ? ` · promised by ${clock(o.promise_by)}` : ""}` });
  }
  drawDots(r.orderMarkers, layers.replay, orders, selectOrder, 300);
  drawCursors(r);
  if (state.selected?.courier) showReplayCourier(state.selected.courier);
}

// KPI series over the day (one point per step), drawn as small SVG charts with a cursor at the slider's time.
function seriesOf(r) {
  const steps = 200;
  const dt = Math.max(60, Math.ceil((r.end - r.start) / steps));
  const times = [];
  for (let t = r.start; t <= r.end + dt; t += dt) times.push(Math.min(t, r.end));
  const orders = [...r.orders.values()];
  const delivered = r.events.filter((e) => e.event === "delivered");
  const open = times.map((t) => orders.filter((o) => o.placed <= t && (o.closed === null || o.closed > t)).length);
  const done = times.map((t) => delivered.filter((e) => e.t <= t).length);
  const onTime = times.map((t) => {
    const upto = delivered.filter((e) => e.t <= t && e.on_time !== undefined && e.on_time !== null);
    return upto.length ? (100 * upto.filter((e) => e.on_time).length) / upto.length : null;
  });
  const out = times.map((t) => [...r.couriers.values()].filter((c) => {
    const s = courierAt(c, t).status;
    return s === "en_route" || s === "returning";
  }).length);
  return { times, charts: [
    { id: "open", title: "Orders not yet handed over", values: open, format: (v) => String(v) },
    { id: "delivered", title: "Delivered", values: done, format: (v) => String(v) },
    { id: "on-time", title: "On time, so far", values: onTime, format: (v) => (v === null ? "–" : `${v.toFixed(1)} %`),
      max: 100 },
    { id: "out", title: "Couriers out", values: out, format: (v) => String(v) },
  ] };
}

function drawCharts(r) {
  r.series = seriesOf(r);
  const box = $("charts");
  box.replaceChildren();
  const W = 340;
  const H = 90;
  const pad = { l: 4, r: 4, t: 16, b: 14 };
  for (const chart of r.series.charts) {
    const values = chart.values.map((v) => v ?? 0);
    const max = chart.max ?? Math.max(1, ...values);
    const x = (t) => pad.l + ((t - r.start) / Math.max(1, r.end - r.start)) * (W - pad.l - pad.r);
    const y = (v) => H - pad.b - (v / max) * (H - pad.t - pad.b);
    const node = svg("svg", { class: "chart", id: `chart-${chart.id}`, viewBox: `0 0 ${W} ${H}`,
      preserveAspectRatio: "none", role: "img", "aria-label": chart.title });
    node.append(svg("rect", { class: "frame", x: pad.l, y: pad.t, width: W - pad.l - pad.r,
      height: H - pad.t - pad.b }));
    const points = r.series.times
      .map((t, k) => (chart.values[k] === null ? null : `${x(t).toFixed(1)},${y(chart.values[k]).toFixed(1)}`))
      .filter(Boolean).join(" ");
    node.append(svg("polyline", { class: "area", points }));
    const title = svg("text", { x: pad.l, y: 11 });
    title.textContent = chart.title;
    const value = svg("text", { class: "value", x: W - pad.r, y: 11, "text-anchor": "end" });
    const from = svg("text", { x: pad.l, y: H - 2 });
    from.textContent = clock(r.start);
    const to = svg("text", { x: W - pad.r, y: H - 2, "text-anchor": "end" });
    to.textContent = clock(r.end);
    const top = svg("text", { x: pad.l + 2, y: pad.t + 10 });
    top.textContent = chart.format(max);
    const cursor = svg("line", { class: "chart-cursor", y1: pad.t, y2: H - pad.b, x1: pad.l, x2: pad.l });
    node.append(title, value, from, to, top, cursor);
    chart.node = node;
    chart.x = x;
    chart.cursor = cursor;
    chart.valueNode = value;
    box.append(node);
  }
}

function drawCursors(r) {
  if (!r.series) return;
  const { times } = r.series;
  let k = 0;
  while (k + 1 < times.length && times[k + 1] <= r.t) k += 1;
  for (const chart of r.series.charts) {
    const x = chart.x(r.t).toFixed(1);
    chart.cursor.setAttribute("x1", x);
    chart.cursor.setAttribute("x2", x);
    chart.valueNode.textContent = chart.format(chart.values[k]);
    chart.node.setAttribute("data-value", String(chart.values[k]));
  }
}

const KPI_ROWS = [["orders", "Orders", (v) => v], ["delivered", "Delivered", (v) => v],
  ["on_time_rate", "On time", (v) => `${(100 * v).toFixed(1)} %`],
  ["click_to_door_mean_min", "Click to door, mean", (v) => `${v} min`],
  ["click_to_door_p90_min", "Click to door, p90", (v) => `${v} min`],
  ["courier_utilisation", "Courier utilisation", (v) => `${(100 * v).toFixed(1)} %`],
  ["km", "Distance", (v) => `${v} km`], ["cost_per_order", "Cost per order", (v) => v],
  ["orders_per_trip", "Orders per trip", (v) => v]];

function drawKpis(kpis) {
  const body = $("replay-kpis").tBodies[0];
  body.replaceChildren();
  if (!kpis) return;
  const title = `Day's KPIs${kpis.scenario ? ` · ${kpis.scenario}` : ""}${kpis.policy ? ` · ${kpis.policy}` : ""}`;
  body.append(el("tr", {}, el("th", { colspan: "2", text: title })));
  for (const [key, label, format] of KPI_ROWS) {
    if (kpis[key] === undefined || kpis[key] === null) continue;
    body.append(el("tr", { "data-kpi": key }, el("td", { text: label }),
      el("td", { text: String(format(kpis[key])) })));
  }
}

function showReplayOrder(id) {
  const r = state.replay;
  const o = r?.orders.get(id);
  if (!o) return;
  const facility = o.facility ? r.facilities.get(o.facility) : null;
  detail(`Order ${o.id}`, facts([["Mode", o.mode], ["Store", o.store],
    ["Facility", facility ? `${facility.id} (${facility.kind.replace("_", " ")})` : o.facility],
    ["Courier", o.courier], ["Promised by", o.promise_by ? clock(o.promise_by) : null]]),
  el("h3", { text: "Timeline" }), timelineList(o.events));
  highlightFacility(null);
  if (facility) {
    for (const [fid, marker] of state.facilityMarkers) {
      marker.getElement()?.classList.toggle("highlight", fid === facility.id);
    }
  }
}

function showReplayCourier(id) {
  const r = state.replay;
  const c = r?.couriers.get(id);
  if (!c) return;
  const { status: s } = courierAt(c, r.t);
  const list = el("ol", { class: "stops" });
  for (const v of c.visits) {
    if (Math.abs(v.t - r.t) > 3600) continue;
    list.append(el("li", { text: `${clock(v.t)} ${v.kind === "door" ? `door of ${v.order}` : "store"}`
      + `${v.estimated ? " (estimated)" : ""}${v.t <= r.t ? "" : " · ahead"}` }));
  }
  detail(`Courier ${c.id}`, facts([["Store", c.store], ["Profile", c.profile], ["Status", s.replace("_", " ")],
    ["Shift", c.from !== null ? `${clock(c.from)}–${clock(c.to)}` : null]]),
  el("h3", { text: "Visits within an hour" }), list);
}

const replayInput = { events: null, kpis: null, couriers: null, job: null };

async function readFiles(files) {
  Object.assign(replayInput, { events: null, kpis: null, couriers: null, job: null });
  for (const file of files) {
    const text = await file.text();
    if (file.name.endsWith(".jsonl")) replayInput.events = text;
    else if (file.name.startsWith("kpis")) replayInput.kpis = JSON.parse(text);
    else if (file.name.startsWith("couriers")) replayInput.couriers = JSON.parse(text);
  }
  if (replayInput.kpis) {
    $("replay-scenario-name").value = replayInput.kpis.scenario ?? "";
    $("replay-seed").value = replayInput.kpis.seed ?? "";
  }
  if (replayInput.events) replayStatus("files read: check the scenario and Load");
  else replayStatus("events.jsonl is missing", true);
}

async function readJob(id) {
  Object.assign(replayInput, { events: null, kpis: null, couriers: null, job: null });
  const job = await api(`v1/simulations/${encodeURIComponent(id)}`);
  const files = Object.keys(job.links.files ?? {});
  if (!files.includes("events.jsonl")) throw new Error(`simulation ${id} is ${job.status}: no events.jsonl yet`);
  const base = `v1/simulations/${encodeURIComponent(id)}/files/`;
  replayInput.events = await api(base + "events.jsonl");
  if (files.includes("kpis.json")) replayInput.kpis = await api(base + "kpis.json");
  if (files.includes("couriers.json")) replayInput.couriers = await api(base + "couriers.json");
  replayInput.job = job;
  $("replay-scenario-name").value = job.scenario;
  $("replay-seed").value = job.seed ?? "";
  replayStatus(`simulation ${id} read: Load to play it`);
}

function replayStatus(message, error = false) {
  $("replay-status").textContent = message;
  $("replay-status").classList.toggle("error", error);
}

async function loadReplay() {
  if (!replayInput.events) {
    replayStatus("choose the files of a run or a planner job first", true);
    return;
  }
  pause();
  const events = parseEvents(replayInput.events);
  const scenario = $("replay-scenario-name").value.trim();
  const seed = $("replay-seed").value === "" ? null : Number($("replay-seed").value);
  let places = null;
  let note = "";
  if (scenario) {
    const set = { ...(replayInput.job?.set ?? {}) };
    delete set.seed;
    try {
      places = await api("v1/replay", { method: "POST", body: JSON.stringify({ scenario, set, seed }) });
    } catch (error) {
      if (error instanceof KeyError) throw error;
      note = ` · addresses unknown (${error.message})`;
    }
  }
  const r = buildReplay(events, replayInput.kpis, replayInput.couriers, places);
  if (places && !r.located) note = " · the scenario's orders do not match these events: only facility orders drawn";
  if (places && places.map !== state.mapSource) {
    note += ` · the run's map is ${places.map}, the served one ${state.mapSource}`;
  }
  if (state.replay) layers.replay.clearLayers();
  state.replay = r;
  if (places) drawFacilities(places.facilities, false);
  const slider = $("replay-slider");
  slider.min = String(r.start);
  slider.max = String(r.end);
  $("replay-controls").hidden = false;
  drawCharts(r);
  drawKpis(r.kpis);
  renderReplay();
  replayStatus(`ready: ${r.orders.size} orders, ${r.couriers.size} couriers, ${clock(r.start)}–${clock(r.end)}${note}`);
  $("replay-status").setAttribute("data-ready", "true");
}

let lastFrame = null;

function frame(now) {
  const r = state.replay;
  if (!r || !r.playing) return;
  if (lastFrame !== null) r.t = Math.min(r.end, r.t + ((now - lastFrame) / 1000) * r.speed);
  lastFrame = now;
  renderReplay();
  if (r.t >= r.end) pause();
  else requestAnimationFrame(frame);
}

function play() {
  const r = state.replay;
  if (!r) return;
  if (r.t >= r.end) r.t = r.start;
  r.playing = true;
  lastFrame = null;
  $("replay-play").textContent = "Pause";
  requestAnimationFrame(frame);
}

function pause() {
  if (state.replay) state.replay.playing = false;
  $("replay-play").textContent = "Play";
}

async function listJobs() {
  try {
    const { simulations } = await api("v1/simulations?limit=50");
    const select = $("replay-jobs");
    const done = simulations.filter((j) => j.status === "done");
    const none = "none done in this process";
    select.replaceChildren(el("option", { value: "", text: done.length ? "simulations…" : none }));
    for (const job of done) {
      const text = `${job.scenario} · seed ${job.seed} · ${job.finished ?? ""}`;
      select.append(el("option", { value: job.id, text }));
    }
  } catch (error) {
    failed(error);
  }
}

// --- modes and start-up -----------------------------------------------------------------------------------------

function setMode(mode) {
  state.mode = mode;
  $("tab-live").setAttribute("aria-selected", String(mode === "live"));
  $("tab-replay").setAttribute("aria-selected", String(mode === "replay"));
  $("live-panel").hidden = mode !== "live";
  $("replay-panel").hidden = mode !== "replay";
  $("detail").hidden = true;
  state.selected = null;
  highlightFacility(null);
  const liveLayers = [layers.routes, layers.orders, layers.couriers];
  if (mode === "live") {
    pause();
    map.removeLayer(layers.replay);
    liveLayers.forEach((layer) => layer.addTo(map));
    startPolling();
  } else {
    stopPolling();
    liveLayers.forEach((layer) => map.removeLayer(layer));
    layers.replay.addTo(map);
    if (state.replay) {
      drawFacilities([...state.replay.facilities.values()], false);
      renderReplay();
    }
    listJobs();
  }
}

async function start() {
  try {
    await loadMap();
    drawFacilities((await api("v1/facilities")).facilities);
    $("key-overlay").hidden = true;
    setMode(state.mode);
  } catch (error) {
    failed(error);
  }
}

function wire() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_ITEM, $("key-input").value.trim());
    $("key-input").value = "";
    start();
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_ITEM);
    stopPolling();
    askKey();
  });
  $("tab-live").addEventListener("click", () => setMode("live"));
  $("tab-replay").addEventListener("click", () => setMode("replay"));
  $("replay-input").addEventListener("change", (event) => readFiles([...event.target.files])
    .catch((error) => replayStatus(error.message, true)));
  $("replay-jobs").addEventListener("change", (event) => {
    if (event.target.value) readJob(event.target.value).catch((error) => replayStatus(error.message, true));
  });
  $("replay-scenario").addEventListener("submit", (event) => {
    event.preventDefault();
    loadReplay().catch((error) => (error instanceof KeyError ? failed(error) : replayStatus(error.message, true)));
  });
  $("replay-slider").addEventListener("input", (event) => {
    if (!state.replay) return;
    state.replay.t = Number(event.target.value);
    renderReplay();
  });
  $("replay-play").addEventListener("click", () => (state.replay?.playing ? pause() : play()));
  $("replay-speed").addEventListener("change", (event) => {
    if (state.replay) state.replay.speed = Number(event.target.value);
  });
}

wire();
const given = params.get("key");
if (given) {
  sessionStorage.setItem(KEY_ITEM, given);
  params.delete("key");
  const rest = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (rest ? `?${rest}` : "") + window.location.hash);
}
if (sessionStorage.getItem(KEY_ITEM)) start();
else askKey();
