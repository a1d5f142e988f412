"""VirtualMachine.CreateScreenshot_Task: a PNG of the VM's console, saved in the VM's datastore folder.

The reference: "Create a screen shot of a virtual machine. Returns: the datastore path of the
screenshot image" ("[datastore1] vm/vm-1.png"); InvalidPowerState when the VM is not powered on;
privilege VirtualMachine.Interact.CreateScreenshot. The file is then read over HTTPS from the
datastore (``/folder/<path>?dcPath=..&dsName=..``, see datastore_http.py) and goes with the VM
when it is destroyed.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import console
from .base import vmomi_method
from .vm_state import VmState

if TYPE_CHECKING:
    from ..vcenter import CallContext


@dataclass(frozen=True)
class StoredFile:
    """A file with content in a VM's datastore folder (a screenshot)."""

    data: bytes
    created: float


class ScreenshotMethods(VmState):
    """CreateScreenshot_Task and the files it leaves in the VM's folder."""

    if TYPE_CHECKING:
        def vm_path(self) -> str: ...

    def stored_files(self) -> dict[str, StoredFile]:
        """File name -> content of the files with content in this VM's folder (screenshots)."""
        files: dict[str, StoredFile] | None = self.__dict__.get("_stored_files")
        if files is None:
            files = self.__dict__["_stored_files"] = {}
        return files

    def folder_path(self) -> str:
        """The VM's directory on its datastore, relative to the datastore's root (``vm-name``)."""
        return self.vm_path().split("] ", 1)[1].rsplit("/", 1)[0]

    @vmomi_method()
    def CreateScreenshot_Task(self, ctx: CallContext) -> Any:
        def create() -> str:
            with self.vc.lock:
                self.require_power("poweredOn")
                lines = self._console_lines()
            png = console.render(lines)
            with self.vc.lock:
                files = self.stored_files()
                # As ESXi numbers them: <vm>-1.png, <vm>-2.png, ... in the VM's directory.
                number = 1 + sum(1 for name in files if name.endswith(".png"))
                name = f"{self.name}-{number}.png"
                files[name] = StoredFile(png, time.time())
            return f"[{self.datastore.name}] {self.folder_path()}/{name}"

        return self.vc.tasks.start(ctx, self, "CreateScreenshot_Task", "reconfigure", create)

    def _console_lines(self) -> list[str]:
        """What the console shows: the real guest's hostname and address when it runs, else the Tools' report."""
        from .virtual_machine import GUEST_IDS

        hostname = self.tools.host_name or self.name
        address = self.tools.ip_address
        guests = self.vc.guests
        guest = guests.guest_for(self) if guests is not None else None
        if guest is not None:
            hostname = getattr(guest, "hostname", None) or hostname
            primary = getattr(guest, "primary_ip", None)
            if callable(primary):
                # A guest between states: the Tools' last report will do.
                with contextlib.suppress(Exception):
                    address = primary() or address
        family = "windows" if GUEST_IDS.get(self.guest_id, ("",))[0] == "windowsGuest" else "linux"
        os_name = GUEST_IDS.get(self.guest_id, ("", ""))[1] if family == "windows" else ""
        return console.login_screen(family, hostname, address, os_name)
