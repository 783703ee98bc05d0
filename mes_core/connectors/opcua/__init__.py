"""mes_core.connectors.opcua."""
