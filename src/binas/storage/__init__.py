"""Safe files: atomic writes, plain JSON, validated checkpoints (below every other layer but errors)."""
