"""Result files left in guests for the next command there to delete.

A guest command's result files (client/guest_ops.py) may be left behind once read: the next
command run in that guest deletes them in its own shell line as it starts, and a destroyed
VM takes the last ones with it.

- Saves: a DeleteFileInGuest per command (0 per clone lifecycle instead of 1 per discovery
  round and test command; ``benchmarks/plugin_requests.py``, docs/performance.md).
- Costs: the files stay in the guest's temp directory until the next command; a VM that
  outlives the run (kept) needs :meth:`GuestOperations.clean_up`, one DeleteFileInGuest each.

The record is the connection's (``VSphereConnection.leftover_files``), per VM: every
GuestOperations on that VM through the connection shares it, so whichever runs the next
command deletes them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class LeftoverFiles:
    """Per VM (by moref), the guest files left for the next command there to delete; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, list[str]] = {}

    def leave(self, moref: str, paths: Iterable[str]) -> None:
        """Leave ``paths`` in VM ``moref`` for its next command to delete."""
        with self._lock:
            self._files.setdefault(moref, []).extend(paths)

    def take(self, moref: str) -> list[str]:
        """The files left in VM ``moref``, no longer recorded: the caller deletes them (or leaves them again)."""
        with self._lock:
            return self._files.pop(moref, [])

    def left(self, moref: str) -> tuple[str, ...]:
        """The files left in VM ``moref``, still recorded."""
        with self._lock:
            return tuple(self._files.get(moref, ()))

    def forget(self, moref: str) -> None:
        """Drop the record of VM ``moref``'s files: it is being destroyed, and they with it."""
        with self._lock:
            self._files.pop(moref, None)
