"""When the client looks again: the pacing of waits that trades a little latency for fewer requests.

Each mechanism below is one name, with what it saves, what it costs and the benchmark that
shows it (``benchmarks/plugin_requests.py``: requests per clone lifecycle;
``benchmarks/phase_table.py``: phase times and the IP lag; figures in docs/performance.md).
The result files left for a guest's next command are client/leftovers.py's.

**Paced first look at a task** (:class:`TaskPace`, ``Waiter.wait_for_task(paced=...)``).
Saves: a WaitForUpdatesEx for about half the tasks of a kind (teardown's power-off and
destroy): the first look comes when half of this kind's earlier waits had ended, so one
answer reports the task's start and end together, where an immediate look answers at once
(the task appearing is a change) and a second one waits for the end. Costs: up to the median
task time of latency (at most :data:`PACE_MAX`), so it is for waits where latency is cheap.
Shown by: plugin_requests.py (WaitForUpdatesEx per lifecycle).

**Looks for a command's result** (:class:`ResultLooks`, :data:`FIRST_LOOK`). Saves: a
Guest Operations round trip for most commands, which end within the first 30 ms; later looks
back off (x1.5 up to :data:`LOOK_MAX`). Costs: up to that pause of latency after a command
ended. Shown by: plugin_requests.py (InitiateFileTransferFromGuest per lifecycle).

**The fixed beat for commands that wait in the guest** (:data:`WAITING_BEAT`). Discovery's
command waits in the guest for an address; its result is looked for every beat from one
look's start to the next (the first half a beat in), so the address is known at most a beat,
a guest tick and one call after the guest has it, with the fewest looks for that bound (a
pause after each answer would add the call's own time). Costs: about three requests per
second of waiting. Shown by: phase_table.py (IP lag <= 0.5 s) and plugin_requests.py (the
looks while the guest's DHCP runs).

**Process checks** (:class:`ResultLooks`, :data:`PROCESS_CHECK_FIRST`). While a result
file is awaited, ListProcessesInGuest asks whether the command still lives only after 4 s,
then at gaps doubling to 16 s. Saves: a ListProcessesInGuest per command (most end first;
0 per lifecycle). Costs: a command killed before it wrote its result fails after 4-16 s,
not at once. Shown by: plugin_requests.py (ListProcessesInGuest per lifecycle).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

#: How many recent waits of one kind of task the pace remembers, and the longest it puts a
#: first look off (a kind that once took long must not stall the waits after it).
PACE_WINDOW = 15
PACE_MAX = 10.0
#: Seconds to the first look for a command's end, the pause after it, and the longest pause.
FIRST_LOOK, LOOK_START, LOOK_MAX = 0.03, 0.05, 0.5
#: The beat of looks for a command that waits in the guest (seconds).
WAITING_BEAT = 0.3
#: Seconds to the first process check of an awaited command, and the longest gap between checks.
PROCESS_CHECK_FIRST, PROCESS_CHECK_MAX = 4.0, 16.0


class TaskPace:
    """How long the waits for each kind of task took: a wait's first look comes when half of them
    had ended (see the module docstring).

    A wait whose first look found the task done records that look's time, an upper bound; so
    the pace settles at (or a little above) the median.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def first_look(self, kind: str) -> float:
        """Seconds to wait before the first look at a new task of ``kind`` (0 while none was seen)."""
        with self._lock:
            seen = self._seen.get(kind)
            return min(statistics.median(seen), PACE_MAX) if seen else 0.0

    def record(self, kind: str, seconds: float) -> None:
        """A wait for a task of ``kind`` took ``seconds``."""
        with self._lock:
            self._seen.setdefault(kind, deque(maxlen=PACE_WINDOW)).append(seconds)


class ResultLooks:
    """When to look for one command's result file, and when to check its process (see the module
    docstring): on a fixed ``beat`` (a command that waits in the guest) or soon and then less and
    less often (``beat`` None)."""

    def __init__(self, beat: float | None, started: float) -> None:
        self._beat = beat
        self._pause = LOOK_START
        #: When the next look is due (time.monotonic()).
        self.next_look = started + (beat / 2 if beat else FIRST_LOOK)
        self._check_gap = PROCESS_CHECK_FIRST
        self._next_check = started + self._check_gap

    def missed(self, look_started: float) -> None:
        """The look that began at ``look_started`` found no result: schedule the next."""
        if self._beat:
            self.next_look = look_started + self._beat
        else:
            self.next_look = time.monotonic() + self._pause
            self._pause = min(self._pause * 1.5, LOOK_MAX)

    def check_due(self, now: float) -> bool:
        """Whether the process should be checked now (and, if so, the next check scheduled)."""
        if now < self._next_check:
            return False
        self._check_gap = min(self._check_gap * 2, PROCESS_CHECK_MAX)
        self._next_check = now + self._check_gap
        return True
