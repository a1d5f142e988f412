"""Remote shells and their commands: the state WS-Man's shell actions share, and the output buffer.

A ``RemoteShell`` is what Create makes (owner, encoding, working directory, environment, idle
timeout); a ``RemoteCommand`` is one Command's run: its output queued by stream as the program
writes it, handed to Receive in chunks within a byte budget, and its exit code once it ends.
"""

from __future__ import annotations

import codecs
import threading
import time
from dataclasses import dataclass, field

_CHUNK = 8192


def codepage_encoding(codepage: str | None) -> str:
    """The Python codec of a WINRS_CODEPAGE option (UTF-8 when absent or unknown)."""
    if codepage is None or codepage.strip() == "65001":
        return "utf-8"
    try:
        return codecs.lookup(f"cp{int(codepage)}").name
    except (ValueError, LookupError):
        return "utf-8"


class RemoteCommand:
    """A running (or finished) command and the output not yet received."""

    def __init__(self, command_id: str, encoding: str) -> None:
        self.id = command_id
        self.encoding = encoding
        self.cancel = threading.Event()
        self._cond = threading.Condition()
        self._pending: list[tuple[str, bytearray]] = []
        self.exit_code: int | None = None

    def feed(self, stream: str, text: str) -> None:
        try:
            data = text.encode(self.encoding, "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode(self.encoding, "replace")
        with self._cond:
            # Consecutive writes to one stream coalesce; stream order is preserved otherwise.
            if self._pending and self._pending[-1][0] == stream:
                self._pending[-1][1].extend(data)
            else:
                self._pending.append((stream, bytearray(data)))
            self._cond.notify_all()

    def finish(self, exit_code: int) -> None:
        with self._cond:
            self.exit_code = exit_code
            self._cond.notify_all()

    def take(self, budget: int, timeout: float) -> tuple[list[tuple[str, bytes]], int | None] | None:
        """Wait for output or completion; None when ``timeout`` passes with neither."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._pending and self.exit_code is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            chunks: list[tuple[str, bytes]] = []
            while self._pending and budget > 0:
                stream, data = self._pending[0]
                piece = bytes(data[: min(_CHUNK, budget)])
                del data[: len(piece)]
                if not data:
                    self._pending.pop(0)
                chunks.append((stream, piece))
                budget -= len(piece)
            done = self.exit_code if not self._pending else None
            return chunks, done


@dataclass
class RemoteShell:
    """A remote shell (rsp:Shell) of one user, and its commands by CommandId."""

    id: str
    owner: str
    client_ip: str
    encoding: str
    working_directory: str | None
    environment: dict[str, str]
    idle_timeout: float
    input_streams: str
    output_streams: str
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    commands: dict[str, RemoteCommand] = field(default_factory=dict)
