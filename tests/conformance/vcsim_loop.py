"""A background helper that acts on vcsim at a steady pace until stopped (the nudge, the Tools player)."""

from __future__ import annotations

import threading
from typing import Any

from vcsim_server import Vcsim


class VcsimLoop:
    """Calls :meth:`step` every ``interval`` seconds on one session; a failing step is kept in ``errors``
    (a helper that died would look like a plugin hang), never raised."""

    name = "vcsim-loop"

    def __init__(self, server: Vcsim, interval: float) -> None:
        self.server = server
        self.interval = interval
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> Any:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def prepare(self, si: Any) -> None:
        """Once, before the first step."""

    def step(self, si: Any) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        from pyVim.connect import Disconnect

        si = self.server.connect()
        try:
            self.prepare(si)
            while not self._stop.wait(self.interval):
                try:
                    self.step(si)
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            Disconnect(si)
