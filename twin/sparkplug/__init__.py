"""The twin as Sparkplug B edge nodes (MQTT), beside its OPC UA server."""
