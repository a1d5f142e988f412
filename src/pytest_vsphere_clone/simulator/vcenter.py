"""The simulated vCenter: object registry, sessions, privileges, dispatch.

One lock guards the whole state, as the simulated world is small and every
call is short; long operations run as tasks whose waits happen outside it.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl

from .auth import Authorizer, Session, SessionStore, callable_without_session
from .faults import FaultInjector
from .latency import LatencyProfile
from .objects.base import SimObject
from .objects.disks import DiskStore
from .soap import FETCH_METHOD, MethodCall


@dataclass
class CallContext:
    """Who is calling, and the API version they speak."""

    vc: VCenter
    session: Session | None
    version: str
    peer: str = ""
    user_agent: str = ""
    #: Set by Login: the HTTP layer hands it to the client as the session cookie.
    new_session_key: str | None = None
    #: An injected fault the next task of this call ends with (instead of failing the call).
    task_fault: Any = None

    @property
    def user(self) -> str:
        return self.session.user if self.session else ""

    def require(self, privilege: str, entity: SimObject) -> None:
        """Raise NoPermission unless the caller holds ``privilege`` on ``entity``."""
        self.vc.authorizer.require(self.user, privilege, entity)


@dataclass
class VCenterOptions:
    """Knobs of one simulated vCenter."""

    profile: LatencyProfile = field(default_factory=LatencyProfile.fast)
    session_idle_timeout: float = 1800.0
    #: Whether property collectors report changes of a ManagedEntity's ``recentTask``. Off by default,
    #: as the API reference allows (ManagedEntity.recentTask: "In releases after vSphere API 5.0,
    #: vSphere Servers might not generate property collector update notifications for this
    #: property."): clients must follow tasks through the Task objects themselves.
    recent_task_updates: bool = False
    #: ``AboutInfo.apiType``: "VirtualCenter" (a vCenter), or "HostAgent" to stand for a direct
    #: connection to an ESXi host, which offers no cloning (see objects/cloning.py).
    api_type: str = "VirtualCenter"

    @property
    def host_agent(self) -> bool:
        """True when the simulator stands for an ESXi host reached directly."""
        return self.api_type == "HostAgent"


class VCenter:
    """All state of one simulated vCenter and the call dispatcher."""

    def __init__(self, options: VCenterOptions | None = None) -> None:
        from .objects.custom_fields import CustomFieldsRegistry
        from .tasks import TaskRunner

        self.options = options or VCenterOptions()
        self.lock = threading.RLock()
        self.updated = threading.Condition(self.lock)
        self.generation = 0
        self.objects: dict[str, SimObject] = {}
        self._ids = itertools.count(1)
        self.sessions = SessionStore(self.options.session_idle_timeout)
        self.authorizer = Authorizer()
        self.faults = FaultInjector()
        self.counters: Counter[str] = Counter()
        self.custom_fields = CustomFieldsRegistry()
        self.tasks = TaskRunner(self)
        self.instance_uuid = "5c9f3b62-6f4e-4c1b-9d8e-0a1b2c3d4e5f"
        self.guests: Any = None  # the guest runtime, attached by the simulator when guests are enabled
        self.closed = False
        self.disks = DiskStore()
        self.root_folder: Any = None  # set by the inventory builder
        self.service_instance: Any = None
        self._local = threading.local()

    def current_context(self) -> CallContext | None:
        """The context of the call this thread is serving (for per-session properties)."""
        return getattr(self._local, "ctx", None)

    # --- disks ----------------------------------------------------------------------

    def disk_tops(self, exclude: SimObject | None = None) -> list[Any]:
        """The top disk layer of every VM (but ``exclude``)."""
        from .objects.virtual_machine import VirtualMachine

        return [vm.disk for vm in self.of_type(VirtualMachine) if vm is not exclude and vm.disk is not None]

    def pinned_layers(self) -> set[int]:
        """Layers that snapshots or frozen instant-clone sources hold."""
        from .objects.virtual_machine import VirtualMachine

        pinned: set[int] = set()
        for vm in self.of_type(VirtualMachine):
            pinned.update(node.layer.key for node in vm.all_snapshots())
            if vm.frozen_shared_layer is not None:
                pinned.add(vm.frozen_shared_layer.key)
        return pinned

    def drop_session_state(self, session_key: str) -> None:
        """Forget a closed session's filters, views and collectors."""
        from .objects.property_collector import PropertyCollector, PropertyFilter
        from .objects.views import ContainerView

        for flt in self.of_type(PropertyFilter):
            if flt.session_key == session_key:
                flt.collector.drop_filter(flt)
        for collector in self.of_type(PropertyCollector):
            collector.states.pop(session_key, None)
            if collector.owner_session == session_key:
                self.remove(collector)
        for view in self.of_type(ContainerView):
            if view.session_key == session_key:
                self.remove(view)

    @property
    def profile(self) -> LatencyProfile:
        return self.options.profile

    # --- registry -----------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A fresh managed object id such as ``vm-42``."""
        return f"{prefix}-{next(self._ids)}"

    def add(self, obj: SimObject) -> SimObject:
        with self.lock:
            self.objects[obj.mo_id] = obj
            self.notify_change()
        return obj

    def remove(self, obj: SimObject) -> None:
        with self.lock:
            obj.alive = False
            self.objects.pop(obj.mo_id, None)
            self.notify_change()

    def lookup(self, ref: Any) -> SimObject:
        """The live object behind a managed object reference, or ManagedObjectNotFound."""
        mo_id = getattr(ref, "_moId", None)
        obj = self.objects.get(mo_id) if mo_id else None
        if obj is None or not isinstance(ref, obj.vim_type):
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{_describe(ref)}' has already been deleted or has not been completely created",
                obj=ref if isinstance(ref, VmomiSupport.ManagedObject) else None,  # not vmodl.*: no such name
            )
        return obj

    def lookup_as(self, ref: Any, kind: type[SimObject]) -> Any:
        obj = self.lookup(ref)
        if not isinstance(obj, kind):
            raise vmodl.fault.InvalidArgument(msg=f"{_describe(ref)} is not a {kind.__name__}")
        return obj

    def of_type(self, kind: type[SimObject]) -> list[Any]:
        with self.lock:
            return [o for o in self.objects.values() if isinstance(o, kind)]

    def notify_change(self) -> None:
        """Wake every WaitForUpdates; call with or without the lock."""
        with self.lock:
            self.generation += 1
            self.updated.notify_all()

    # --- dispatch -----------------------------------------------------------------

    def invoke(self, call: MethodCall, ctx: CallContext, session_key: str | None) -> tuple[Any, Any]:
        """Run one decoded call; returns (result type, result) or raises a MethodFault."""
        self._local.ctx = ctx
        try:
            return self._invoke(call, ctx, session_key)
        finally:
            self._local.ctx = None

    def _invoke(self, call: MethodCall, ctx: CallContext, session_key: str | None) -> tuple[Any, Any]:
        with self.lock:
            self.counters[call.method] += 1
        rule = self.faults.take(call.method, getattr(call.this, "_moId", None))
        if rule is not None:
            rule.apply_before()
        session = self.sessions.get(session_key) if session_key else None
        if session is None and not callable_without_session(call.method, call.info):
            raise vim.fault.NotAuthenticated(msg="The session is not authenticated.", privilegeId="System.View")
        ctx.session = session
        with self.lock:
            target = self.lookup(call.this)
            if call.method == FETCH_METHOD:
                return self._fetch(ctx, target, call.args.get("prop", ""))
            impl = target.method(call.method)
            if impl is None:
                raise vmodl.fault.MethodNotFound(
                    msg=f"Method {call.method} is not implemented by the simulator for {target.vim_type.__name__}",
                    receiver=target.ref, method=call.method,
                )
            if session is not None:
                self._check_privilege(ctx, impl, call, target)
            fault = rule.fault() if rule is not None else None
            if fault is not None:
                if rule is not None and rule.rule.in_task and call.info.result is vim.Task:
                    ctx.task_fault = fault
                else:
                    raise fault
        # The implementation takes the lock itself where it needs it: some
        # methods (WaitForUpdatesEx, guest operations) must wait without it.
        result = impl(ctx, **call.args)
        if rule is not None:
            rule.apply_after()  # a lost answer: the call took effect, the client never hears of it
        return call.info.result, result

    def _check_privilege(self, ctx: CallContext, impl: Any, call: MethodCall, target: SimObject) -> None:
        privilege, on = impl._vmomi
        if privilege is None:
            privilege = call.info.privId
        if not privilege or privilege in ("System.Anonymous", "System.View", "System.Read"):
            return
        entity = target
        if on is not None:
            ref = call.args.get(on)
            if ref is not None:
                entity = self.lookup(ref)
        ctx.require(privilege, entity)

    def _fetch(self, ctx: CallContext, target: SimObject, prop: str) -> tuple[Any, Any]:
        from .objects.property_reading import property_type, read_path

        value = read_path(target, prop)
        return property_type(target, prop), value

    def close(self) -> None:
        """Stop background work (tasks and waiters)."""
        with self.lock:
            self.closed = True
            self.updated.notify_all()


def _describe(ref: Any) -> str:
    mo_id = getattr(ref, "_moId", None)
    if mo_id is None:
        return repr(ref)
    return f"vim.{VmomiSupport.GetWsdlName(type(ref))}:{mo_id}"

