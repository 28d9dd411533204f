"""binas.config."""
