"""Alembic, run programmatically (``mestwin db upgrade``; ``mestwin serve`` on an empty db).

Revisions live in ``mes_core/persistence/migrations/versions`` (ids ``0001_execution``...);
other parts of mes_core add theirs in ``mes_core/<part>/migrations/versions``, found here
automatically, each depending on the execution core's revisions.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from mes_core.persistence.db import make_engine

HERE = Path(__file__).resolve().parent
MES_CORE = HERE.parent


def alembic_config(url: str) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    locations = [str(HERE / "migrations" / "versions")]
    locations += sorted(
        str(p)
        for p in MES_CORE.glob("*/migrations/versions")
        if p.is_dir() and p != HERE / "migrations" / "versions"
    )
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply every migration up to ``revision`` (default: all heads)."""
    command.upgrade(alembic_config(url), revision)


def is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def upgrade_if_empty(url: str) -> bool:
    """Migrate an empty database (``mestwin serve``); True if it did."""
    engine = make_engine(url)
    try:
        if not is_empty(engine):
            return False
    finally:
        engine.dispose()
    upgrade(url)
    return True
