"""Running host tools (ip, bridge, nsenter, ...) with errors that say what failed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from functools import cache
from typing import TypeVar

from ..errors import GuestHostError

T = TypeVar("T")

# Everything the runtime executes on the host side; the Linux family also needs sshd.
REQUIRED_TOOLS = ("ip", "bridge", "nsenter", "unshare", "setpriv", "mount", "pivot_root", "dnsmasq", "dhclient")
LINUX_GUEST_TOOLS = ("sshd",)

_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Starting a fixed, existing program cannot legitimately fail with EFAULT, yet once in
# about four full test runs the exec of /usr/sbin/ip in this many-threaded process did
# ("[Errno 14] Bad address"; CPython starts it with vfork). A guest whose boot hit it
# stayed on without an OS until the caller's timeout, so such a start is tried again.
_EXEC_ATTEMPTS = 3


def start_retrying_efault(start: Callable[[], T]) -> T:
    """``start()`` (a process start), tried again when the exec fails with EFAULT."""
    for _ in range(_EXEC_ATTEMPTS - 1):
        try:
            return start()
        except OSError as exc:
            if exc.errno != errno.EFAULT:
                raise
    return start()


@cache
def tool(name: str) -> str:
    """Absolute path of a host tool; sbin directories are searched even if not on PATH."""
    path = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{_SBIN_PATH}")
    if path is None:
        raise GuestHostError(f"required program {name!r} not found (install iproute2, util-linux, ...)")
    return path


def missing_tools(names: Sequence[str] = REQUIRED_TOOLS + LINUX_GUEST_TOOLS) -> list[str]:
    """Names of the required host tools that are not installed."""
    missing = []
    for name in names:
        try:
            tool(name)
        except GuestHostError:
            missing.append(name)
    return missing


def run(argv: Sequence[str], *, input: str | None = None, timeout: float = 30.0, check: bool = True) -> str:
    """Run a host command and return its stdout; raise GuestHostError with stderr on failure."""
    command = [tool(argv[0]), *argv[1:]]
    try:
        proc = start_retrying_efault(
            lambda: subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        )
    except OSError as exc:
        raise GuestHostError(f"could not start {argv[0]}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise GuestHostError(f"{' '.join(argv)} timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        detail = proc.stderr.strip() or proc.stdout.strip()
        raise GuestHostError(f"{' '.join(argv)!s} failed ({proc.returncode}): {detail}")
    return proc.stdout


def ip_batch(lines: Sequence[str], *, netns: str | None = None, check: bool = True) -> None:
    """Run several ``ip`` commands in one process (``ip -batch``): fewer forks on the boot path."""
    argv = ["ip", *(("-n", netns) if netns else ()), "-batch", "-"]
    run(argv, input="\n".join(lines) + "\n", check=check)
