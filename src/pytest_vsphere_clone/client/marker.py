"""The ownership marker every clone carries: who made it, when, and until when it may live.

It is written in the clone spec, so the clone is marked from the moment it exists (the
annotation for linked and full clones; an extraConfig ``guestinfo`` key for instant clones,
whose spec has no annotation, readable inside the guest), and as a custom attribute set right
after the clone task (a column in the vSphere Client's VM list).
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from .session import VSphereConnection

#: Name of the custom attribute holding the marker.
FIELD_NAME = "pytest-vsphere-clone"
#: extraConfig key holding the marker (``vmware-rpctool "info-get guestinfo.pytest-vsphere-clone"``).
EXTRA_CONFIG_KEY = "guestinfo.pytest-vsphere-clone"
_PREFIX = "pytest-vsphere-clone/v1"
_MARKER_RE = re.compile(re.escape(_PREFIX) + r"((?:\s+[a-z_]+=\S*)+)")
_SAFE = "-._~:@+"


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unstamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True)
class Marker:
    """Ownership of one clone: run id, xdist worker, machine, process, creation and expiry (epoch seconds)."""

    run_id: str
    worker: str
    host: str
    pid: int
    created: float
    expiry: float
    template: str = ""
    #: Set when a run keeps the clone: its address and the test (node id) that kept it.
    ip: str = ""
    kept_by: str = ""

    @classmethod
    def new(cls, run_id: str, worker: str = "master", ttl: float = 7200.0, template: str = "",
            now: float | None = None) -> Marker:
        """A marker for a clone made now by this process, expiring ``ttl`` seconds from now."""
        created = float(int(time.time() if now is None else now))
        return cls(run_id, worker, socket.gethostname(), os.getpid(), created, created + ttl, template)

    def for_template(self, template: str) -> Marker:
        return replace(self, template=template)

    def encode(self) -> str:
        """One line: ``pytest-vsphere-clone/v1 run=... worker=... host=... pid=... created=... expires=...``
        (then ``template=``, and for a kept clone ``ip=`` and ``test=``)."""
        fields = [("run", self.run_id), ("worker", self.worker), ("host", self.host), ("pid", str(self.pid)),
                  ("created", _stamp(self.created)), ("expires", _stamp(self.expiry))]
        if self.template:
            fields.append(("template", self.template))
        # Fields a reader may not know are ignored by it (the format stays v1): ip and test of a kept clone.
        if self.ip:
            fields.append(("ip", self.ip))
        if self.kept_by:
            fields.append(("test", self.kept_by))
        return _PREFIX + "".join(f" {k}={quote(v, safe=_SAFE)}" for k, v in fields)

    def annotation(self, existing: str = "") -> str:
        """A VM annotation (Notes) saying what the VM is, with the marker on its own line."""
        note = f"Disposable test clone made by pytest-vsphere-clone; safe to destroy after expiry.\n{self.encode()}"
        base = strip(existing)
        return f"{base}\n\n{note}" if base else note

    @classmethod
    def parse(cls, text: str | None) -> Marker | None:
        """The marker found anywhere in ``text`` (annotation, custom value), or None."""
        if not text:
            return None
        match = _MARKER_RE.search(text)
        if match is None:
            return None
        fields = dict(part.split("=", 1) for part in match.group(1).split())
        try:
            return cls(run_id=unquote(fields["run"]), worker=unquote(fields.get("worker", "")),
                       host=unquote(fields.get("host", "")), pid=int(fields.get("pid", "0")),
                       created=_unstamp(fields["created"]), expiry=_unstamp(fields["expires"]),
                       template=unquote(fields.get("template", "")), ip=unquote(fields.get("ip", "")),
                       kept_by=unquote(fields.get("test", "")))
        except (KeyError, ValueError):
            return None

    def is_expired(self, now: float | None = None) -> bool:
        """True once the expiry has passed."""
        return (time.time() if now is None else now) >= self.expiry

    def is_orphaned(self, now: float | None = None) -> bool:
        """True when the creating process was on this machine and is gone (its clones have no owner)."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        return not _pid_alive(self.pid)


def strip(annotation: str) -> str:
    """``annotation`` without our note (so a clone of a clone does not stack markers)."""
    lines = [line for line in annotation.splitlines()
             if not line.startswith(_PREFIX) and not line.startswith("Disposable test clone made by pytest-vsphere")]
    return "\n".join(lines).strip()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def find_marker(custom_value: str | None = None, annotation: str | None = None,
                extra_config: dict[str, str] | None = None) -> Marker | None:
    """The marker from whichever place carries it (custom value, annotation, extraConfig)."""
    for text in (custom_value, annotation, (extra_config or {}).get(EXTRA_CONFIG_KEY)):
        marker = Marker.parse(text)
        if marker is not None:
            return marker
    return None


def ensure_field(conn: VSphereConnection) -> int:
    """The key of the marker's custom attribute on VMs, defining it if missing (concurrency-safe)."""
    from pyVmomi import vim

    manager = conn.content.customFieldsManager
    assert manager is not None
    key = field_key(conn)
    if key is not None:
        return key
    try:
        field = conn.call(manager.AddCustomFieldDef, FIELD_NAME, vim.VirtualMachine, what="AddCustomFieldDef")
        return int(field.key)
    except vim.fault.DuplicateName:
        # Another worker defined it between our read and our add: use theirs.
        key = field_key(conn)
        if key is None:
            raise
        return key


def field_key(conn: VSphereConnection) -> int | None:
    """The key of the marker's custom attribute, or None if it is not defined."""
    from pyVmomi import vim

    manager = conn.content.customFieldsManager
    assert manager is not None
    for field in conn.call(lambda: manager.field, what="CustomFieldsManager.field") or ():
        if field.name == FIELD_NAME and field.managedObjectType in (None, vim.VirtualMachine):
            return int(field.key)
    return None


_FIELD_FACT = "marker_field_key"


def set_marker(conn: VSphereConnection, vm: Any, marker: Marker, key: int | None = None) -> None:
    """Write ``marker`` into the VM's custom attribute (defined first if needed).

    The attribute's key is looked up once per connection, not once per clone; if the
    definition was removed meanwhile (SetField refuses the key), it is looked up again.
    """
    from pyVmomi import vmodl

    manager = conn.content.customFieldsManager
    assert manager is not None
    if key is not None:
        conn.call(manager.SetField, vm, key, marker.encode(), what="SetField")
        return
    cached = conn.facts.get(_FIELD_FACT)
    field = cached if cached is not None else ensure_field(conn)
    conn.facts[_FIELD_FACT] = field
    try:
        conn.call(manager.SetField, vm, field, marker.encode(), what="SetField")
    except vmodl.fault.InvalidArgument:
        if cached is None:
            raise
        conn.facts[_FIELD_FACT] = field = ensure_field(conn)
        conn.call(manager.SetField, vm, field, marker.encode(), what="SetField")


def marker_option(marker: Marker) -> Any:
    """The extraConfig OptionValue carrying ``marker``."""
    from pyVmomi import vim

    return vim.option.OptionValue(key=EXTRA_CONFIG_KEY, value=marker.encode())
