"""When the client looks again: the pacing of waits that trades a little latency for fewer requests.

Each mechanism below is one name, with what it saves, what it costs and the benchmark that
shows it (``benchmarks/plugin_requests.py``: requests per clone lifecycle;
``benchmarks/phase_table.py``: phase times and the IP lag; figures in docs/performance.md).
The result files left for a guest's next command are client/leftovers.py's.

**Paced first look at a task** (:class:`TaskPace`, ``Waiter.wait_for_task(paced=...)``).
Saves: a request or two for most tasks of a kind (teardown's power-off and destroy): the first
look comes when nine in ten of this kind's recent tasks had ended, and it is one read of the
task itself (RetrievePropertiesEx of its ``info``), where following it through the waiter's
view costs a ModifyListView and a WaitForUpdatesEx for its appearing, another for its end
(and a third when the watched VM's own changes come first). A task still running at that look
was among the slowest of its kind and is read once more, :data:`SECOND_LOOK` of the pace later
(a pace drawn from a run's first few tasks is often short); one still running then is followed
through the view. The pace learns from each task's own duration as the server
reports it (``completeTime - queueTime``), not from the wait, which a late first look would
lengthen. Costs: up to that 90th percentile of latency (at most :data:`PACE_MAX`; about 0.2 s
more than the median for a power-off at the seeds' timings), and a read for a task that turns
out still running, so it is for waits where latency is cheap. Shown by: plugin_requests.py
(RetrievePropertiesEx, ModifyListView and WaitForUpdatesEx per lifecycle).

**One view for every task and watch** (client/collector_view.py). The tasks a waiter follows and the
VMs it watches are members of one ListView, under two filters (one per type) kept for the
collector's life. Saves: a CreateFilter and a DestroyPropertyFilter per task and per watch, for
one ModifyListView each; a finished task or a destroyed VM leaves the view with the next
member's ModifyListView, not by a request of its own. Costs: a CreateListView and two
CreateFilter once per collector. Shown by: plugin_requests.py (CreateFilter,
DestroyPropertyFilter and ModifyListView per lifecycle).

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

**The paced first look of discovery** (:class:`WaitingPace`). Discovery's default Linux command
says how long it waited in the guest for the address (its loop's ticks, on stderr); the pace
remembers that per kind of clone (template and clone type) and puts the first look of the next
such round at the shortest wait among the recent ones, not half a beat in: the looks before it
would find nothing. Later looks keep the beat, so an address that comes after that point is
known as before. Saves: the looks while a clone's DHCP runs (about 3 per second of it) for every
clone of a kind after the first. Costs: an address that comes sooner than every recent one of
its kind is known up to that much later (a new low is learned from that round on). Shown by:
plugin_requests.py (InitiateFileTransferFromGuest per lifecycle) and phase_table.py (IP lag).

**Process checks** (:class:`ResultLooks`, :data:`PROCESS_CHECK_FIRST`). While a result
file is awaited, ListProcessesInGuest asks whether the command still lives only after 4 s,
then at gaps doubling to 16 s. Saves: a ListProcessesInGuest per command (most end first;
0 per lifecycle). Costs: a command killed before it wrote its result fails after 4-16 s,
not at once. Shown by: plugin_requests.py (ListProcessesInGuest per lifecycle).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

#: How many recent tasks of one kind the pace remembers, the share of them that ended before a
#: first look, and the longest it puts a first look off (a kind that once took long must not
#: stall the waits after it).
PACE_WINDOW = 15
PACE_QUANTILE = 0.9
PACE_MAX = 10.0
#: When a paced task still running at its first look is read again, as a share of the pace.
SECOND_LOOK = 0.25
#: Seconds to the first look for a command's end, the pause after it, and the longest pause.
FIRST_LOOK, LOOK_START, LOOK_MAX = 0.03, 0.05, 0.5
#: The beat of looks for a command that waits in the guest (seconds).
WAITING_BEAT = 0.3
#: Seconds to the first process check of an awaited command, and the longest gap between checks.
PROCESS_CHECK_FIRST, PROCESS_CHECK_MAX = 4.0, 16.0


class TaskPace:
    """How long the recent tasks of each kind took: a wait's first look comes when nine in ten of
    them had ended (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def first_look(self, kind: str) -> float:
        """Seconds to wait before the first look at a new task of ``kind`` (0 while none was seen)."""
        with self._lock:
            seen = sorted(self._seen.get(kind, ()))
        if not seen:
            return 0.0
        return min(seen[max(0, math.ceil(PACE_QUANTILE * len(seen)) - 1)], PACE_MAX)

    def record(self, kind: str, seconds: float) -> None:
        """A task of ``kind`` took ``seconds`` (its own duration where the server reported it)."""
        with self._lock:
            self._seen.setdefault(kind, deque(maxlen=PACE_WINDOW)).append(seconds)


class WaitingPace:
    """How long recent discovery rounds of each kind waited in the guest for an address: the next
    round's first look comes at the shortest of them (see the module docstring). Shared by the
    clones of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def first_look(self, kind: str) -> float:
        """Seconds after a round's start for its first look (0 while no round of ``kind`` was seen)."""
        with self._lock:
            seen = self._seen.get(kind)
            return min(min(seen), PACE_MAX) if seen else 0.0

    def record(self, kind: str, waited: float) -> None:
        """A round of ``kind`` waited ``waited`` seconds in the guest before its address was there."""
        with self._lock:
            self._seen.setdefault(kind, deque(maxlen=PACE_WINDOW)).append(max(0.0, waited))


class ResultLooks:
    """When to look for one command's result file, and when to check its process (see the module
    docstring): on a fixed ``beat`` (a command that waits in the guest) or soon and then less and
    less often (``beat`` None). ``first_look``: no look before that many seconds (a paced wait)."""

    def __init__(self, beat: float | None, started: float, first_look: float = 0.0) -> None:
        self._beat = beat
        self._pause = LOOK_START
        #: When the next look is due (time.monotonic()).
        self.next_look = started + max(first_look, beat / 2 if beat else FIRST_LOOK)
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

