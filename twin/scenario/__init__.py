"""twin.scenario."""
