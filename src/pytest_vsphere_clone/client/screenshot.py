"""A VM's console screenshot: CreateScreenshot_Task, then the PNG read from the datastore over HTTPS.

CreateScreenshot_Task's result is the image's datastore path (``"[datastore1] vm/vm-1.png"``); the
file is then fetched as the SDK's "HTTP Access to vSphere Server Files" describes it:
``GET https://<vCenter>/folder/<path>?dcPath=<datacenter path>&dsName=<datastore>`` with the
session's ``vmware_soap_session`` cookie (Datastore.Browse on the datacenter and the datastore).
The VM must be powered on (InvalidPowerState otherwise); the privilege is
VirtualMachine.Interact.CreateScreenshot.
"""

from __future__ import annotations

import http.client
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .errors import VSphereCloneError

if TYPE_CHECKING:
    from .session import VSphereConnection
    from .waiter import Waiter

_DS_PATH = re.compile(r"^\[(?P<ds>[^\]]+)\]\s*(?P<rel>.*)$")
#: PNG files start with these eight bytes.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ScreenshotFailed(VSphereCloneError):
    """A screenshot could not be taken or fetched; the message says which step and why."""


def parse_datastore_path(path: str) -> tuple[str, str]:
    """``"[datastore1] vm/vm-1.png"`` -> ``("datastore1", "vm/vm-1.png")``."""
    match = _DS_PATH.match(path.strip())
    if match is None:
        raise ScreenshotFailed(f"CreateScreenshot_Task answered {path!r}, not a datastore path '[ds] dir/file'")
    return match["ds"], match["rel"].strip().lstrip("/")


def datastore_url(host: str, port: int, datastore_path: str, datacenter_path: str) -> str:
    """The HTTPS URL of a datastore file: ``https://host/folder/<rel>?dcPath=..&dsName=..``."""
    ds_name, rel = parse_datastore_path(datastore_path)
    authority = f"[{host}]" if ":" in host else host
    if port != 443:
        authority += f":{port}"
    return f"https://{authority}/folder/{quote(rel)}?{urlencode({'dcPath': datacenter_path, 'dsName': ds_name})}"


def datacenter_path(conn: VSphereConnection, entity: Any) -> str:
    """The inventory path of the datacenter ``entity`` lives in (``dc1``, ``Europe/dc1``): dcPath."""
    from pyVmomi import vim

    from . import props

    names: list[str] = []
    node = entity
    in_datacenter = False
    for _ in range(64):  # inventory trees are shallow; a cycle would be a server's bug
        values = props.read(conn, node, ["name", "parent"])
        parent = values.get("parent")
        if parent is None:
            break  # the root folder has no place in paths
        if isinstance(node, vim.Datacenter):
            in_datacenter = True
        if in_datacenter:
            names.append(str(values.get("name", "")))
        node = parent
    if not in_datacenter:
        raise ScreenshotFailed(f"{entity._moId} is in no datacenter")
    return "/".join(reversed(names))


def take(conn: VSphereConnection, vm: Any, *, waiter: Waiter, timeout: float = 60.0) -> str:
    """Run CreateScreenshot_Task on ``vm`` and return the image's datastore path."""
    from pyVmomi import vmodl

    from . import faults

    try:
        task = conn.call(vm.CreateScreenshot_Task, idempotent=False, what="CreateScreenshot_Task")
        result = waiter.wait_for_task(task, timeout, what=f"the screenshot of {vm._moId}")
    except vmodl.MethodFault as fault:
        raise ScreenshotFailed(f"CreateScreenshot_Task failed: {faults.describe(fault)}") from None
    return str(result)


def fetch(conn: VSphereConnection, datastore_path: str, dc_path: str, timeout: float = 60.0) -> bytes:
    """The content of a datastore file over HTTPS, with this connection's session cookie."""
    url = datastore_url(conn.host, conn.port, datastore_path, dc_path)
    target = url.split("/", 3)[3]
    cookie = str(getattr(conn.si._stub, "cookie", "") or "").split(";", 1)[0].strip()
    connection = http.client.HTTPSConnection(conn.host, conn.port, timeout=timeout, context=conn.ssl_context)
    try:
        connection.request("GET", f"/{target}", headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        payload = response.read()
    except OSError as exc:
        raise ScreenshotFailed(f"GET {datastore_path} from the datastore failed: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        detail = payload[:160].decode("utf-8", "replace").strip()
        raise ScreenshotFailed(f"GET {datastore_path} from the datastore failed: HTTP {response.status} "
                               f"{response.reason}{f': {detail}' if detail else ''}")
    return payload


def capture(conn: VSphereConnection, vm: Any, *, waiter: Waiter, timeout: float = 60.0) -> tuple[str, bytes]:
    """Take a screenshot of ``vm``'s console and fetch it: (datastore path, PNG bytes)."""
    path = take(conn, vm, waiter=waiter, timeout=timeout)
    png = fetch(conn, path, datacenter_path(conn, vm), timeout)
    if not png.startswith(PNG_SIGNATURE):
        raise ScreenshotFailed(f"{path} is not a PNG image ({len(png)} bytes)")
    return path, png
