"""One asyncio loop thread per GuestHost: child-exit watching, backdoor sockets, link events.

Everything asynchronous the guests need shares this single thread, so a guest costs
no thread of its own; blocking work (simulator callbacks, ``ip`` commands) goes to
the loop's executor.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._pidfds: dict[int, int] = {}  # pidfd -> pid, touched only in the loop thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop.run_forever, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and release what it watched; safe to call twice."""
        if self._thread is None:
            return
        self.run(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self._thread = None
        self.loop.close()

    async def _shutdown(self) -> None:
        for pidfd in list(self._pidfds):
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
        self._pidfds.clear()
        await self.loop.shutdown_default_executor()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., object], *args: object) -> None:
        """Call ``fn(*args)`` in the loop thread, soon."""
        self.loop.call_soon_threadsafe(fn, *args)

    def watch_exit(self, proc: subprocess.Popen[Any], on_exit: Callable[[int], None]) -> None:
        """Reap ``proc`` as soon as it exits and call ``on_exit(returncode)`` in the loop thread.

        A pidfd becomes readable when the process exits, so no thread waits per child.
        Must be called before anyone else reaps ``proc``.
        """
        pidfd = os.pidfd_open(proc.pid)

        def exited() -> None:
            if self._pidfds.pop(pidfd, None) is None:
                return
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
            on_exit(proc.wait())

        def register() -> None:
            self._pidfds[pidfd] = proc.pid
            self.loop.add_reader(pidfd, exited)

        self.call(register)
