"""client/screenshot.py: CreateScreenshot_Task and the datastore HTTPS GET, against the simulator over HTTPS."""

from __future__ import annotations

import pytest

from pytest_vsphere_clone.client import screenshot
from pytest_vsphere_clone.client.screenshot import ScreenshotFailed
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.waiter import Waiter


def _vm(conn: VSphereConnection, name: str) -> object:
    vm = conn.content.searchIndex.FindByInventoryPath(f"dc1/vm/{name}")
    assert vm is not None
    return vm


def test_datastore_urls() -> None:
    assert screenshot.datastore_url("vc.example.com", 443, "[datastore 1] web 1/web 1-1.png", "Europe/dc1") == \
        "https://vc.example.com/folder/web%201/web%201-1.png?dcPath=Europe%2Fdc1&dsName=datastore+1"
    assert screenshot.datastore_url("fd00::5", 8443, "[ds]vm/vm-2.png", "dc1").startswith("https://[fd00::5]:8443/folder/vm/")
    with pytest.raises(ScreenshotFailed, match="not a datastore path"):
        screenshot.parse_datastore_path("vm/vm-1.png")


def test_capture_a_running_vm_and_refusals(conn: VSphereConnection, waiter: Waiter) -> None:
    running = _vm(conn, "linux-frozen")
    assert screenshot.datacenter_path(conn, running) == "dc1"
    path, png = screenshot.capture(conn, running, waiter=waiter)
    assert path == "[datastore1] linux-frozen/linux-frozen-1.png"
    assert png.startswith(screenshot.PNG_SIGNATURE)
    # A powered-off VM: the task's InvalidPowerState, in one line.
    with pytest.raises(ScreenshotFailed, match=r"^CreateScreenshot_Task failed: .*InvalidPowerState"):
        screenshot.capture(conn, _vm(conn, "linux-template"), waiter=waiter)
    # A file that is not there: the HTTP status, in one line.
    with pytest.raises(ScreenshotFailed, match=r"^GET \[datastore1\] linux-frozen/none.png from the datastore "
                                                r"failed: HTTP 404"):
        screenshot.fetch(conn, "[datastore1] linux-frozen/none.png", "dc1")
