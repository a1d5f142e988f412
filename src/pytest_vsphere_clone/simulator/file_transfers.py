"""Guest file transfers: InitiateFileTransfer{From,To}Guest hand out URLs served at /guestFile.

Each URL carries a ticket that, as on ESXi, is good for one request within ten minutes, only on the
ESXi host that runs the VM, and only while the VM stays powered on.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .guest_runtime import GuestRuntime

#: Seconds an offered transfer may wait for its request, as on ESXi: a URL from
#: InitiateFileTransferFromGuest/ToGuest is valid for 10 minutes (read at each offer: tests patch it).
TRANSFER_TTL = 600.0


@dataclass
class _Transfer:
    guest: Any
    user: str
    path: str
    upload: bool
    expires: float
    overwrite: bool = False
    size: int = 0
    content: bytes | None = None
    vm_id: str = ""
    #: The MoRef id of the ESXi host whose /guestFile service serves it ("" = any).
    host_id: str = ""
    #: An upload's permissions (GuestPosixFileAttributes.permissions; None: 0644).
    mode: int | None = None


class FileTransfers:
    """Single-use transfer tickets, each bound to a guest, user, path and the VM's host."""

    def __init__(self, runtime: GuestRuntime) -> None:
        self.runtime = runtime
        self._transfers: dict[str, _Transfer] = {}
        self._lock = threading.Lock()

    def _offer(self, transfer: _Transfer) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = time.time()
            for key in [k for k, t in self._transfers.items() if t.expires < now]:
                del self._transfers[key]
            self._transfers[token] = transfer
        return token

    def offer_download(self, guest: Any, user: str, path: str, vm_id: str = "",
                       host_id: str = "") -> tuple[str, int]:
        """A ticket to GET ``path``; checks now that the file is readable (faults as a vCenter's)."""
        from .guest_faults import faults_of

        with faults_of(path):
            content = guest.read_file(user, path)
        # Served as read now: one guest file read per transfer, not one to size it and one to send it.
        transfer = _Transfer(guest, user, path, False, time.time() + TRANSFER_TTL, size=len(content), content=content,
                             vm_id=vm_id, host_id=host_id)
        return self._offer(transfer), len(content)

    def offer_upload(self, guest: Any, user: str, path: str, size: int, overwrite: bool, vm_id: str = "",
                     host_id: str = "", mode: int | None = None) -> str:
        """A ticket to PUT ``size`` bytes to ``path`` (``mode``: the file's permissions, 0644 if None).

        The path is checked now, as VMware Tools checks it before the URL is handed out: an existing
        file without ``overwrite`` is FileAlreadyExists, a directory or link NotAFile, a missing
        directory FileNotFound, one the user may not write GuestPermissionDenied.
        """
        from .guest_faults import faults_of

        if size < 0:
            from pyVmomi import vmodl

            raise vmodl.fault.InvalidArgument(msg="fileSize must not be negative", invalidProperty="fileSize")
        with faults_of(path):
            guest.check_write(user, path, overwrite)
        return self._offer(_Transfer(guest, user, path, True, time.time() + TRANSFER_TTL, overwrite, size,
                                     vm_id=vm_id, host_id=host_id, mode=mode))

    def invalidate_vm(self, vm_id: str) -> int:
        """Drop every ticket of VM ``vm_id`` (it was powered off or destroyed); returns how many."""
        with self._lock:
            gone = [k for k, t in self._transfers.items() if t.vm_id == vm_id]
            for key in gone:
                del self._transfers[key]
        return len(gone)

    def pending(self) -> int:
        """Tickets offered and neither used nor expired (for tests)."""
        now = time.time()
        with self._lock:
            return sum(1 for t in self._transfers.values() if t.expires >= now)

    def handle(self, method: str, token: str, body: bytes, host_id: str = "") -> tuple[int, bytes]:
        """Serve one /guestFile request on the host ``host_id``'s service: (HTTP status, body).

        The ticket is used up by the request, whatever its outcome: a second request with the same
        URL is refused, as ESXi refuses it.
        """
        from .guests.errors import GuestError

        with self._lock:
            transfer = self._transfers.get(token)
            if transfer is not None and (not transfer.host_id or not host_id or transfer.host_id == host_id):
                del self._transfers[token]
            else:
                transfer = None  # another host's ticket is unknown here (and stays valid on its host)
        if transfer is None or transfer.expires < time.time():
            return 404, b"unknown or expired transfer"
        if transfer.upload != (method == "PUT"):
            return 405, b"wrong method for this transfer"
        if transfer.upload and len(body) != transfer.size:
            # The reference does not say what ESXi does with a body of another size than
            # InitiateFileTransferToGuest's fileSize ("Size of the file to transfer to the guest in
            # bytes"); the simulator refuses it and writes nothing, so a client's mistake shows.
            return 400, (f"the request body has {len(body)} bytes, InitiateFileTransferToGuest announced "
                         f"{transfer.size}").encode()
        try:
            if transfer.upload:
                transfer.guest.write_file(transfer.user, transfer.path, body, transfer.overwrite, transfer.mode)
                return 200, b""
            if transfer.content is not None:
                return 200, transfer.content
            return 200, transfer.guest.read_file(transfer.user, transfer.path)
        except GuestError as exc:
            return 500, str(exc).encode()

    def clear(self) -> None:
        with self._lock:
            self._transfers.clear()
