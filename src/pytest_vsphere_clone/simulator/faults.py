"""Fault injection: make chosen calls fail, stall or drop their connection."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl


class DropConnection(Exception):
    """Raised to make the HTTP layer close the connection without an answer."""


def make_fault(name: str, msg: str = "") -> Any:
    """A pyVmomi fault instance from a name such as ``InvalidLogin`` or ``vmodl.fault.SystemError``."""
    short = name.rsplit(".", 1)[-1]
    for namespace in (vim.fault, vmodl.fault, vim):
        kind = getattr(namespace, short, None)
        if isinstance(kind, type) and issubclass(kind, vmodl.MethodFault):
            fault = kind(msg=msg or f"Injected fault {short}")
            _fill_required(fault)
            return fault
    raise ValueError(f"unknown vSphere fault {name!r}")


def _fill_required(fault: Any) -> None:
    """Give required fields placeholder values: the serializer refuses a fault without them."""
    for prop in fault._GetPropertyList():
        if prop.flags & VmomiSupport.F_OPTIONAL or getattr(fault, prop.name) not in (None, ""):
            continue
        kind = prop.type
        if issubclass(kind, VmomiSupport.ManagedObject):
            value: Any = kind("injected")
        elif issubclass(kind, VmomiSupport.Enum):
            value = kind.values[0] if getattr(kind, "values", None) else ""
        elif kind is bool:
            value = False
        elif kind in (int, VmomiSupport.long, VmomiSupport.short, VmomiSupport.byte):
            value = 0
        elif kind is str:
            value = "injected"
        else:
            continue
        setattr(fault, prop.name, value)


#: A rule's method that matches every method.
ANY_METHOD = "*"


@dataclass
class FaultRule:
    """Fail the next ``count`` calls of ``method`` (on ``mo_id`` if given); -1 means always.

    ``method`` ``"*"`` matches every method. With ``probability`` below 1 a matching call is hit
    only that often, drawn from a ``random.Random(seed)`` of the rule's own (repeatable for one
    order of calls); a call that is not hit leaves ``count`` alone and may match a later rule.
    """

    method: str
    fault: str | None = None
    count: int = 1
    delay: float = 0.0
    drop: bool = False
    mo_id: str | None = None
    message: str = ""
    #: For methods that return a task: start the task and let it end with the fault.
    in_task: bool = False
    #: The managed object the fault names (its ``obj``, e.g. of ManagedObjectNotFound), as
    #: ``(wsdl type, moref id)``; None leaves a placeholder.
    obj: tuple[str, str] | None = None
    probability: float = 1.0
    seed: int | None = None
    #: Run the call, then close the connection instead of answering: the effect happened, the
    #: client cannot know it (unlike ``drop``, which closes it before the call runs).
    drop_reply: bool = False
    #: How often the rule has hit a call.
    fired: int = field(default=0, init=False)
    _random: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within 0..1, not {self.probability}")
        self._random = random.Random(self.seed)

    def matches(self, method: str, mo_id: str | None) -> bool:
        return self.method in (method, ANY_METHOD) and not (self.mo_id and self.mo_id != mo_id)

    def hits(self) -> bool:
        """Whether a matching call is hit this time (always, unless a probability is set)."""
        return self.probability >= 1.0 or self._random.random() < self.probability

    def apply_before(self) -> None:
        if self.delay:
            time.sleep(self.delay)
        if self.drop:
            raise DropConnection(self.method)

    def apply_after(self) -> None:
        if self.drop_reply:
            raise DropConnection(self.method)

    def make(self) -> Any:
        if not self.fault:
            return None
        fault = make_fault(self.fault, self.message)
        if self.obj is not None:
            kind, mo_id = self.obj
            fault.obj = VmomiSupport.GetWsdlType(VmomiSupport.XMLNS_VMODL_BASE, kind)(mo_id)
        return fault


class _Taken:
    """One firing of a rule, handed to the dispatcher."""

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule

    def apply_before(self) -> None:
        self.rule.apply_before()

    def apply_after(self) -> None:
        """After the call ran: drop its answer if the rule says so."""
        self.rule.apply_after()

    def fault(self) -> Any:
        return self.rule.make()


class FaultInjector:
    """Rules matched by method name, consumed in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        if rule.fault:
            make_fault(rule.fault)  # validate now, not at the victim call
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, method: str, mo_id: str | None) -> _Taken | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, mo_id) or not rule.hits():
                    continue
                rule.fired += 1
                if rule.count > 0:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                return _Taken(rule)
        return None
