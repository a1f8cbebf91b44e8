"""Execute the teaching notebooks in place, so that they are committed with fresh outputs.

    python notebooks/execute.py            # all notebooks
    python notebooks/execute.py 01 02      # those whose name starts with 01 or 02

Each notebook must run top to bottom on a 2-core CPU in under 3 minutes (the tests check).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT = 600  # per cell


def execute(path: Path, *, write: bool = True) -> float:
    """Run ``path`` with a fresh kernel in its own folder; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(nb, path)
    return seconds


def main(argv: list[str]) -> None:
    books = sorted(HERE.glob("*.ipynb"))
    if argv:
        books = [b for b in books if any(b.name.startswith(a) for a in argv)]
    for book in books:
        print(f"{book.name}: {execute(book):.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
