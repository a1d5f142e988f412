"""Datastore access over HTTPS: ``GET /folder/<path>?dcPath=<datacenter>&dsName=<datastore>``.

The vSphere Web Services SDK's "HTTP Access to vSphere Server Files": a file in a datastore is read
with the session cookie of a logged-in client (``vmware_soap_session``); the datacenter needs
Datastore.Browse (and the datastore too). The simulator serves the files that have content: a VM's
screenshots (CreateScreenshot_Task). Directory listings and PUT/DELETE are not modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from .vcenter import VCenter

#: (HTTP status, body, content type)
Answer = tuple[int, bytes, str]

_TEXT = "text/plain; charset=utf-8"


def serve(vc: VCenter, session_key: str | None, target: str) -> Answer:
    """The answer to ``GET target`` (``/folder/...``) for the session ``session_key``."""
    from pyVmomi import vim

    from .objects.inventory import Datacenter, Datastore, datacenter_of

    session = vc.sessions.get(session_key) if session_key else None
    if session is None:  # a vCenter answers an unauthenticated /folder request with 401
        return 401, b"Unauthorized: log in first (vmware_soap_session cookie)", _TEXT
    parts = urlsplit(target)
    query = parse_qs(parts.query)
    rel = unquote(parts.path[len("/folder"):]).strip("/")
    dc_path = (query.get("dcPath") or [""])[0].strip("/")
    ds_name = (query.get("dsName") or [""])[0]
    if not rel or not dc_path or not ds_name:
        return 404, b"directory listings are not modelled: name a file with dcPath and dsName", _TEXT
    with vc.lock:
        dc = next((d for d in vc.of_type(Datacenter) if _inventory_path(d) == dc_path), None)
        ds = next((d for d in vc.of_type(Datastore) if d.name == ds_name and datacenter_of(d) is dc), None) \
            if dc is not None else None
        if dc is None or ds is None:
            return 404, f"no datastore {ds_name!r} in datacenter {dc_path!r}".encode(), _TEXT
        try:
            for entity in (dc, ds):
                vc.authorizer.require(session.user, "Datastore.Browse", entity)
        except vim.fault.NoPermission:
            return 403, b"Forbidden: Datastore.Browse is needed", _TEXT
        stored = _stored_file(vc, ds, rel)
    if stored is None:
        return 404, f"File [{ds_name}] {rel} was not found".encode(), _TEXT
    content_type = "image/png" if rel.endswith(".png") else "application/octet-stream"
    return 200, stored, content_type


def _inventory_path(entity: object) -> str:
    """Names from below the root folder down to ``entity`` (``dc1``, ``Europe/dc1``)."""
    parts: list[str] = []
    node = entity
    while node is not None and getattr(node, "parent", None) is not None:
        parts.append(str(getattr(node, "name", "")))
        node = node.parent  # type: ignore[attr-defined]
    return "/".join(reversed(parts))


def _stored_file(vc: VCenter, ds: object, rel: str) -> bytes | None:
    """The content of ``rel`` on ``ds`` (caller holds the lock), or None."""
    from .objects.virtual_machine import VirtualMachine

    directory, _, name = rel.rpartition("/")
    for vm in vc.of_type(VirtualMachine):
        if vm.datastore is ds and vm.folder_path() == directory:
            stored = vm.stored_files().get(name)
            if stored is not None:
                return stored.data
    return None
