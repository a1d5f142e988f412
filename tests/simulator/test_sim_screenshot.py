"""CreateScreenshot_Task and datastore HTTP access (/folder), through pyVmomi and HTTPS like any client.

A real guest's console: the PNG names the guest's hostname and address; the file is read back from
the datastore with the session cookie, as the SDK's "HTTP Access to vSphere Server Files" describes.
"""

from __future__ import annotations

import http.client
import ssl
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from pyVmomi import vim
from sim_helpers import linked_clone_spec, vm_by_name, wait, wait_fault

from pytest_vsphere_clone.simulator import Simulator

LIMITED, LIMITED_PASSWORD = "no-browse@vsphere.local", "Limited-pass-1"


def _until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


def _get(sim: Simulator, target: str, cookie: str | None) -> tuple[int, bytes, str]:
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    conn = http.client.HTTPSConnection(sim.host, sim.port, context=context, timeout=30)
    try:
        conn.request("GET", target, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    finally:
        conn.close()


def _cookie(si: Any) -> str:
    return str(si._stub.cookie).split(";", 1)[0]


def _png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, scanlines without filter bytes) of an unfiltered 8-bit RGB PNG, read by hand."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert (depth, colour) == (8, 2)
    raw = zlib.decompress(idat)
    stride = 1 + width * 3
    assert len(raw) == stride * height
    return width, height, [raw[y * stride + 1:(y + 1) * stride] for y in range(height)]


def test_screenshot_of_a_running_guest_is_a_png_on_its_datastore(gsim: Simulator, gsi: Any,
                                                                 client_factory: Callable[..., Any]) -> None:
    template = vm_by_name(gsi, "linux-template")
    vm = wait(template.CloneVM_Task(folder=template.parent, name="screenshot-vm",
                                    spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    try:
        # Powered off: the reference's InvalidPowerState, as the task's error.
        fault = wait_fault(vm.CreateScreenshot_Task())
        assert isinstance(fault, vim.fault.InvalidPowerState)
        assert fault.existingState == "poweredOff"

        wait(vm.PowerOnVM_Task())
        _until(lambda: vm.guest.ipAddress is not None, what="the guest's address")
        task = vm.CreateScreenshot_Task()
        path = wait(task)
        assert path == "[datastore1] screenshot-vm/screenshot-vm-1.png"
        assert task.info.descriptionId == "VirtualMachine.createScreenshot"
        assert wait(vm.CreateScreenshot_Task()) == "[datastore1] screenshot-vm/screenshot-vm-2.png"

        target = f"/folder/{quote('screenshot-vm/screenshot-vm-1.png')}?dcPath=dc1&dsName=datastore1"
        status, body, content_type = _get(gsim, target, _cookie(gsi))
        assert (status, content_type) == (200, "image/png")
        width, height, rows = _png(body)
        assert (width, height) == (720, 400)
        pixels = {bytes(row[i:i + 3]) for row in rows for i in range(0, len(row), 3)}
        assert len(pixels) == 2  # text on a background: not a uniform picture
        # The text is drawn on the top rows; the bottom of the screen stays empty.
        assert len(set(rows[10])) > 1 and len(set(rows[-1])) == 1

        # The datastore browser lists the file beside the VM's others.
        browser = vm.datastore[0].browser
        found = wait(browser.SearchDatastore_Task("[datastore1] screenshot-vm",
                                                  vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*.png"])))
        assert sorted(f.path for f in found.file) == ["screenshot-vm-1.png", "screenshot-vm-2.png"]

        # No session: 401; a session without Datastore.Browse: 403; another file or datastore: 404.
        assert _get(gsim, target, None)[0] == 401
        assert _get(gsim, target, 'vmware_soap_session="bogus"')[0] == 401
        gsim.add_user(LIMITED, LIMITED_PASSWORD, denied={"Datastore.Browse"})
        assert _get(gsim, target, _cookie(client_factory(gsim, LIMITED, LIMITED_PASSWORD)))[0] == 403
        assert _get(gsim, target.replace("-1.png", "-9.png"), _cookie(gsi))[0] == 404
        assert _get(gsim, target.replace("dsName=datastore1", "dsName=nope"), _cookie(gsi))[0] == 404
    finally:
        if vm.runtime.powerState == "poweredOn":
            wait(vm.PowerOffVM_Task())
        wait(vm.Destroy_Task())
    # The file went with the VM.
    assert _get(gsim, target, _cookie(gsi))[0] == 404


def test_console_names_the_guests_hostname_and_address() -> None:
    from pytest_vsphere_clone.simulator import console

    lines = console.login_screen("linux", "web-1", "10.0.0.7")
    assert lines[-1] == "web-1 login: _" and "10.0.0.7" in lines[2]
    assert "Ctrl+Alt+Delete" in console.login_screen("windows", "WIN-1", None)[-1]
    width, height, rows = _png(console.render(["ab"], 40, 30))
    assert (width, height) == (40, 30) and len({bytes(r) for r in rows}) > 1

