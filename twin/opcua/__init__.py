"""twin.opcua."""
