"""Writing or checking a docs page generated from the code (docs/gen_settings.py, docs/gen_cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(page: Path, text: str, script: str) -> int:
    """Write ``text`` to ``page``; with ``--check`` on the command line, exit status 1 if it differs."""
    if "--check" in sys.argv:
        if not page.exists() or page.read_text() != text:
            print(f"{page} is out of date: run python docs/{script}", file=sys.stderr)
            return 1
        return 0
    page.write_text(text)
    return 0
