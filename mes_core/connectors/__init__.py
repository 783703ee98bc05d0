"""mes_core.connectors."""
