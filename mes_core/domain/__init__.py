"""mes_core.domain."""
