"""A deployment: one city's road network, facilities with stock, couriers, dispatch policy and core knobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api import schemas
from api.errors import ApiError
from api.scenario_file import load_scenario
from dispatch.errors import InvalidDispatchError
from dispatch.model import DarkStore, Facility
from dispatch.operations import CourierSetup, Operations, OperationsOptions
from routing.network import RoadNetwork
from simulator.model import check_on_map, facilities, fleet_of, make_policy, operations_options
from simulator.scenario import Policy


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """One city: its road network, facilities with stock, couriers, dispatch policy and the core's knobs.

    `load` takes them from a scenario (or starts empty on a bare map); `configured` replaces the facilities or
    the couriers with the documents of `PUT /v1/facilities` and `PUT /v1/couriers`, kept in `config` so that a
    worker rebuilds the same deployment from a snapshot.
    """

    name: str
    network: RoadNetwork
    facilities: tuple[Facility, ...]
    couriers: Mapping[str, CourierSetup]
    pickers: Mapping[str, int]
    policy: Policy = field(default_factory=Policy)
    seed: int = 0
    options: OperationsOptions = field(default_factory=OperationsOptions)
    day_start: int = 8 * 3600
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, scenario: str | Path | None = None, network: str | Path | None = None) -> Deployment:
        """The deployment a scenario configures (its map unless `network`), or an empty one on `network`."""
        if scenario is None:
            if network is None:
                raise ApiError(422, "invalid", "give a scenario or a network", "scenario")
            return cls(name=Path(network).name, network=RoadNetwork.from_osm(network), facilities=(), couriers={},
                       pickers={})
        sc = load_scenario(scenario)
        net = RoadNetwork.from_osm(network if network is not None else sc.map_file)
        check_on_map(sc, net)
        return cls(name=sc.name, network=net, facilities=tuple(facilities(sc, [s.id for s in sc.demand.skus])),
                   couriers={c.id: c for c in fleet_of(sc)}, pickers={s.id: s.pickers for s in sc.stores},
                   policy=sc.policy, seed=sc.seed, options=operations_options(sc), day_start=sc.clock.start)

    def build(self) -> Operations:
        """A fresh operations core of this deployment (what a worker restores snapshots into)."""
        return Operations(self.network, self.facilities, self.couriers.values(),
                          make_policy(self.policy, seed=self.seed), pickers=self.pickers, options=self.options)

    @property
    def stores(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.facilities if isinstance(f, DarkStore))

    def configured(self, config: Mapping[str, Any]) -> Deployment:
        """This deployment with `config["facilities"]` and/or `config["couriers"]` (the PUT documents) in place.
        Couriers of a store that no longer exists are dropped. Raises a DispatchError naming the field."""
        facilities_doc, couriers_doc = config.get("facilities"), config.get("couriers")
        merged = {**self.config, **{k: v for k, v in config.items() if v is not None}}
        facs, pickers = self.facilities, self.pickers
        if facilities_doc is not None:
            facs, pickers = schemas.facilities_and_pickers_from_json(facilities_doc)
        stores = {f.id for f in facs if isinstance(f, DarkStore)}
        couriers: Mapping[str, CourierSetup] = self.couriers
        if couriers_doc is not None:
            couriers = {c.id: c for c in schemas.couriers_from_json(couriers_doc)}
            for i, c in enumerate(couriers.values()):
                if c.store not in stores:
                    raise InvalidDispatchError(f"couriers[{i}].store", f"unknown dark store {c.store!r}")
        couriers = {cid: c for cid, c in couriers.items() if c.store in stores}
        return Deployment(name=self.name, network=self.network, facilities=tuple(facs), couriers=couriers,
                          pickers=pickers, policy=self.policy, seed=self.seed, options=self.options,
                          day_start=self.day_start, config=merged)

    def view(self) -> dict[str, Any]:
        """What the API needs to know of the configuration (published by the worker as `config`)."""
        return {"stores": list(self.stores), "couriers": {c.id: {"store": c.store, "profile": c.profile}
                                                          for c in self.couriers.values()}}
