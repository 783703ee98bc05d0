"""Pure builders: typed view data (``dashboards.views``) in, Plotly figures or Dash components out.

Figures are plain dicts (Plotly's JSON figure schema) rather than ``go.Figure`` objects:
they cost nothing to build for a 200-unit plant, serialise as they are, and a live callback
can extend one trace of them with a ``dash.Patch`` by index. Tests check them against
Plotly's schema by loading them into ``go.Figure``.
"""

from __future__ import annotations

from typing import Any

#: A Plotly figure as its JSON dict (``{"data": [...], "layout": {...}}``).
Figure = dict[str, Any]
