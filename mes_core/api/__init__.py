"""mes_core.api."""
