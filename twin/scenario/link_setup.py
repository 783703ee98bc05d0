"""Building a run's equipment link, the way plant events reach the MES: the scenario's
``link``: OPC UA (twin server -> fault proxy -> the MES's connector,
``twin.scenario.opcua_link``; the default), Sparkplug B (twin edge nodes -> broker ->
fault proxy -> the MES's host application, ``twin.scenario.sparkplug_link``) or the
direct collector stand-in
(``twin.scenario.link``). Also cutting it for the OPC UA faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mes_core.schemas.plant_events import IngestResult, PlantEvent
from twin.scenario.context import RunContext
from twin.scenario.link import DirectCollector, EquipmentLink, Poster, Sampling
from twin.scenario.plant import EnginePlant
from twin.scenario.proxy import TcpProxy
from twin.scenario.sut import (
    CatchUp,
    ConnectorTarget,
    EventIngest,
    SutUnavailable,
    SystemUnderTest,
    UnitProgress,
    missing,
)

if TYPE_CHECKING:  # the OPC UA link is imported only when a run uses it
    from twin.scenario.opcua_link import PlantServing
    from twin.scenario.uns_mirror import UnsMirror


class LinkBuilder:
    """The equipment link of one run (see the module docstring)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.serving: PlantServing | None = None
        self.proxy: TcpProxy | None = None
        self.endpoint: str | None = None
        """With ``link: opcua-external``: where the MES's own collector subscribes."""
        self.mirror: UnsMirror | None = None

    def prepare(self) -> None:
        """Build the twin's OPC UA server early: it takes seconds, as the MES's start.
        With ``opcua-external`` its fault proxy too, so the endpoint the MES's collector
        subscribes to is known before the MES starts."""
        if self.ctx.scenario.link in ("opcua", "opcua-external"):
            from twin.scenario.opcua_link import PlantServing

            self.serving = PlantServing(self.ctx.plant)
        if self.ctx.scenario.link == "opcua-external":
            assert self.serving is not None
            self.proxy = TcpProxy("127.0.0.1", self.serving.port).start()
            self.endpoint = f"opc.tcp://127.0.0.1:{self.proxy.port}"

    def characteristics(self) -> dict[tuple[str, str], Sampling]:
        """Sampling plan of each (work unit, process value) that feeds an inspection
        characteristic of the plant's routings."""
        plant = self.ctx.plant
        plans: dict[str, Sampling] = {}
        for product in plant.products:
            for seg in product.segments:
                for c in seg.inspections:
                    plans.setdefault(
                        c.name,
                        Sampling(c.name, c.sampling.every_seconds, c.sampling.every_units),
                    )
        return {
            (wu.code, pv.name): plans.get(pv.characteristic, Sampling(pv.characteristic))
            for wu in plant.all_work_units()
            for pv in wu.process_values
            if pv.characteristic
        }

    def unsupported(self, sut: SystemUnderTest) -> str | None:
        """Why the scenario's ``link`` cannot reach this system under test, or None."""
        adapter = self.ctx.scenario.system_under_test.adapter
        link = self.ctx.scenario.link
        if link in ("opcua", "sparkplug") and not isinstance(sut, ConnectorTarget):
            why = missing("connector_target", adapter)
            return (
                f"link: {link} starts the bench's connector, but {why}; use link: "
                "opcua-external (the MES subscribes with its own collector)"
            )
        if link == "direct" and not isinstance(sut, EventIngest):
            return f"link: direct posts plant events, but {missing('event_ingest', adapter)}"
        return None

    def build(self, sut: SystemUnderTest, sim: EnginePlant) -> EquipmentLink:
        ctx = self.ctx
        characteristics = self.characteristics()
        if ctx.scenario.link == "sparkplug":
            from twin.scenario.sparkplug_link import sparkplug_link_for

            assert isinstance(sut, ConnectorTarget)
            mes_url, api_key = sut.connector_target()
            return sparkplug_link_for(
                plant=ctx.plant,
                mes_url=mes_url,
                api_key=api_key,
                workdir=ctx.options.report_dir,
                state=ctx.state,
                sim=sim,
                characteristics=characteristics,
            )
        if ctx.scenario.link == "opcua":
            from twin.scenario.opcua_link import opcua_link_for

            assert isinstance(sut, ConnectorTarget)
            mes_url, api_key = sut.connector_target()
            return opcua_link_for(
                plant=ctx.plant,
                mes_url=mes_url,
                api_key=api_key,
                workdir=ctx.options.report_dir,
                state=ctx.state,
                serving=self.serving,  # adopted by the link (closing it is then a no-op)
                sim=sim,
                characteristics=characteristics,
            )
        if ctx.scenario.link == "opcua-external":
            return self._external(sut, sim, characteristics)
        assert isinstance(sut, EventIngest)
        link = DirectCollector(
            self._guarded_post(sut.post_events),
            source=f"twin-direct:{ctx.plant.plant.code}",
            start=ctx.plant.plant.start,
            characteristics=characteristics,
        )
        sim.add_observer(link)
        ctx.state.notes.append(
            "Equipment traffic went through the direct collector (stand-in for the twin OPC UA "
            "server + mes_core OPC UA connector): same wire contract, deltas from cumulative "
            "counters, store-and-forward; OPC UA faults cut that link."
        )
        return link

    def build_mirror(self, sim: EnginePlant) -> UnsMirror | None:
        """The scenario's ``mirror``, started and registered as the engine's observer."""
        ctx = self.ctx
        if ctx.scenario.mirror != "sparkplug":
            return None
        from twin.scenario.uns_mirror import UnsMirror

        self.mirror = UnsMirror(ctx.plant, ctx.options.report_dir).start(sim)
        ctx.state.notes.append(
            f"The plant was mirrored to a second consumer beside the MES's link: Sparkplug B "
            f"edge nodes (group {self.mirror.group}) on a broker of the run's own at "
            f"{self.mirror.endpoint}, read by a subscriber of the unified namespace (a host "
            "application that is not the primary one); the report's mirror section "
            "reconciles its counters with the twin's."
        )
        return self.mirror

    def _external(
        self,
        sut: SystemUnderTest,
        sim: EnginePlant,
        characteristics: dict[tuple[str, str], Sampling],
    ) -> EquipmentLink:
        from twin.scenario.opcua_external import ExternalOpcUaLink

        ctx = self.ctx
        assert self.proxy is not None
        state = ctx.state
        link = ExternalOpcUaLink(
            ctx.plant,
            workdir=ctx.options.report_dir,
            characteristics=characteristics,
            clock=sim.now,
            notes=state.notes,
            is_down=lambda: bool(state.mes_down),
            serving=self.serving,
            proxy=self.proxy,
            caught_up=self._caught_up(sut),
        ).start()
        self.proxy = None  # the link stops it
        sim.add_observer(link)
        sim.subscribe(link.on_ledger)
        how = (
            "the adapter's caught_up"
            if isinstance(sut, CatchUp)
            else "its records against the counts the twin published (the adapter has no caught_up)"
        )
        state.notes.append(
            f"Equipment traffic went over OPC UA to the MES's own collector: the twin's "
            f"server at {link.endpoint} (behind a fault proxy); the bench ran no connector "
            f"and learnt that the MES had caught up from {how}."
        )
        return link

    def _caught_up(self, sut: SystemUnderTest) -> Callable[[float, dict[str, UnitProgress]], bool]:
        if isinstance(sut, CatchUp):
            ask = sut

            def adapter_says(until: float, expected: dict[str, UnitProgress]) -> bool:
                try:
                    return ask.caught_up(until, expected)
                except SutUnavailable:
                    return False

            return adapter_says
        plant = self.ctx.plant

        def by_records(until: float, expected: dict[str, UnitProgress]) -> bool:
            try:
                # A second more, so a count stamped at ``until`` is in the window.
                units = sut.records(plant, until + 1.0).work_units
            except SutUnavailable:
                return False
            return all(
                wu in units and units[wu].good >= p.good and units[wu].scrap >= p.scrap
                for wu, p in expected.items()
            )

        return by_records

    def _guarded_post(self, post: Poster) -> Poster:
        """Posting fails while the link is cut (an OPC UA drop or server restart)."""
        ctx = self.ctx

        def guarded(batch: list[PlantEvent]) -> IngestResult:
            if ctx.sim is not None and ctx.sim.now() < ctx.link_down_until:
                raise ConnectionError("equipment link cut by fault injection")
            return post(batch)

        return guarded

    def close(self, link: EquipmentLink | None) -> None:
        if self.mirror is not None:
            self.mirror.close()
            self.mirror = None
        close = getattr(link, "close", None)
        if close is not None:  # the OPC UA link's connector, proxy and server
            close()
        if self.serving is not None:  # a server no link took over (the run did not start)
            self.serving.close()
            self.serving = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
