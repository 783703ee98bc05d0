"""mes_core.erp."""
