"""Alembic environment of the MES (online mode only; offline SQL is not needed)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from alembic import context

import mes_core
from mes_core.persistence.base import Base
from mes_core.persistence.db import make_engine


def _import_models() -> None:
    """Import every ``models`` module of mes_core so autogenerate sees all tables."""
    for info in pkgutil.walk_packages(mes_core.__path__, "mes_core."):
        if info.name.endswith(".models"):
            importlib.import_module(info.name)


_import_models()
target_metadata = Base.metadata
url = context.config.get_main_option("sqlalchemy.url")
assert url is not None
engine = make_engine(url)
with engine.connect() as connection:
    # A part generating its own revision names its tables, so it never picks up others'.
    only: set[str] | None = context.config.attributes.get("only_tables")

    def include_object(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
        if only is None or type_ != "table":
            return True
        return name in only

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
