"""``Clone.put`` / ``Clone.get``: which route carries the bytes, local paths, one-line errors.

Routes: ``sftp`` (Linux: SFTP over the clone's SSH connection) and ``guest`` (VMware Tools Guest
Operations: InitiateFileTransferToGuest/FromGuest and HTTPS to the VM's ESXi host on 443). By
default Linux clones use SFTP and Windows clones Guest Operations; ``via="guest"`` forces Guest
Operations on both. A local path streams (never read whole); a download to a path lands under a
temporary name beside it and is renamed when complete, so a failed one leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

from ..client.errors import FileTransferFailed

if TYPE_CHECKING:
    from .clone import Clone

#: What ``via`` accepts: None/"auto" picks by guest OS; "ssh" is another name for "sftp".
VIA = ("auto", "sftp", "ssh", "guest")
LocalSource = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]
LocalTarget = Union[str, "os.PathLike[str]", None]
_SFTP_REASONS = {2: "not-found", 13: "denied", 1: "denied", 17: "exists", 21: "not-a-file"}  # errno -> reason


def route(clone: Clone, via: str | None) -> str:
    """``sftp`` or ``guest`` for ``clone`` and the caller's ``via``."""
    chosen = "auto" if via is None else via
    if chosen not in VIA:
        raise ValueError(f"via={via!r} is not one of None, {', '.join(repr(v) for v in VIA)}")
    if chosen == "auto":
        return "guest" if clone.os == "windows" else "sftp"
    if chosen in ("sftp", "ssh"):
        if clone.os == "windows":
            raise ValueError(f"via={via!r} needs a Linux clone, and VM {clone.name!r} runs Windows: leave via unset "
                             f"or pass via='guest' (Guest Operations)")
        return "sftp"
    return "guest"


def put(clone: Clone, local: LocalSource, remote: str, *, via: str | None = None, overwrite: bool = True) -> None:
    """Copy ``local`` (bytes, or a local file's path) to ``remote`` in the guest."""
    _check_remote(remote)
    how = route(clone, via)
    with _source(local) as (source, size):
        if how == "guest":
            from ..client import guest_files

            guest_files.upload(clone.guest_operations(), remote, source, size, overwrite=overwrite)
            return
        from ..connection import sftp

        try:
            sftp.put(clone.ssh(), source, size, remote, overwrite=overwrite)
        except OSError as exc:
            raise _sftp_error(clone, "put", remote, exc) from None


def get(clone: Clone, remote: str, local: LocalTarget = None, *, via: str | None = None) -> bytes | None:
    """The content of ``remote`` in the guest: written to the local path ``local``, or returned as
    bytes when ``local`` is None."""
    _check_remote(remote)
    how = route(clone, via)
    if local is None:
        buffer = io.BytesIO()
        _fetch(clone, how, remote, buffer)
        return buffer.getvalue()
    with _sink(local) as sink:
        _fetch(clone, how, remote, sink)
    return None


def _fetch(clone: Clone, how: str, remote: str, sink: IO[bytes]) -> None:
    if how == "guest":
        from ..client import guest_files

        guest_files.download(clone.guest_operations(), remote, sink)
        return
    from ..connection import sftp

    try:
        sftp.get(clone.ssh(), remote, sink)
    except OSError as exc:
        raise _sftp_error(clone, "get", remote, exc) from None


def _check_remote(remote: object) -> None:
    if not isinstance(remote, str) or not remote:
        raise TypeError(f"the guest path must be a non-empty str, not {remote!r}")


def _sftp_error(clone: Clone, operation: str, remote: str, exc: OSError) -> FileTransferFailed:
    user = clone._settings.guest_user if clone._settings is not None else ""
    reason = _SFTP_REASONS.get(exc.errno or 0, "failed")
    detail = "" if reason != "failed" else (exc.strerror or str(exc) or type(exc).__name__)
    return FileTransferFailed.in_guest(operation, clone.name, remote, "SFTP", reason, user or "", detail)


@contextlib.contextmanager
def _source(local: LocalSource) -> Iterator[tuple[IO[bytes], int]]:
    """An open binary stream of ``local`` and its size."""
    if isinstance(local, bytes | bytearray | memoryview):
        data = bytes(local)
        yield io.BytesIO(data), len(data)
        return
    if not isinstance(local, str | os.PathLike):
        raise TypeError(f"put needs bytes or a local path (str or os.PathLike), not {type(local).__name__}")
    path = os.fspath(local)
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed below, after the transfer)
    except FileNotFoundError:
        raise FileTransferFailed.local_path("put", path, "does not exist") from None
    except IsADirectoryError:
        raise FileTransferFailed.local_path("put", path, "is a directory") from None
    except OSError as exc:
        raise FileTransferFailed.local_path("put", path, f"cannot be read ({exc.strerror or exc})") from None
    with stream:
        yield stream, os.fstat(stream.fileno()).st_size


@contextlib.contextmanager
def _sink(local: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A temporary file beside ``local``, renamed to it when the body ran without error."""
    if not isinstance(local, str | os.PathLike):
        raise TypeError(f"get needs a local path (str or os.PathLike) or None, not {type(local).__name__}")
    target = Path(os.fspath(local))
    if target.is_dir():
        raise FileTransferFailed.local_path("get", str(target), "is a directory")
    # A new name beside the target (same file system, so the rename is atomic), made with the
    # process's umask as any file written there would be.
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileNotFoundError:
        raise FileTransferFailed.local_path("get", str(target), "is in a directory that does not exist") from None
    except OSError as exc:
        raise FileTransferFailed.local_path("get", str(target), f"cannot be written ({exc.strerror or exc})") \
            from None
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
