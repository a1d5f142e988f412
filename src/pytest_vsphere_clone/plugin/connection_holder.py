"""This process's one vSphere session and one Waiter, opened on first use, and its discovery pace."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..client.pacing import WaitingPace
    from ..client.session import VSphereConnection
    from ..client.waiter import Waiter
    from .settings import Settings


class ConnectionHolder:
    """Opens the session lazily (a run whose tests use no clone never logs in) and closes it once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: VSphereConnection | None = None
        self._waiter: Waiter | None = None
        self._discovery_pace: WaitingPace | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, conn: VSphereConnection, settings: Settings) -> ConnectionHolder:
        """A holder of a connection opened elsewhere (it is closed with the holder)."""
        holder = cls(settings)
        holder._conn = conn
        return holder

    def connection(self) -> VSphereConnection:
        """The session, opened on first use (a usage error when no vCenter is configured)."""
        with self._lock:
            if self._conn is None:
                from ..client.session import VSphereConnection

                s = self.settings
                if not s.host or not s.user:
                    raise pytest.UsageError("set --vsphere-host and --vsphere-user (or use --vsphere-simulator)")
                self._conn = VSphereConnection(s.host, s.user, s.password or "", insecure=s.insecure,
                                               ca_bundle=s.ca_bundle, timeout=max(60.0, s.connect_timeout),
                                               connect_timeout=s.connect_timeout).connect()
            return self._conn

    def waiter(self) -> Waiter:
        """The process's one Waiter: one PropertyCollector for every task and property wait."""
        if self._waiter is None:
            from ..client.waiter import Waiter

            self._waiter = Waiter(self.connection())
        return self._waiter

    def discovery_pace(self) -> WaitingPace:
        """How long this process's recent clones waited for their addresses (client/pacing.py)."""
        if self._discovery_pace is None:
            from ..client.pacing import WaitingPace

            self._discovery_pace = WaitingPace()
        return self._discovery_pace

    def close(self) -> None:
        """Destroy the collector and log out (idempotent)."""
        if self._waiter is not None:
            self._waiter.close()
            self._waiter = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
