"""binas.space."""
