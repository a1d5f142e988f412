"""The vSphere client layer: sessions, waits, inventory, clones, guest operations, discovery, teardown.

Importing this package is cheap: errors and results load now, everything that needs
pyVmomi loads on first use of its name (or import its module directly).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AmbiguousTemplate,
    CloneFailed,
    CollapseRefused,
    ConnectionFailed,
    FileTransferFailed,
    GuestLoginFailed,
    GuestOperationFailed,
    InvalidInstantSource,
    InvalidPlacement,
    LoginFailed,
    MissingPrivileges,
    NicRefreshFailed,
    NoSnapshot,
    NoUsableAddress,
    OutcomeUnknown,
    PlacementNotFound,
    RetriesExhausted,
    TemplateNotFound,
    TlsVerificationFailed,
    VSphereCloneError,
    WaitTimeout,
)
from .result import CommandResult
from .secret import Secret

if TYPE_CHECKING:
    from .clone import clone_vm
    from .clone_request import CloneRequest, CloneResult
    from .discovery import ActiveDiscovery, AddressFilter, DiscoveryResult, ToolsDiscovery
    from .guest_ops import GuestOperations
    from .inventory import Inventory, Placement, PlacementSettings, TemplateInfo, find_template
    from .marker import Marker
    from .nic_refresh import NicRefresher, refresh_nics
    from .retry import RetryPolicy, retry_call
    from .session import VSphereConnection
    from .teardown import collapse, destroy, list_marked, reap
    from .waiter import Waiter

_LAZY = {
    "CloneRequest": "clone_request", "CloneResult": "clone_request", "clone_vm": "clone",
    "ActiveDiscovery": "discovery", "AddressFilter": "discovery", "DiscoveryResult": "discovery",
    "ToolsDiscovery": "discovery",
    "GuestOperations": "guest_ops",
    "Inventory": "inventory", "Placement": "inventory", "PlacementSettings": "inventory",
    "TemplateInfo": "inventory", "find_template": "inventory",
    "Marker": "marker",
    "NicRefresher": "nic_refresh", "refresh_nics": "nic_refresh",
    "RetryPolicy": "retry", "retry_call": "retry",
    "VSphereConnection": "session",
    "collapse": "teardown", "destroy": "teardown", "list_marked": "teardown", "reap": "teardown",
    "Waiter": "waiter",
}

__all__ = [
    "ActiveDiscovery", "AddressFilter", "AmbiguousTemplate", "CloneFailed", "CloneRequest", "CloneResult",
    "CollapseRefused", "CommandResult", "ConnectionFailed", "DiscoveryResult", "FileTransferFailed", "GuestLoginFailed",
    "GuestOperationFailed", "GuestOperations", "InvalidInstantSource", "InvalidPlacement", "Inventory",
    "LoginFailed", "Marker", "MissingPrivileges", "NicRefreshFailed", "NicRefresher", "NoSnapshot",
    "NoUsableAddress", "OutcomeUnknown", "Placement", "PlacementNotFound", "PlacementSettings",
    "RetriesExhausted", "RetryPolicy", "Secret", "TemplateInfo", "TemplateNotFound", "TlsVerificationFailed",
    "ToolsDiscovery", "VSphereCloneError", "VSphereConnection", "WaitTimeout", "Waiter", "clone_vm", "collapse",
    "destroy", "find_template", "list_marked", "reap", "refresh_nics", "retry_call",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
