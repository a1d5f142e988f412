"""PropertyCollector: RetrievePropertiesEx, filters and WaitForUpdatesEx with real versions.

Filters and their versions belong to a session, as on a vCenter: many clients
may share the well-known ``propertyCollector`` reference without seeing each
other's filters.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from ..soap import API_VERSION
from .base import SimObject, vmomi_method

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter

PC = vmodl.query.PropertyCollector
# The serializer writes nothing for a field without a version, so name one.
_VALUE_INFO = VmomiSupport.Object(name="val", type=object, version=API_VERSION, flags=0)


def _invalid_property(path: str) -> vmodl.query.InvalidProperty:
    return vmodl.query.InvalidProperty(msg=f"Property '{path}' is not valid", name=path)


def _declared_type(obj: SimObject, name: str) -> Any:
    for klass in obj.vim_type.__mro__:
        info = getattr(klass, "_propInfo", {}).get(name)
        if info is not None:
            return info.type
    raise _invalid_property(name)


def _typed(value: Any, declared: Any) -> Any:
    """Give plain Python lists the pyVmomi array type the serializer needs, plain strings their enum type.

    An enum value is sent typed by its enum, as a vCenter does (<val xsi:type="VirtualMachinePowerState">),
    not as xsd:string.
    """
    if isinstance(value, list) and not hasattr(value, "Item") and issubclass(declared, list):
        return declared(value)
    if isinstance(value, str) and not isinstance(value, VmomiSupport.Enum) and issubclass(declared, VmomiSupport.Enum):
        return declared(value)
    return value


def read_path(obj: SimObject, path: str) -> Any:
    """The value at a property path such as ``runtime.powerState`` (None when unset)."""
    top, _, rest = path.partition(".")
    declared = _declared_type(obj, top)
    value = _typed(obj.get_property(top), declared)
    for part in rest.split(".") if rest else ():
        if value is None:
            return None
        if not isinstance(value, VmomiSupport.DataObject):
            raise _invalid_property(path)
        try:
            info = value._GetPropertyInfo(part)
        except AttributeError:
            raise _invalid_property(path) from None
        # Arrays built from plain lists inside data objects need their pyVmomi type to be sent as anyType.
        value = _typed(getattr(value, part), info.type)
    return value


def property_type(obj: SimObject, path: str) -> Any:
    """The declared pyVmomi type at ``path`` (for answering a Fetch)."""
    top, _, rest = path.partition(".")
    kind = _declared_type(obj, top)
    for part in rest.split(".") if rest else ():
        item = kind.Item if issubclass(kind, list) else kind
        kind = item._GetPropertyInfo(part).type
    return kind


def _is_set(value: Any) -> bool:
    # An empty array is a value: vCenter sends <val xsi:type="ArrayOfManagedObjectReference"></val>
    # for a VM's empty rootSnapshot (recorded in govmomi #1065); only an unset property is left out.
    return value is not None


def _fingerprint(value: Any) -> str:
    """A comparable form of a value: its SOAP text."""
    if value is None:
        return ""
    return SoapAdapter.SerializeToStr(value, _VALUE_INFO, API_VERSION)


def _refs(value: Any) -> Iterator[Any]:
    # pyVmomi has no vmodl.ManagedObject attribute: the base class lives in VmomiSupport.
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, VmomiSupport.ManagedObject):
                yield item
    elif isinstance(value, VmomiSupport.ManagedObject):
        yield value


@dataclass
class _Selection:
    objects: list[SimObject]
    missing: list[Any]


def select_objects(vc: VCenter, spec: Any, strict: bool,
                   read: Callable[[SimObject, str], Any] = read_path) -> _Selection:
    """The objects a FilterSpec's objectSet and traversal specs reach, in order, without duplicates.

    ``read`` reads a traversal's path (a filter's updates pass one that hides what the server
    does not notify).
    """
    named: dict[str, Any] = {}

    def collect_names(selects: Iterable[Any]) -> None:
        for sel in selects or ():
            if isinstance(sel, PC.TraversalSpec):
                if sel.name and sel.name not in named:
                    named[sel.name] = sel
                    collect_names(sel.selectSet)
                elif not sel.name:
                    collect_names(sel.selectSet)

    for object_spec in spec.objectSet or ():
        collect_names(object_spec.selectSet)

    found: dict[str, SimObject] = {}
    missing: list[Any] = []
    visited: set[tuple[int, str]] = set()

    def traverse(obj: SimObject, selects: Iterable[Any]) -> None:
        for sel in selects or ():
            traversal = sel if isinstance(sel, PC.TraversalSpec) else named.get(sel.name)
            if traversal is None:
                raise vmodl.fault.InvalidArgument(msg=f"SelectionSpec '{sel.name}' names no TraversalSpec",
                                                  invalidProperty="selectSet")
            if not isinstance(obj.ref, traversal.type):
                continue
            key = (id(traversal), obj.mo_id)
            if key in visited:
                continue
            visited.add(key)
            for ref in _refs(read(obj, traversal.path)):
                child = vc.objects.get(ref._moId)
                if child is None:
                    continue
                if not traversal.skip:
                    found.setdefault(child.mo_id, child)
                traverse(child, traversal.selectSet)

    for object_spec in spec.objectSet or ():
        try:
            start = vc.lookup(object_spec.obj)
        except vmodl.fault.ManagedObjectNotFound:
            if strict and not spec.reportMissingObjectsInResults:
                raise
            missing.append(object_spec.obj)
            continue
        if not object_spec.skip:
            found.setdefault(start.mo_id, start)
        traverse(start, object_spec.selectSet)
    return _Selection(list(found.values()), missing)


def reported_objects(objects: list[SimObject], prop_specs: Iterable[Any]) -> list[SimObject]:
    """The selected objects a PropertySpec names the type of: a vCenter leaves out the others."""
    types = tuple(prop_spec.type for prop_spec in prop_specs or ())
    return [obj for obj in objects if isinstance(obj.ref, types)]


def wanted_paths(obj: SimObject, prop_specs: Iterable[Any]) -> list[str]:
    """The property paths the spec asks for on ``obj``."""
    paths: list[str] = []
    for prop_spec in prop_specs or ():
        if not isinstance(obj.ref, prop_spec.type):
            continue
        names = obj.property_names() if prop_spec.all else list(prop_spec.pathSet or ())
        for name in names:
            if name not in paths:
                paths.append(name)
    return paths


def read_properties(obj: SimObject, paths: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """Values of ``paths`` on ``obj`` (unset ones left out) and MissingProperty entries."""
    values: dict[str, Any] = {}
    missing: list[Any] = []
    for path in paths:
        try:
            value = read_path(obj, path)
        except vmodl.query.InvalidProperty:
            raise
        except vmodl.MethodFault as fault:
            missing.append(vmodl.query.PropertyCollector.MissingProperty(path=path, fault=fault))
            continue
        if _is_set(value):
            values[path] = value
    return values, missing


def _object_content(obj: SimObject, values: dict[str, Any], missing: list[Any]) -> Any:
    return PC.ObjectContent(
        obj=obj.ref,
        propSet=[vmodl.DynamicProperty(name=name, val=value) for name, value in values.items()],
        missingSet=missing,
    )


#: What a client was told about one object: (object version, path -> fingerprint, reference).
_Entry = tuple[int, dict[str, str], Any]
#: What a client knows after one answer: filter id -> mo_id -> entry.
_Snapshot = dict[str, dict[str, _Entry]]

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
class _FilterState:
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
            if _is_recent_task(obj, path):
                return self.recent_tasks.setdefault(obj.mo_id, value)
            return value

        return read


def _is_recent_task(obj: SimObject, path: str) -> bool:
    return (path == "recentTask" or path.startswith("recentTask.")) and isinstance(obj.ref, vim.ManagedEntity)


@dataclass
class _Version:
    snapshot: _Snapshot
    #: A truncated (partial) answer of WaitForUpdatesEx: usable only by the next call, see resolve().
    truncated: bool = False


@dataclass
class _CollectorState:
    """One session's view of one property collector."""

    filters: dict[str, _FilterState] = field(default_factory=dict)
    #: The last version number handed out; versions are "1", "2", ... per session and collector.
    counter: int = 0
    #: Answered version -> what the client knew after it (most recently used last).
    versions: OrderedDict[str, _Version] = field(default_factory=OrderedDict)
    #: token -> (objects not yet returned, the page size the retrieval asked for)
    pending_results: dict[str, tuple[list[Any], int]] = field(default_factory=dict)
    cancel_wait: bool = False

    def resolve(self, version: str | None, legacy: bool) -> _Snapshot:
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

    def remember(self, snapshot: _Snapshot, truncated: bool) -> str:
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


