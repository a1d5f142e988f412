"""Files over SFTP on an open SSH connection (paramiko): streamed, never held whole in memory.

Errors are paramiko's (``OSError`` with the SFTP status as errno where the server gives one);
the caller words them.
"""

from __future__ import annotations

import errno
import stat
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import paramiko


def put(client: paramiko.SSHClient, source: IO[bytes], size: int, remote: str, *, overwrite: bool = True) -> None:
    """Write ``size`` bytes of ``source`` to ``remote``; without ``overwrite`` an existing file is
    ``FileExistsError`` (checked first: SFTP's exclusive open answers a bare "Failure")."""
    sftp = client.open_sftp()
    try:
        if not overwrite:
            try:
                sftp.stat(remote)
            except FileNotFoundError:
                pass
            else:
                raise FileExistsError(errno.EEXIST, "file exists", remote)
        _refuse_directory(sftp, remote)
        # confirm: the server's size of the file afterwards must be what was sent.
        sftp.putfo(source, remote, file_size=size, confirm=True)
    finally:
        sftp.close()


def get(client: paramiko.SSHClient, remote: str, sink: IO[bytes]) -> int:
    """Copy ``remote`` into ``sink``; returns the byte count."""
    sftp = client.open_sftp()
    try:
        _refuse_directory(sftp, remote)
        return int(sftp.getfo(remote, sink))
    finally:
        sftp.close()


def _refuse_directory(sftp: paramiko.SFTPClient, remote: str) -> None:
    """A directory as ``IsADirectoryError`` (servers answer opening one with a bare "Failure")."""
    try:
        mode = sftp.stat(remote).st_mode
    except OSError:
        return  # missing, or not ours to look at: the open says which
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", remote)
