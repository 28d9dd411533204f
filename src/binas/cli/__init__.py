"""binas.cli."""
