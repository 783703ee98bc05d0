"""mes_core.persistence."""
