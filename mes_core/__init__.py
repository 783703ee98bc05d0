"""mes_core."""
