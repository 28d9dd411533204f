"""binas.engine."""
