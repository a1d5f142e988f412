"""Running host tools (ip, bridge, nsenter, ...) with errors that say what failed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache

from ..errors import GuestHostError

# Everything the runtime executes on the host side; the Linux family also needs sshd.
REQUIRED_TOOLS = ("ip", "bridge", "nsenter", "unshare", "setpriv", "mount", "pivot_root", "dnsmasq", "dhclient")
LINUX_GUEST_TOOLS = ("sshd",)

_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
    try:
        proc = subprocess.run(
            [tool(argv[0]), *argv[1:]],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
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
