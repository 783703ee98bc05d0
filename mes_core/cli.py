"""Console commands of the MES core (registered by ``mestwin.cli``): ``db upgrade``,
``serve``, ``audit verify`` and ``mes-demo`` (``mestwin demo`` is the scenario runner's)."""

from __future__ import annotations

from pathlib import Path
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


CheckpointsOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoints",
        help="file of signed chain heads (default MESTWIN_AUDIT_CHECKPOINTS)",
    ),
]


def audit_verify(checkpoints: CheckpointsOption = None) -> None:
    """Prove the audit trail's hash chain untouched, or name the first broken entry; with
    ``MESTWIN_AUDIT_KEY``, also that every entry is sealed with it (no one without the key
    recomputed the chain); with checkpoints (``--checkpoints`` or
    ``MESTWIN_AUDIT_CHECKPOINTS``), also that no checkpointed entry was cut or rewritten."""
    from mes_core.persistence import audit, audit_anchor
    from mes_core.persistence.db import make_engine, make_session_factory
    from mes_core.settings import get_settings

    settings = get_settings()
    path = checkpoints or settings.audit_checkpoints
    key = settings.audit_key.get_secret_value() if settings.audit_key else None
    engine = make_engine(settings.database_url, audit_key=key or "")
    try:
        with make_session_factory(engine)() as session:
            if path is None:
                result = audit.verify(session)
            else:
                result = audit_anchor.verify_anchored(session, path, key)
    finally:
        engine.dispose()
    if result.ok:
        anchored = f", anchored by {path}" if path is not None else " (no checkpoints given)"
        sealed = (
            f", {result.sealed} sealed with the audit key"
            if key
            else "; NOT sealed (no MESTWIN_AUDIT_KEY): anyone who can write the database "
            "could have recomputed it"
        )
        typer.echo(f"audit trail OK: {result.checked} entries, hash chain intact{anchored}{sealed}")
        return
    typer.echo(
        f"audit trail BROKEN at entry {result.broken_id}: {result.reason} "
        f"({result.checked} entries verified before it)",
        err=True,
    )
    raise typer.Exit(1)


def audit_checkpoint(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="file to append to (default MESTWIN_AUDIT_CHECKPOINTS)"),
    ] = None,
    adopt_unsealed: Annotated[
        bool,
        typer.Option(
            "--adopt-unsealed",
            help="once, on setting MESTWIN_AUDIT_KEY for a trail written without it: "
            "anchor its unsealed entries (their chain must hold)",
        ),
    ] = False,
) -> None:
    """Verify the audit trail and append its head, signed with MESTWIN_AUDIT_KEY, to a
    file outside the database (run it often: a timer)."""
    from mes_core.persistence import audit_anchor
    from mes_core.persistence.db import make_engine, make_session_factory
    from mes_core.settings import get_settings

    settings = get_settings()
    path = to or settings.audit_checkpoints
    if path is None:
        typer.echo("error: give --to or set MESTWIN_AUDIT_CHECKPOINTS", err=True)
        raise typer.Exit(2)
    key = settings.audit_key.get_secret_value() if settings.audit_key else None
    engine = make_engine(settings.database_url, audit_key=key or "")
    try:
        with make_session_factory(engine)() as session:
            point = audit_anchor.checkpoint(session, path, key, adopt_unsealed=adopt_unsealed)
    except audit_anchor.CheckpointRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    signed = "signed" if point.mac else "UNSIGNED (set MESTWIN_AUDIT_KEY)"
    typer.echo(f"checkpoint {point.last_id} {point.last_hash[:16]}... {signed} -> {path}")


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
    groups.audit.command("checkpoint")(audit_checkpoint)
    groups.root.command("serve")(serve)
    # ``mestwin demo`` is the main job (twin.scenario.cli); this walk-through stays.
    groups.root.command("mes-demo")(demo)
