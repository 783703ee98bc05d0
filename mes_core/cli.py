"""Console commands of the MES core (registered by ``mestwin.cli``): ``db upgrade``,
``serve``, ``audit verify`` and ``mes-demo`` (``mestwin demo`` is the scenario runner's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def db_upgrade(
    revision: Annotated[str, typer.Argument(help="target revision")] = "heads",
) -> None:
    """Apply the database migrations (MESTWIN_DATABASE_URL)."""
    from mes_core.persistence.migrate import upgrade
    from mes_core.settings import get_settings

    url = get_settings().database_url
    upgrade(url, revision)
    typer.echo(f"database at {_safe(url)} is at {revision}")


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the MES API (migrating an empty database first)."""
    import uvicorn

    from mes_core.api.app import AdminPasswordRequired, create_app
    from mes_core.persistence.migrate import upgrade_if_empty
    from mes_core.settings import get_settings

    settings = get_settings()
    if upgrade_if_empty(settings.database_url):
        typer.echo(f"migrated the empty database at {_safe(settings.database_url)}")
    try:
        # Fail here, with a clear message, rather than in every worker.
        create_app(settings).state.engine.dispose()
    except AdminPasswordRequired as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        "mes_core.api.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def audit_verify() -> None:
    """Prove the audit trail's hash chain untouched, or name the first broken entry."""
    from mes_core.persistence import audit
    from mes_core.persistence.db import make_engine, make_session_factory
    from mes_core.settings import get_settings

    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            result = audit.verify(session)
    finally:
        engine.dispose()
    if result.ok:
        typer.echo(f"audit trail OK: {result.checked} entries, hash chain intact")
        return
    typer.echo(
        f"audit trail BROKEN at entry {result.broken_id}: {result.reason} "
        f"({result.checked} entries verified before it)",
        err=True,
    )
    raise typer.Exit(1)


def demo(
    data_dir: Annotated[
        str | None, typer.Option(help="folder for the demo database (default: a temp dir)")
    ] = None,
) -> None:
    """Run the MES end to end on SQLite: a demo plant, one job order through its routing,
    one refusal, the genealogy trace."""
    from mes_core.demo import run_demo

    raise typer.Exit(run_demo(data_dir))


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(groups: CommandGroups) -> None:
    """Add the MES core's commands to the ``mestwin`` app."""
    groups.db.command("upgrade")(db_upgrade)
    groups.audit.command("verify")(audit_verify)
    groups.root.command("serve")(serve)
    # ``mestwin demo`` is the main job (twin.scenario.cli); this walk-through stays.
    groups.root.command("mes-demo")(demo)
