"""Console commands of this part (registered by ``mestwin.cli``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mestwin.cli import CommandGroups


def register(groups: CommandGroups) -> None:
    """Add this part's commands to the ``mestwin`` app (none yet)."""
