"""The MES as a Sparkplug B host application (MQTT), beside its OPC UA connector."""
