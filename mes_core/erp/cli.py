"""``mestwin erp import FILE`` and ``mestwin erp export``: the ERP exchange from a shell.

Without ``--mes-url`` the commands work on the database of ``MESTWIN_DATABASE_URL``
directly (migrated: ``mestwin db upgrade``); with it they call a running MES, authenticated
by ``--api-key`` / ``MESTWIN_API_KEY`` (an integration key) or ``--user`` and
``--password`` / ``MESTWIN_PASSWORD``. A refused document or call exits 1 with one line
naming the reason on stderr, never a traceback.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mes_core.erp.schemas import ImportOut
    from mestwin.cli import CommandGroups

MesUrl = Annotated[
    str | None, typer.Option("--mes-url", help="a running MES (default: the database directly)")
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar="MESTWIN_API_KEY", help="integration API key")
]
User = Annotated[str | None, typer.Option("--user", help="log in as this person instead")]
Password = Annotated[
    str | None, typer.Option("--password", envvar="MESTWIN_PASSWORD", help="with --user")
]


class _Refused(Exception):
    """A refusal to report in one line."""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(1)


def _client(url: str, api_key: str | None, user: str | None, password: str | None):  # type: ignore[no-untyped-def]
    from mes_core.client import MesClient

    if api_key:
        return MesClient(url, api_key=api_key)
    if user and password:
        return MesClient(url).login(user, password)
    raise _Refused("--mes-url needs --api-key (or MESTWIN_API_KEY), or --user and --password")


def _run(action: str, fn):  # type: ignore[no-untyped-def]
    """Run ``fn`` and turn every expected failure into one line and exit status 1."""
    import httpx
    from sqlalchemy.exc import SQLAlchemyError

    from mes_core.client.errors import MesClientError
    from mes_core.domain.errors import MesError

    try:
        return fn()
    except _Refused as exc:
        raise _fail(str(exc)) from None
    except MesError as exc:
        raise _fail(f"{action} refused ({exc.code}): {exc.message}") from None
    except MesClientError as exc:
        raise _fail(f"{action} refused ({exc.rule}, HTTP {exc.status}): {exc.message}") from None
    except httpx.HTTPError as exc:
        raise _fail(f"{action}: cannot reach the MES: {exc}") from None
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise _fail(
            f"{action}: database error ({first}); is it migrated (mestwin db upgrade)?"
        ) from None
    except OSError as exc:
        raise _fail(f"{action}: {exc.strerror or exc}: {exc.filename or ''}") from None


def _session():  # type: ignore[no-untyped-def]
    from mes_core.persistence.db import make_engine, make_session_factory
    from mes_core.settings import Settings

    engine = make_engine(Settings().database_url)
    # A writer: on SQLite the transaction takes the write lock first (see persistence/db.py).
    return make_session_factory(engine, write=True)()


def erp_import(
    file: Annotated[Path, typer.Argument(help="a B2MML ProcessOperationsSchedule XML file")],
    mes_url: MesUrl = None,
    api_key: ApiKey = None,
    user: User = None,
    password: Password = None,
) -> None:
    """Import a ProcessOperationsSchedule (OperationsType Production) into job orders."""

    def run() -> ImportOut:
        data = file.read_bytes()
        if mes_url:
            with _client(mes_url, api_key, user, password) as mes:
                out: ImportOut = mes.import_schedule(data)
                return out
        from mes_core.erp.schemas import ImportOut
        from mes_core.erp.service import import_schedule
        from mes_core.persistence.security import Actor

        with _session() as session:
            result = import_schedule(
                session, data, actor=Actor(name="cli:erp-import", roles=frozenset({"integration"}))
            )
            session.commit()
            return ImportOut.model_validate(result, from_attributes=True)

    out: ImportOut = _run(f"import of {file}", run)
    typer.echo(
        f"imported schedule {out.schedule_id}: {len(out.job_orders)} job orders "
        f"({', '.join(out.job_orders)}): {len(out.created)} created, "
        f"{len(out.released)} released, {len(out.unchanged)} unchanged"
    )


def erp_export(
    job_order: Annotated[
        list[str] | None, typer.Option("--job-order", help="export these (repeatable)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="completed at or after (ISO 8601 with offset)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write here (default: stdout)")] = None,
    mes_url: MesUrl = None,
    api_key: ApiKey = None,
    user: User = None,
    password: Password = None,
) -> None:
    """Export a ProcessOperationsPerformance of completed job orders (B2MML V0701)."""
    after: datetime | None = None
    if since is not None:
        try:
            after = datetime.fromisoformat(since)
        except ValueError:
            raise _fail(f"--since {since!r} is not an ISO 8601 date-time") from None
        if after.tzinfo is None:
            raise _fail("--since needs a time zone offset, e.g. 2026-03-02T00:00:00+00:00")

    def run() -> bytes:
        if mes_url:
            with _client(mes_url, api_key, user, password) as mes:
                return bytes(mes.export_performance(job_order or (), after))
        from mes_core.erp.service import export_performance
        from mes_core.persistence.security import Actor

        with _session() as session:
            document = export_performance(
                session,
                job_orders=job_order or (),
                since=after,
                actor=Actor(name="cli:erp-export", roles=frozenset({"integration"})),
            )
            session.commit()
            return document

    document: bytes = _run("export", run)
    if out is None:
        typer.echo(document.decode("utf-8"), nl=False)
    else:
        _run(f"writing {out}", lambda: out.write_bytes(document))
        typer.echo(f"wrote {out} ({len(document)} bytes)", err=True)


def register(groups: CommandGroups) -> None:
    """Add ``erp import`` and ``erp export`` to the ``mestwin`` app."""
    groups.erp.command("import")(erp_import)
    groups.erp.command("export")(erp_export)
