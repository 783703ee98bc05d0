"""Building a run's equipment link, the way plant events reach the MES: the scenario's
``link``: OPC UA (twin server -> fault proxy -> the MES's connector,
``twin.scenario.opcua_link``; the default), Sparkplug B (twin edge nodes -> broker ->
fault proxy -> the MES's host application, ``twin.scenario.sparkplug_link``) or the
direct collector stand-in
(``twin.scenario.link``). Also cutting it for the OPC UA faults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mes_core.schemas.plant_events import IngestResult, PlantEvent
from twin.scenario.context import RunContext
from twin.scenario.link import DirectCollector, EquipmentLink, Poster, Sampling
from twin.scenario.plant import EnginePlant
from twin.scenario.sut import SystemUnderTest

if TYPE_CHECKING:  # the OPC UA link is imported only when a run uses it
    from twin.scenario.opcua_link import PlantServing


class LinkBuilder:
    """The equipment link of one run (see the module docstring)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.serving: PlantServing | None = None

    def prepare(self) -> None:
        """Build the twin's OPC UA server early: it takes seconds, as the MES's start."""
        if self.ctx.scenario.link == "opcua":
            from twin.scenario.opcua_link import PlantServing

            self.serving = PlantServing(self.ctx.plant)

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

    def build(
        self, sut: SystemUnderTest, sim: EnginePlant, *, mes_url: str, admin_password: str
    ) -> EquipmentLink:
        ctx = self.ctx
        characteristics = self.characteristics()
        if ctx.scenario.link == "sparkplug":
            from twin.scenario.sparkplug_link import sparkplug_link_for

            return sparkplug_link_for(
                plant=ctx.plant,
                mes_url=mes_url,
                admin_password=admin_password,
                workdir=ctx.options.report_dir,
                state=ctx.state,
                sim=sim,
                characteristics=characteristics,
            )
        if ctx.scenario.link == "opcua":
            from twin.scenario.opcua_link import opcua_link_for

            return opcua_link_for(
                plant=ctx.plant,
                mes_url=mes_url,
                admin_password=admin_password,
                workdir=ctx.options.report_dir,
                state=ctx.state,
                serving=self.serving,  # adopted by the link (closing it is then a no-op)
                sim=sim,
                characteristics=characteristics,
            )
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

    def _guarded_post(self, post: Poster) -> Poster:
        """Posting fails while the link is cut (an OPC UA drop or server restart)."""
        ctx = self.ctx

        def guarded(batch: list[PlantEvent]) -> IngestResult:
            if ctx.sim is not None and ctx.sim.now() < ctx.link_down_until:
                raise ConnectionError("equipment link cut by fault injection")
            return post(batch)

        return guarded

    def close(self, link: EquipmentLink | None) -> None:
        close = getattr(link, "close", None)
        if close is not None:  # the OPC UA link's connector, proxy and server
            close()
        if self.serving is not None:  # a server no link took over (the run did not start)
            self.serving.close()
            self.serving = None