class PropertyFilter(SimObject):
    """A vmodl.query.PropertyCollector.Filter created by CreateFilter."""

    vim_type = PC.Filter

    def __init__(self, vc: VCenter, mo_id: str, collector: PropertyCollector, session_key: str,
                 spec: Any, partial_updates: bool) -> None:
        super().__init__(vc, mo_id)
        self.collector = collector
        self.session_key = session_key
        self.props.update(spec=spec, partialUpdates=partial_updates)

    @vmomi_method()
    def DestroyPropertyFilter(self, ctx: CallContext) -> None:
        with self.vc.lock:
            if ctx.session is None or ctx.session.key != self.session_key:
                # Another session's filter does not exist for this caller, as on a vCenter.
                raise vmodl.fault.ManagedObjectNotFound(msg="The object has already been deleted or has not been "
                                                            "completely created", obj=self.ref)
            self.collector.drop_filter(self)


class PropertyCollector(SimObject):
    """vmodl.query.PropertyCollector."""

    vim_type = PC
    _tokens = itertools.count(1)

    def __init__(self, vc: VCenter, mo_id: str, owner_session: str | None = None) -> None:
        super().__init__(vc, mo_id)
        self.owner_session = owner_session
        self.states: dict[str, _CollectorState] = {}

    def state(self, ctx: CallContext) -> _CollectorState:
        assert ctx.session is not None
        return self.states.setdefault(ctx.session.key, _CollectorState())

    def prop_filter(self) -> list[Any]:
        # Only the calling session's filters: sessions share this collector but not their filters.
        ctx = self.vc.current_context()
        key = ctx.session.key if ctx is not None and ctx.session is not None else None
        return [f.ref for f in self.vc.of_type(PropertyFilter) if f.collector is self and f.session_key == key]

    def drop_filter(self, flt: PropertyFilter) -> None:
        state = self.states.get(flt.session_key)
        if state is not None:
            state.filters.pop(flt.mo_id, None)
            # Kept versions must not hold on to what a destroyed filter once reported.
            for kept in state.versions.values():
                kept.snapshot.pop(flt.mo_id, None)
        self.vc.remove(flt)

    # --- retrieval -------------------------------------------------------------------

    def _retrieve(self, spec_set: list[Any]) -> list[Any]:
        contents: dict[str, tuple[SimObject, dict[str, Any], list[Any]]] = {}
        for spec in spec_set:
            # Missing objects (reportMissingObjectsInResults) are simply omitted from a retrieval.
            selection = select_objects(self.vc, spec, strict=True)
            for obj in reported_objects(selection.objects, spec.propSet):
                paths = wanted_paths(obj, spec.propSet)
                values, missing = read_properties(obj, paths)
                if obj.mo_id in contents:
                    contents[obj.mo_id][1].update(values)
                    contents[obj.mo_id][2].extend(missing)
                else:
                    contents[obj.mo_id] = (obj, values, missing)
        return [_object_content(obj, values, missing) for obj, values, missing in contents.values()]

    def _page(self, ctx: CallContext, objects: list[Any], max_objects: int | None) -> Any:
        if not objects:
            return None
        if max_objects and len(objects) > max_objects:
            token = str(next(self._tokens))
            self.state(ctx).pending_results[token] = (objects[max_objects:], max_objects)
            return PC.RetrieveResult(token=token, objects=objects[:max_objects])
        return PC.RetrieveResult(objects=objects)

    @vmomi_method()
    def RetrievePropertiesEx(self, ctx: CallContext, specSet: list[Any], options: Any) -> Any:
        with self.vc.lock:
            objects = self._retrieve(specSet)
            return self._page(ctx, objects, options.maxObjects if options else None)

    @vmomi_method()
    def ContinueRetrievePropertiesEx(self, ctx: CallContext, token: str) -> Any:
        with self.vc.lock:
            pending = self.state(ctx).pending_results.pop(token, None)
            if pending is None:
                raise vmodl.fault.InvalidArgument(msg=f"Unknown token {token}", invalidProperty="token")
            # The page size of the first call holds for every continuation.
            objects, page_size = pending
            return self._page(ctx, objects, page_size)

    @vmomi_method()
    def CancelRetrievePropertiesEx(self, ctx: CallContext, token: str) -> None:
        with self.vc.lock:
            self.state(ctx).pending_results.pop(token, None)

    @vmomi_method()
    def RetrieveContents(self, ctx: CallContext, specSet: list[Any]) -> list[Any]:
        with self.vc.lock:
            return self._retrieve(specSet)

    # --- filters and updates ----------------------------------------------------------

    @vmomi_method()
    def CreateFilter(self, ctx: CallContext, spec: Any, partialUpdates: bool) -> Any:
        with self.vc.lock:
            select_objects(self.vc, spec, strict=True)  # validate now, as a vCenter does
            for prop_spec in spec.propSet or ():
                for path in prop_spec.pathSet or ():
                    _declared_type_for_type(prop_spec.type, path.partition(".")[0])
            assert ctx.session is not None
            flt = PropertyFilter(self.vc, self.vc.new_id("session[filter]"), self, ctx.session.key, spec,
                                 partialUpdates)
            self.vc.add(flt)
            self.state(ctx).filters[flt.mo_id] = _FilterState(spec, partialUpdates)
            return flt.ref

    @vmomi_method()
    def CreatePropertyCollector(self, ctx: CallContext) -> Any:
        with self.vc.lock:
            collector = PropertyCollector(self.vc, self.vc.new_id("session[pc]"),
                                          ctx.session.key if ctx.session else None)
            self.vc.add(collector)
            return collector.ref

    @vmomi_method()
    def DestroyPropertyCollector(self, ctx: CallContext) -> None:
        with self.vc.lock:
            if self.owner_session is None:
                raise vmodl.fault.NotSupported(msg="The session's default property collector cannot be destroyed")
            for flt in [f for f in self.vc.of_type(PropertyFilter) if f.collector is self]:
                self.drop_filter(flt)
            self.vc.remove(self)

    @vmomi_method()
    def CancelWaitForUpdates(self, ctx: CallContext) -> None:
        with self.vc.lock:
            self.state(ctx).cancel_wait = True
            self.vc.updated.notify_all()

    @vmomi_method()
    def CheckForUpdates(self, ctx: CallContext, version: str | None = None) -> Any:
        return self._wait(ctx, version, 0.0, None, legacy=True)

    @vmomi_method()
    def WaitForUpdates(self, ctx: CallContext, version: str | None = None) -> Any:
        return self._wait(ctx, version, None, None, legacy=True)

    @vmomi_method()
    def WaitForUpdatesEx(self, ctx: CallContext, version: str | None = None, options: Any = None) -> Any:
        max_wait = options.maxWaitSeconds if options is not None else None
        max_updates = options.maxObjectUpdates if options is not None else None
        # Both limits are documented as illegal out of range; a vCenter refuses them up front.
        if max_wait is not None and max_wait < 0:
            raise vmodl.fault.InvalidArgument(msg="maxWaitSeconds must not be negative",
                                              invalidProperty="maxWaitSeconds")
        if max_updates is not None and max_updates <= 0:
            raise vmodl.fault.InvalidArgument(msg="maxObjectUpdates must be positive",
                                              invalidProperty="maxObjectUpdates")
        return self._wait(ctx, version, max_wait, max_updates, legacy=False)

    def _wait(self, ctx: CallContext, version: str | None, max_wait: float | None,
              max_updates: int | None, *, legacy: bool) -> Any:
        """Changes since ``version`` (everything for the initial version ""), waiting up to ``max_wait``.

        The answer is computed against what the client knew at ``version``, not against
        the collector's last answer: passing the same version twice gets the same changes
        twice, as on a vCenter, and concurrent waits on one collector do not steal each
        other's news.
        """
        vc = self.vc
        deadline = None if max_wait is None else time.monotonic() + max_wait
        with vc.lock:
            state = self.state(ctx)
            base = state.resolve(version, legacy)
            # A private copy per call: entries are replaced, never edited, so sharing them is safe.
            known: _Snapshot = {fid: dict(entries) for fid, entries in base.items()}
            state.cancel_wait = False
            while True:
                filter_updates, truncated = self._updates(state, known, max_updates)
                if filter_updates:
                    name = state.remember(known, truncated)
                    return vmodl.query.PropertyCollector.UpdateSet(
                        version=name, filterSet=filter_updates, truncated=truncated)
                if state.cancel_wait:
                    state.cancel_wait = False
                    raise vmodl.fault.RequestCanceled(msg="WaitForUpdates was cancelled")
                if vc.closed:
                    raise vmodl.fault.SystemError(msg="The server is shutting down", reason="shutdown")
                if ctx.session is not None and vc.sessions.peek(ctx.session.key) is None:
                    raise vim.fault.NotAuthenticated(msg="The session is not authenticated.")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                # Wake at least once a second to notice logout, expiry and shutdown.
                vc.updated.wait(1.0 if remaining is None else min(remaining, 1.0))

    def _updates(self, state: _CollectorState, known: _Snapshot,
                 max_updates: int | None) -> tuple[list[Any], bool]:
        """The filter updates from ``known`` to now; ``known`` is brought up to what they report.

        With ``max_updates`` the calculation stops before the first object update over the
        budget and says so (truncated): objects not yet reported keep their old entries in
        ``known``, so the next call with the partial version carries on where this one stopped.
        """
        result: list[Any] = []
        budget = max_updates
        truncated = False
        for filter_id, flt in state.filters.items():
            if truncated:
                break
            reported = known.setdefault(filter_id, {})
            object_updates: list[Any] = []
            quiet = not self.vc.options.recent_task_updates
            selection = select_objects(self.vc, flt.spec, strict=False,
                                       read=flt.quiet_reader() if quiet else read_path)
            objects = reported_objects(selection.objects, flt.spec.propSet)
            current = {obj.mo_id for obj in objects}
            pending: list[tuple[str, Any, _Entry | None]] = []
            for obj in objects:
                update, entry = self._object_update(flt, obj, reported.get(obj.mo_id), quiet)
                if update is None:
                    reported[obj.mo_id] = entry  # same values, newer object version: a cheaper next check
                else:
                    pending.append((obj.mo_id, update, entry))
            for mo_id in [m for m in reported if m not in current]:
                pending.append((mo_id, PC.ObjectUpdate(kind="leave", obj=reported[mo_id][2]), None))
            for mo_id, update, new_entry in pending:
                if budget is not None and budget <= 0:
                    truncated = True
                    break
                object_updates.append(update)
                if new_entry is None:
                    del reported[mo_id]
                else:
                    reported[mo_id] = new_entry
                if budget is not None:
                    budget -= 1
            if object_updates:
                result.append(PC.FilterUpdate(filter=PC.Filter(filter_id), objectSet=object_updates))
        return result, truncated

    def _object_update(self, flt: _FilterState, obj: SimObject, previous: _Entry | None,
                       quiet: bool) -> tuple[Any, _Entry]:
        """The object update from ``previous`` to now (None when nothing to report) and the new entry.

        ``quiet``: changes of a ManagedEntity's recentTask are not reported (the initial value is).
        """
        if previous is not None and previous[0] == obj.version and not obj.dynamic_properties:
            return None, previous
        paths = wanted_paths(obj, flt.spec.propSet)
        values, missing = read_properties(obj, paths)
        prints = {path: _fingerprint(value) for path, value in values.items()}
        prints.update({f"!{m.path}": type(m.fault).__name__ for m in missing})
        if previous is None:
            changes = [PC.Change(name=p, op="assign", val=v) for p, v in values.items()]
            entry: _Entry = (obj.version, prints, obj.ref)
            return PC.ObjectUpdate(kind="enter", obj=obj.ref, changeSet=changes, missingSet=missing), entry
        old_prints = previous[1]
        if quiet:
            # What the client was told of recentTask stays what it knows: no change is ever reported.
            for path in {*prints, *old_prints}:
                if _is_recent_task(obj, path.lstrip("!")):
                    if path in old_prints:
                        prints[path] = old_prints[path]
                    else:
                        prints.pop(path, None)
            values = {p: v for p, v in values.items() if p in prints}
        entry = (obj.version, prints, obj.ref)
        changes = [PC.Change(name=p, op="assign", val=values[p]) for p in values if old_prints.get(p) != prints[p]]
        changes += [PC.Change(name=p, op="assign") for p in old_prints if p not in prints and p[0] != "!"]
        if not changes and old_prints.keys() == prints.keys():
            return None, entry
        return PC.ObjectUpdate(kind="modify", obj=obj.ref, changeSet=changes, missingSet=missing), entry


def _declared_type_for_type(kind: Any, name: str) -> Any:
    for klass in kind.__mro__:
        info = getattr(klass, "_propInfo", {}).get(name)
        if info is not None:
            return info.type
    raise _invalid_property(name)
