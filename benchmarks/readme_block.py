"""Write a benchmark's generated block into README.md, between its begin/end markers (the scripts' `--readme`)."""

from __future__ import annotations

from pathlib import Path


def write_block(readme: Path, begin: str, end: str, body: str) -> None:
    """Replace what lies between `begin` and `end` in `readme` by `body`; exit naming the markers if absent."""
    text = readme.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{readme} has no {begin} ... {end} block to fill")
    head, rest = text.split(begin, 1)
    readme.write_text(f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}")
    print(f"updated {readme}")
