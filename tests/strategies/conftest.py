"""Per-method options that make the generic strategy tests (tiny data, 2-3 epochs) run in seconds.

Each entry is `search.options` for that method (and `epochs`, the search key, where the method caps its
own schedule with it); methods not listed use their defaults.
"""

TINY_OPTIONS: dict[str, dict] = {
    "darts": {},
    "pc-darts": {"partial_channels": 2},
    "random": {"candidates_per_epoch": 2},
    "ddpnas": {"rounds_per_prune": 1, "epochs": 3},
    "cp-nas": {"rounds": 1, "train_steps": 1, "eval_batches": 1, "max_samples": 3},
    "bnas": {"rounds": 1, "train_steps": 1, "eval_batches": 1, "max_samples": 3},
    "dcp-nas": {},
}
