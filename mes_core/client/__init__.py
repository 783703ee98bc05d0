"""mes_core.client."""
