"""Guest file transfers: InitiateFileTransfer{From,To}Guest hand out URLs served at /guestFile."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .guest_runtime import GuestRuntime

#: An offered transfer must be used within this many seconds, as on ESXi.
TRANSFER_TTL = 300.0


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


class FileTransfers:
    """One-shot transfer tokens, each bound to a guest, user and path."""

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

    def offer_download(self, guest: Any, user: str, path: str) -> tuple[str, int]:
        """A token to GET ``path``; checks now that the file is readable (faults as a vCenter's)."""
        from .guest_runtime import faults_of

        with faults_of(path):
            content = guest.read_file(user, path)
        # Served as read now: one guest file read per transfer, not one to size it and one to send it.
        transfer = _Transfer(guest, user, path, False, time.time() + TRANSFER_TTL, size=len(content), content=content)
        return self._offer(transfer), len(content)

    def offer_upload(self, guest: Any, user: str, path: str, size: int, overwrite: bool) -> str:
        return self._offer(_Transfer(guest, user, path, True, time.time() + TRANSFER_TTL, overwrite, size))

    def handle(self, method: str, token: str, body: bytes) -> tuple[int, bytes]:
        """Serve one /guestFile request: (HTTP status, body)."""
        from .guests.errors import GuestError

        with self._lock:
            transfer = self._transfers.pop(token, None)
        if transfer is None or transfer.expires < time.time():
            return 404, b"unknown or expired transfer"
        if transfer.upload != (method == "PUT"):
            return 405, b"wrong method for this transfer"
        try:
            if transfer.upload:
                transfer.guest.write_file(transfer.user, transfer.path, body, transfer.overwrite)
                return 200, b""
            if transfer.content is not None:
                return 200, transfer.content
            return 200, transfer.guest.read_file(transfer.user, transfer.path)
        except GuestError as exc:
            return 500, str(exc).encode()

    def clear(self) -> None:
        with self._lock:
            self._transfers.clear()
