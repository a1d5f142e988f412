"""EventHistoryCollector: a session's scrollable pages over the events its filter selects.

Made by EventManager.CreateCollectorForEvents (events.py), which also tells it of new events; it
reads the manager's kept history through its ``EventFilter`` and belongs to the session that made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import vmomi_method
from .event_filters import EventFilter, EventRecord, presented
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter
    from .events import EventManager

#: HistoryCollector pages: the default "viewable latest page" size and the largest page a read may ask for.
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000


class EventHistoryCollector(Unmodelled):
    """vim.event.EventHistoryCollector: a session's pages over the events its filter selects.

    The "scrollable view" is a cursor between event keys: ReadNextEvents reads forward from it,
    ReadPreviousEvents backward; RewindCollector puts it before the oldest event (the default),
    ResetCollector just before the latest page (HistoryCollector).
    """

    vim_type = vim.event.EventHistoryCollector

    def __init__(self, vc: VCenter, mo_id: str, manager: EventManager, spec: Any, session_key: str | None) -> None:
        super().__init__(vc, mo_id)
        self.manager = manager
        self.spec = spec
        self.check = EventFilter(vc, spec)
        self.session_key = session_key
        self.page_size = DEFAULT_PAGE_SIZE
        self.cursor = 0  # events with a key above it are "next", at or below it "previous"

    def matches(self, record: EventRecord) -> bool:
        return self.check(record)

    def _events(self) -> list[Any]:
        return [r.event for r in self.manager.history if self.check(r)]

    def _latest(self) -> list[Any]:
        return self._events()[-self.page_size:] if self.page_size else []

    def prop_filter(self) -> Any:
        return self.spec

    def prop_initialized(self) -> bool:
        return True  # the collector fills its page when it is created (EventFilterSpec.delayedInit unset)

    def prop_latestPage(self) -> list[Any]:
        return [presented(e, self.spec) for e in reversed(self._latest())]

    def _own(self, ctx: CallContext) -> None:
        # CreateCollectorForEvents: "Event collectors do not persist beyond the current client session."
        if self.session_key is not None and (ctx.session is None or ctx.session.key != self.session_key):
            raise vmodl.fault.ManagedObjectNotFound(msg="The object has already been deleted or has not been "
                                                        "completely created", obj=self.ref)

    @staticmethod
    def _count(count: int, what: str) -> int:
        if not 0 < count <= MAX_PAGE_SIZE:
            raise vmodl.fault.InvalidArgument(msg=f"{what} must be between 1 and {MAX_PAGE_SIZE}",
                                              invalidProperty="maxCount")
        return count

    @vmomi_method()
    def ReadNextEvents(self, ctx: CallContext, maxCount: int) -> list[Any]:
        with self.vc.lock:
            self._own(ctx)
            page = [e for e in self._events() if e.key > self.cursor][: self._count(maxCount, "maxCount")]
            if page:
                self.cursor = page[-1].key
            return [presented(e, self.spec) for e in page]

    @vmomi_method()
    def ReadPreviousEvents(self, ctx: CallContext, maxCount: int) -> list[Any]:
        with self.vc.lock:
            self._own(ctx)
            older = [e for e in self._events() if e.key <= self.cursor]
            page = older[-self._count(maxCount, "maxCount"):]
            if page:
                self.cursor = page[0].key - 1
            # readPrev: items come "from the newest item to the oldest item".
            return [presented(e, self.spec) for e in reversed(page)]

    @vmomi_method()
    def RewindCollector(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self._own(ctx)
            self.cursor = 0

    @vmomi_method()
    def ResetCollector(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self._own(ctx)
            latest = self._latest()
            events = self._events()
            self.cursor = latest[0].key - 1 if latest else (events[-1].key if events else 0)

    @vmomi_method()
    def SetCollectorPageSize(self, ctx: CallContext, maxCount: int) -> None:
        with self.vc.lock:
            self._own(ctx)
            if not 0 <= maxCount <= MAX_PAGE_SIZE:
                raise vmodl.fault.InvalidArgument(msg=f"maxCount must be between 0 and {MAX_PAGE_SIZE}",
                                                  invalidProperty="maxCount")
            self.page_size = maxCount
            self.changed()

    @vmomi_method()
    def DestroyCollector(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self._own(ctx)
            self.manager.collectors.discard(self)
            self.vc.remove(self)
