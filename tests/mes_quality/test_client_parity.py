"""The quality/KPI/labour/ERP client methods exist on both the sync and the async client."""

from __future__ import annotations

import asyncio
import inspect

from mes_quality_factories import QA_PASSWORD, build_cell
from sqlalchemy.orm import Session

from mes_core.client import AsyncMesClient, MesClient
from mes_core.quality.client import AsyncQualityClientMixin, QualityClientMixin


def _public(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("_")}


def test_async_mixin_has_every_method_of_the_sync_mixin() -> None:
    assert _public(QualityClientMixin) == _public(AsyncQualityClientMixin)


def test_both_clients_carry_the_mixins() -> None:
    for name in _public(QualityClientMixin):
        assert callable(getattr(MesClient, name))
        assert inspect.iscoroutinefunction(getattr(AsyncMesClient, name)), name


def test_async_client_reads_a_nonconformance_from_a_running_mes(
    session: Session, mes_url: str, admin: MesClient
) -> None:
    cell = build_cell(session)
    opened = admin.open_nonconformance("Dented preforms at goods-in", lots=[cell.preform_lot])

    async def run() -> tuple[list[str], list[str]]:
        async with AsyncMesClient(mes_url) as client:
            await client.login(cell.qa, QA_PASSWORD)
            listed = await client.nonconformances(state="open")
            nc = await client.get_nonconformance(opened.number)
            return [n.number for n in listed], nc.held_lots

    numbers, lots = asyncio.run(run())
    assert opened.number in numbers
    assert lots == [cell.preform_lot]
