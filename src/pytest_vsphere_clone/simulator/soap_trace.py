"""The SOAP call trace (``vsphere-clone simulator --trace``): one line per call.

Each line names the method, the managed object it was called on, its result or fault and how
long the simulator took, e.g.::

    10:42:07.118 RetrievePropertiesEx PropertyCollector:propertyCollector -> RetrieveResult 1.4 ms
    10:42:07.131 PowerOnVM_Task VirtualMachine:vm-12 -> Task:task-31 0.9 ms
    10:42:07.140 Login SessionManager:SessionManager !! InvalidLogin "Cannot complete login ..." 0.3 ms

Tracing is off unless enable() is called: the logger stays at WARNING whatever the root logger's
level, so a test run with verbose logging does not format a line per call.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from pyVmomi import VmomiSupport

LOGGER_NAME = "pytest_vsphere_clone.simulator.trace"
trace_log = logging.getLogger(LOGGER_NAME)
trace_log.setLevel(logging.WARNING)
trace_log.propagate = False

_MAX_TEXT = 120


def enable(stream: TextIO | None = None) -> logging.Handler:
    """Write one line per SOAP call to ``stream`` (default: stderr); returns the handler added."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S"))
    trace_log.addHandler(handler)
    trace_log.setLevel(logging.INFO)
    return handler


def disable(handler: logging.Handler) -> None:
    """Undo enable()."""
    trace_log.removeHandler(handler)
    if not trace_log.handlers:
        trace_log.setLevel(logging.WARNING)


def enabled() -> bool:
    return trace_log.isEnabledFor(logging.INFO)


def reference(ref: Any) -> str:
    """``Type:moId`` of a managed object reference ("-" when there is none)."""
    mo_id = getattr(ref, "_moId", None)
    if mo_id is None:
        return "-"
    return f"{VmomiSupport.GetWsdlName(type(ref))}:{mo_id}"


def describe(result: Any) -> str:
    """A short description of a call's result: its type, a reference, an array's length or a value."""
    if result is None:
        return "unset"
    if isinstance(result, VmomiSupport.ManagedObject):
        return reference(result)
    if isinstance(result, list):
        item = getattr(result, "Item", None)
        name = VmomiSupport.GetWsdlName(item) if item is not None else "value"
        return f"{name}[{len(result)}]"
    if isinstance(result, VmomiSupport.DataObject):
        return str(VmomiSupport.GetWsdlName(type(result)))
    return _clip(repr(result))


def call(method: str, ref: Any, outcome: str, seconds: float) -> None:
    """Log one call; ``outcome`` is ``-> result`` or ``!! Fault "message"``."""
    trace_log.info("%s %s %s %.1f ms", method, reference(ref), outcome, seconds * 1000.0)


def fault_outcome(fault: Any) -> str:
    message = getattr(fault, "msg", None) or ""
    text = f' "{_clip(message)}"' if message else ""
    return f"!! {VmomiSupport.GetWsdlName(type(fault))}{text}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
