"""Host side of a guest's backdoor: a unix socket carrying one RPC per connection.

Protocol: the guest writes the RPC text and shuts down its write side; the host
answers ``b"1" + reply`` on success or ``b"0" + error`` on failure and closes.
The socket lives in the guest's tools directory, so the socket a connection
arrives on identifies the guest - a guest cannot speak for another VM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..host.events import EventLoopThread

RpcHandler = Callable[[str], Awaitable[str]]
_MAX_REQUEST = 64 * 1024
_READ_TIMEOUT = 10.0


def bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, whatever the path's length.

    sun_path holds only 108 bytes; binding through /proc/self/fd/<dir> keeps the
    address short however deep the state directory is.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        path.unlink(missing_ok=True)
        sock.bind(f"/proc/self/fd/{dir_fd}/{path.name}")
    except OSError:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    path.chmod(0o666)  # any guest user may call the tools
    sock.listen(16)
    sock.setblocking(False)
    return sock


class BackdoorServer:
    """Serves one guest's backdoor socket on the GuestHost's event loop."""

    def __init__(self, events: EventLoopThread, path: Path, handler: RpcHandler) -> None:
        self._events = events
        self.path = path
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        sock = bind_unix(self.path)

        async def serve() -> asyncio.AbstractServer:
            return await asyncio.start_unix_server(self._serve, sock=sock)

        self._server = self._events.run(serve())

    def stop(self) -> None:
        """Stop listening and abort RPCs in flight (e.g. a freeze waiting for its thaw)."""
        if self._server is None:
            return
        server, self._server = self._server, None

        async def close() -> None:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        self._events.run(close())
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # always set inside a running task
        self._tasks.add(task)
        try:
            request = await asyncio.wait_for(_read_to_eof(reader), _READ_TIMEOUT)
            command = request.decode(errors="replace").rstrip("\r\n")
            try:
                payload = b"1" + (await self._handler(command)).encode()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the RPC failed: the guest sees the message, exit code 1
                payload = b"0" + (str(exc) or type(exc).__name__).encode()
            writer.write(payload)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # The server is stopping (e.g. a freeze RPC still pending): nothing awaits this task, so
            # ending quietly is right; re-raising only makes asyncio log a traceback.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """The whole request: the client signals its end by shutting down its write side."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await reader.read(_MAX_REQUEST):
        size += len(chunk)
        if size > _MAX_REQUEST:
            raise ConnectionError("RPC request too long")
        chunks.append(chunk)
    return b"".join(chunks)
