"""Regenerate ``_async.py`` from ``_sync.py`` (run after editing the sync client):
``python -m mes_core.client.gen_async``."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate(sync_source: str) -> str:
    s = sync_source
    head, body = s.split("class MesClient(QualityClientMixin):", 1)
    body = "class AsyncMesClient(AsyncQualityClientMixin):" + body
    head = head.replace("import QualityClientMixin", "import AsyncQualityClientMixin")
    body = body.split("    def stream_events(", 1)[0]
    head = head.replace(
        '"""The synchronous MES client (generated twin: ``_async.py``; keep both in step)."""',
        '"""The asynchronous MES client. GENERATED from ``_sync.py`` by ``gen_async.py``:\n'
        'edit the sync client, then run ``python -m mes_core.client.gen_async``."""',
    )
    head = head.replace(
        "from collections.abc import Iterator, Sequence",
        "from collections.abc import AsyncIterator, Sequence",
    )
    body = body.replace("httpx.Client(", "httpx.AsyncClient(")
    body = body.replace("httpx.BaseTransport", "httpx.AsyncBaseTransport")
    body = body.replace("Typed synchronous client", "Typed asynchronous client")
    body = body.replace("MesClient(url", "AsyncMesClient(url")
    body = body.replace("``AsyncMesClient(url).login(", "``await AsyncMesClient(url).login(")
    body = re.sub(r"\n    def (?!_headers|__init__)", "\n    async def ", body)
    body = body.replace(
        "async def __enter__(self) -> MesClient:", "async def __aenter__(self) -> AsyncMesClient:"
    )
    body = body.replace("async def __exit__(", "async def __aexit__(")
    body = body.replace("self.close()", "await self.close()")
    body = body.replace("self._http.close()", "await self._http.aclose()")
    body = body.replace("return self._call(", "return await self._call(")
    body = body.replace("\n        self._call(", "\n        await self._call(")
    body = body.replace("tok: TokenOut = self._call(", "tok: TokenOut = await self._call(")
    body = body.replace("response = self._http.request(", "response = await self._http.request(")
    body = body.replace("-> MesClient:", "-> AsyncMesClient:")
    body += '''    async def stream_events(
        self,
        *,
        after: int | None = None,
        last_event_id: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[ChangeEvent]:
        """Follow ``GET /api/v1/events/stream``: every change after ``after`` /
        ``last_event_id`` (default: from now on); stops after ``limit`` events if given."""
        headers = self._headers()
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
        async with self._http.stream(
            "GET", "/api/v1/events/stream", params=params, headers=headers, timeout=None
        ) as response:
            if not response.is_success:
                await response.aread()
                raise_for_response(response)
            data: list[str] = []
            async for line in response.aiter_lines():
                event = parse_sse_line(line, data)
                if event is not None:
                    yield event
'''
    return head + body


def main() -> None:
    (HERE / "_async.py").write_text(generate((HERE / "_sync.py").read_text()))


if __name__ == "__main__":
    main()
