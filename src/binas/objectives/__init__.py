"""binas.objectives."""
