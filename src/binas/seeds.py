"""`derive_seed`: one stable seed per named random stream (a data split, an epoch's shuffle, a rank).

Used by the data loaders and the engine alike, so every random stream of a run is derived one way.
"""

from __future__ import annotations

import hashlib

SEED_BITS = 63  # seeds fit a signed int64 (torch); numpy gets them reduced mod 2**32


def derive_seed(seed: int, *keys: int | str) -> int:
    """A stable seed for a sub-stream, e.g. ``derive_seed(seed, "epoch", 3)`` or ``(seed, "rank", 1)``.

    Uses BLAKE2b, not ``hash()``, so the value is the same in every process and Python session: an epoch
    re-run after ``--resume`` draws exactly the numbers it drew the first time.
    """
    text = "\x1f".join(f"{type(k).__name__}:{k}" for k in (seed, *keys))
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - SEED_BITS)
