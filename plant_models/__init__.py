"""plant_models."""
