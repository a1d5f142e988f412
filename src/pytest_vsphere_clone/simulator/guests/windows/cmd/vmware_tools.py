"""VMware Tools' command-line programs on Windows guests: ``vmtoolsd.exe --cmd`` and ``rpctool.exe``.

A Windows guest with VMware Tools has them in ``C:\\Program Files\\VMware\\VMware Tools``; both
send one RPC to the virtual machine and print the reply, exactly like the Linux guests'
``vmtoolsd --cmd`` / ``vmware-rpctool`` shims (see vmtools/shims.py), over the same backdoor socket that
the simulator answers. ``instantclone.freeze`` therefore freezes a Windows VM the same way:
every guest process (this one included) is stopped, and the call returns only when the VM runs
again - in each instant clone, never in the frozen source.
"""

from __future__ import annotations

import socket

from .base import CTRL_C_EXIT, Invocation, Program

__all__ = ["PROGRAMS", "send_rpc"]

#: How often a pending RPC checks for Ctrl+C (a WinRM Signal); a freeze stops the process anyway.
_CANCEL_POLL = 0.5


def send_rpc(socket_path: str, command: str, invocation: Invocation) -> tuple[bool, str]:
    """Send ``command`` over the backdoor socket; (succeeded, reply text). Raises OSError if unreachable."""
    chunks: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(socket_path)
        sock.sendall(command.encode())
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(_CANCEL_POLL)
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if invocation.shell.cancel.is_set():
                    raise InterruptedError("cancelled") from None
                continue
            if not chunk:
                break
            chunks.append(chunk)
    reply = b"".join(chunks)
    if not reply:
        return False, "the virtual machine closed the RPC channel"
    return reply[:1] == b"1", reply[1:].decode(errors="replace")


def _rpc(inv: Invocation, name: str, command: str) -> int:
    try:
        ok, text = send_rpc(inv.shell.context.backdoor_socket, command, inv)
    except InterruptedError:
        return CTRL_C_EXIT
    except OSError as exc:
        inv.error(f"{name}: cannot reach the virtual machine: {exc}")
        return 1
    if not ok:
        inv.error(text)
        return 1
    if text:
        inv.print(text)
    return 0


def vmtoolsd(inv: Invocation) -> int:
    """``vmtoolsd.exe --cmd "<rpc>"`` (also ``--cmd=<rpc>``); the service itself is not simulated."""
    args = inv.args
    if len(args) == 2 and args[0] == "--cmd":
        command = args[1]
    elif len(args) == 1 and args[0].startswith("--cmd="):
        command = args[0][len("--cmd=") :]
    else:
        inv.error("usage: vmtoolsd.exe --cmd <command> (the simulated vmtoolsd runs no service)")
        return 1
    return _rpc(inv, "vmtoolsd", command)


def rpctool(inv: Invocation) -> int:
    """``rpctool.exe "<rpc>"``: the Windows counterpart of Linux's vmware-rpctool."""
    args = inv.args
    if len(args) != 1:
        inv.error("usage: rpctool.exe <command>")
        return 1
    return _rpc(inv, "rpctool", args[0])


#: Found by base name like every program of the dialect; the files exist in the Tools directory
#: (context.TOOLS_PROGRAM_FILES) so StartProgramInGuest's existence check passes.
PROGRAMS: dict[str, Program] = {"vmtoolsd": vmtoolsd, "rpctool": rpctool}
