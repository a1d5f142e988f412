"""The one retry helper: exponential backoff with jitter for transient faults.

Transient: a dropped or reset connection, HTTP 502/503/504, and the vSphere faults
GuestOperationsUnavailable, TaskInProgress and HostCommunication (see :mod:`.faults`); for
idempotent calls also SystemError, the server's own failure. A refused connection (a vCenter
restarting) is retried for up to ``outage_seconds`` (30 s) whatever the number of attempts.

Non-idempotent calls (a clone, a snapshot, starting a guest program) are marked by the
caller with ``idempotent=False``. For those, only failures that prove the server did
not act (a transient fault answer, a 5xx, a refused connection) are retried; a
connection that dropped after the request was sent leaves the outcome unknown, so
:class:`~.errors.OutcomeUnknown` is raised for the caller to look for the effect first.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from . import faults
from .errors import OutcomeUnknown, RetriesExhausted

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` counts the first try; delays grow as ``base_delay * 2**n`` up to
    ``max_delay``, each drawn at random from its upper half (jitter spreads xdist
    workers apart). ``deadline`` (seconds) caps the total time spent.
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    deadline: float | None = None
    #: How long refused connections (the vCenter down or restarting) are retried beyond ``attempts``.
    outage_seconds: float = 30.0

    def delay(self, retry_number: int) -> float:
        """Seconds to sleep before retry ``retry_number`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry_number))
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_POLICY = RetryPolicy()
#: Never retry (for calls whose caller retries at a higher level).
NO_RETRY = RetryPolicy(attempts=1, outage_seconds=0.0)


def retry_call(
    fn: Callable[..., T],
    *args: object,
    policy: RetryPolicy | None = None,
    idempotent: bool = True,
    what: str | None = None,
    extra_transient: tuple[type[BaseException], ...] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn(*args)``, retrying transient failures per ``policy``.

    Raises the original exception when it is not transient, :class:`RetriesExhausted`
    (chained to the last failure) when every attempt failed transiently, and
    :class:`OutcomeUnknown` when a non-idempotent call lost its connection.
    """
    policy = policy or DEFAULT_POLICY
    label = str(what or getattr(fn, "__name__", None) or "vSphere call")
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(*args)
        except Exception as exc:
            if not (faults.is_transient(exc, extra_transient) or (idempotent and faults.is_system_error(exc))):
                raise
            if not idempotent and faults.is_connection_error(exc) and not faults.request_not_sent(exc):
                raise OutcomeUnknown(label, faults.describe(exc)) from exc
            elapsed = time.monotonic() - started + policy.delay(attempt - 1)
            out_of_time = policy.deadline is not None and elapsed > policy.deadline
            # A refused connection proves nothing was done: wait a vCenter's restart out.
            riding_outage = faults.request_not_sent(exc) and elapsed <= policy.outage_seconds
            if (attempt >= policy.attempts and not riding_outage) or out_of_time:
                if policy.attempts <= 1:
                    raise
                raise RetriesExhausted(label, attempt, faults.describe(exc)) from exc
            pause = policy.delay(attempt - 1)
            log.info("%s failed transiently (%s); retry %d/%d in %.2f s", label, faults.describe(exc), attempt,
                     policy.attempts - 1, pause)
            sleep(pause)
