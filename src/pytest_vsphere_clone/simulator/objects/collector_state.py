"""What each session's property collector remembers: its filters, and the versions it has answered.

A version names what the client knew after one answer (a ``Snapshot``: per filter, per object, the
object version, property fingerprints and reference), so the next WaitForUpdatesEx computes the
changes since then, whichever earlier version it passes. Kept versions are bounded (``KEPT_VERSIONS``)
and a truncated one lives only for the call right after it, as the API reference says.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from ..soap import API_VERSION
from .base import SimObject
from .property_reading import read_path

# The serializer writes nothing for a field without a version, so name one.
_VALUE_INFO = VmomiSupport.Object(name="val", type=object, version=API_VERSION, flags=0)


def fingerprint(value: Any) -> str:
    """A comparable form of a value: its SOAP text."""
    if value is None:
        return ""
    return SoapAdapter.SerializeToStr(value, _VALUE_INFO, API_VERSION)


#: What a client was told about one object: (object version, path -> fingerprint, reference).
Entry = tuple[int, dict[str, str], Any]
#: What a client knows after one answer: filter id -> mo_id -> entry.
Snapshot = dict[str, dict[str, Entry]]

#: How many answered versions a session's collector keeps, least recently used dropped first.
#: The API documents every non-truncated version ever returned as valid, which no real
#: collector can keep forever; a vCenter answers an expired one with InvalidCollectorVersion.
#: A snapshot is one small dict per filter whose entries (immutable tuples) are shared with
#: the snapshots around it - a few pointers per watched object - so a window this size is
#: cheap; it is large enough that threads sharing one session's collector (pyVim's WaitForTask
#: in a thread pool) never lose the version they are about to pass back, since a version is
#: refreshed each time it is used.
KEPT_VERSIONS = 64


@dataclass
class FilterState:
    """One filter of a session: its spec, and what it needs to report as the server would."""

    spec: Any
    partial_updates: bool
    #: Without recentTask notifications: each entity's recentTask as the filter first saw it.
    recent_tasks: dict[str, Any] = field(default_factory=dict)

    def quiet_reader(self) -> Callable[[SimObject, str], Any]:
        """A path reader for which a ManagedEntity's recentTask never changes after its first read.

        Models a server that generates no update notifications for ManagedEntity.recentTask
        (allowed by the API reference, see VCenterOptions.recent_task_updates): a traversal
        through it reaches the tasks it reached when the filter first looked, and no later ones.
        """

        def read(obj: SimObject, path: str) -> Any:
            value = read_path(obj, path)
            if is_recent_task(obj, path):
                return self.recent_tasks.setdefault(obj.mo_id, value)
            return value

        return read


def is_recent_task(obj: SimObject, path: str) -> bool:
    """Whether ``path`` is (in) a ManagedEntity's recentTask."""
    return (path == "recentTask" or path.startswith("recentTask.")) and isinstance(obj.ref, vim.ManagedEntity)


@dataclass
class _Version:
    snapshot: Snapshot
    #: A truncated (partial) answer of WaitForUpdatesEx: usable only by the next call, see resolve().
    truncated: bool = False


@dataclass
class CollectorState:
    """One session's view of one property collector."""

    filters: dict[str, FilterState] = field(default_factory=dict)
    #: The last version number handed out; versions are "1", "2", ... per session and collector.
    counter: int = 0
    #: Answered version -> what the client knew after it (most recently used last).
    versions: OrderedDict[str, _Version] = field(default_factory=OrderedDict)
    #: token -> (objects not yet returned, the page size the retrieval asked for)
    pending_results: dict[str, tuple[list[Any], int]] = field(default_factory=dict)
    cancel_wait: bool = False

    def resolve(self, version: str | None, legacy: bool) -> Snapshot:
        """What the client knew at ``version`` (empty for the initial version) or InvalidCollectorVersion.

        Per the API reference a truncated version is valid only for the WaitForUpdatesEx call
        right after the one that returned it, and never for WaitForUpdates/CheckForUpdates;
        any call with another version therefore retires it.
        """
        known = self.versions.get(version) if version else None
        for name in [n for n, v in self.versions.items() if v.truncated and (legacy or n != version)]:
            del self.versions[name]
        if not version:
            return {}
        if known is None or (legacy and known.truncated):
            raise vmodl.query.InvalidCollectorVersion(
                msg=f"Collector version '{version}' is out of date or invalid")
        self.versions.move_to_end(version)
        return known.snapshot

    def remember(self, snapshot: Snapshot, truncated: bool) -> str:
        """Keep ``snapshot`` under a new version and return the version's name."""
        self.counter += 1
        name = str(self.counter)
        live = {fid: entries for fid, entries in snapshot.items() if fid in self.filters}
        # This answer is now the last one: an earlier partial version may not be continued.
        for old in [n for n, v in self.versions.items() if v.truncated]:
            del self.versions[old]
        self.versions[name] = _Version(live, truncated)
        while len(self.versions) > KEPT_VERSIONS:
            self.versions.popitem(last=False)
        return name
