"""PropertyCollector: RetrievePropertiesEx, filters and WaitForUpdatesEx with real versions.

Filters and their versions belong to a session, as on a vCenter: many clients
may share the well-known ``propertyCollector`` reference without seeing each
other's filters.

This module holds the managed objects (PropertyCollector, PropertyFilter) and computes their
answers; reading properties and selecting objects is property_reading.py's, what a session's
collector remembers (filters, answered versions) collector_state.py's.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import SimObject, vmomi_method
from .collector_state import CollectorState, Entry, FilterState, Snapshot, fingerprint, is_recent_task
from .property_reading import (
    declared_type_for_type,
    object_content,
    read_path,
    read_properties,
    reported_objects,
    select_objects,
    wanted_paths,
)

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter

PC = vmodl.query.PropertyCollector


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
        self.states: dict[str, CollectorState] = {}

    def state(self, ctx: CallContext) -> CollectorState:
        assert ctx.session is not None
        return self.states.setdefault(ctx.session.key, CollectorState())

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
        return [object_content(obj, values, missing) for obj, values, missing in contents.values()]

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
                    declared_type_for_type(prop_spec.type, path.partition(".")[0])
            assert ctx.session is not None
            flt = PropertyFilter(self.vc, self.vc.new_id("session[filter]"), self, ctx.session.key, spec,
                                 partialUpdates)
            self.vc.add(flt)
            self.state(ctx).filters[flt.mo_id] = FilterState(spec, partialUpdates)
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
            known: Snapshot = {fid: dict(entries) for fid, entries in base.items()}
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

    def _updates(self, state: CollectorState, known: Snapshot,
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
            pending: list[tuple[str, Any, Entry | None]] = []
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

    def _object_update(self, flt: FilterState, obj: SimObject, previous: Entry | None,
                       quiet: bool) -> tuple[Any, Entry]:
        """The object update from ``previous`` to now (None when nothing to report) and the new entry.

        ``quiet``: changes of a ManagedEntity's recentTask are not reported (the initial value is).
        """
        if previous is not None and previous[0] == obj.version and not obj.dynamic_properties:
            return None, previous
        paths = wanted_paths(obj, flt.spec.propSet)
        values, missing = read_properties(obj, paths)
        prints = {path: fingerprint(value) for path, value in values.items()}
        prints.update({f"!{m.path}": type(m.fault).__name__ for m in missing})
        if previous is None:
            changes = [PC.Change(name=p, op="assign", val=v) for p, v in values.items()]
            entry: Entry = (obj.version, prints, obj.ref)
            return PC.ObjectUpdate(kind="enter", obj=obj.ref, changeSet=changes, missingSet=missing), entry
        old_prints = previous[1]
        if quiet:
            # What the client was told of recentTask stays what it knows: no change is ever reported.
            for path in {*prints, *old_prints}:
                if is_recent_task(obj, path.lstrip("!")):
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
