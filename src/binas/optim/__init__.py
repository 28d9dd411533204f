"""binas.optim."""
