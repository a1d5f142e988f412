"""StartProgramInGuest: spawning a program in a guest the way VMware Tools does.

Linux (open-vm-tools): the command line is ``"<program>" <arguments>`` run by
``/bin/sh -c`` as the user, in the working directory (default: the user's home),
stdin/stdout/stderr on /dev/null. The program path must exist (FileNotFound).
Windows: the emulated command shell runs the program (windows/cmd/cli.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import IO

from ..accounts import Account
from ..disk import GuestDisk
from ..errors import (
    GuestFileNotFound,
    GuestHostError,
    GuestInvalidArgument,
    GuestNotAFile,
    GuestProgramNotFound,
)
from ..host.daemons import python_env, windows_context_args
from ..host.namespace import GuestNamespace
from ..paths import home_dir, temp_dir, to_view

CMD_SHELL_MODULE = "pytest_vsphere_clone.simulator.guests.windows.cmd.cli"

# Runs as the user inside the guest: checks as that user, then becomes the program (exec keeps
# the pid VMware reports: the process's pid in the guest). $1 program, $2 working directory,
# $3 command line.
_LINUX_LAUNCHER = """\
[ -e "$1" ] || { echo nofile; exit 127; }
[ ! -d "$1" ] || { echo isdir; exit 126; }
cd "$2" 2>/dev/null || { echo nodir; exit 127; }
echo ok
exec /bin/sh -c "$3" </dev/null >/dev/null 2>&1
"""
_ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games"


def command_line(program_path: str, arguments: str, family: str = "linux") -> str:
    """The command line VMware Tools builds: the program path quoted, the arguments verbatim.

    On Linux it is run by /bin/sh, so the path is escaped for double quotes.
    """
    if family == "linux":
        program_path = re.sub(r'([\\"$`])', r"\\\1", program_path)
    return f'"{program_path}" {arguments}'.rstrip()


def parse_env(env: list[str]) -> dict[str, str]:
    """``NAME=value`` strings as a mapping."""
    parsed = {}
    for item in env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise GuestInvalidArgument(f"environment variable must look like NAME=value: {item!r}")
        parsed[name] = value
    return parsed


def linux_environment(account: Account, env: list[str] | None) -> dict[str, str]:
    """The program's environment: exactly ``env`` if given (the API's rule), else a login-like one."""
    if env is not None:
        return parse_env(env)
    return {
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": account.shell,
        "PATH": _ROOT_PATH if account.uid == 0 else _USER_PATH,
        "LANG": "C.UTF-8",
    }


def windows_environment(user: str, hostname: str, env: list[str] | None) -> dict[str, str]:
    """A Windows-like environment, plus what the emulator's own Python needs."""
    if env is not None:
        return python_env(parse_env(env))
    profile = home_dir("windows", user)
    temp = temp_dir("windows", user)
    return python_env(
        {
            "USERNAME": user,
            "USERPROFILE": profile,
            "HOMEDRIVE": "C:",
            "HOMEPATH": profile[2:],
            "TEMP": temp,
            "TMP": temp,
            "COMPUTERNAME": hostname.split(".")[0].upper(),
            "SystemRoot": "C:\\Windows",
            "windir": "C:\\Windows",
            "ComSpec": "C:\\Windows\\System32\\cmd.exe",
            "OS": "Windows_NT",
        }
    )


def _read_all(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    with stream:
        return stream.read().decode(errors="replace").strip()


def spawn_linux(
    ns: GuestNamespace,
    account: Account,
    program_path: str,
    arguments: str,
    working_directory: str | None,
    env: list[str] | None,
) -> subprocess.Popen[bytes]:
    """Start a program as ``account``; raise a guest error if the program or directory is missing."""
    to_view("linux", program_path)  # validates: absolute, no NUL
    cwd = working_directory or account.home
    to_view("linux", cwd)
    argv = ["/bin/sh", "-c", _LINUX_LAUNCHER, "launch", program_path, cwd, command_line(program_path, arguments)]
    proc = ns.spawn(
        argv,
        uid=account.uid,
        gid=account.gid,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=linux_environment(account, env),
        start_new_session=True,  # not in the simulator's process group: no stray SIGINT or SIGHUP
    )
    # Both pipes reach EOF when the launcher execs the program with /dev/null as output.
    status, errors = _read_all(proc.stdout), _read_all(proc.stderr)
    if status == "ok":
        return proc
    proc.wait()
    if status == "nofile":
        raise GuestProgramNotFound(f"program {program_path} not found in the guest", program_path)
    if status == "isdir":
        raise GuestNotAFile(f"program {program_path} is a directory", program_path)
    if status == "nodir":
        raise GuestFileNotFound(f"working directory {cwd} not found in the guest", cwd)
    raise GuestHostError(f"could not start {program_path} (status {proc.returncode}): {errors}")


def spawn_windows(
    ns: GuestNamespace,
    disk: GuestDisk,
    user: str,
    hostname: str,
    program_path: str,
    arguments: str,
    working_directory: str | None,
    env: list[str] | None,
    exit_code_file: str,
    powershell_start: tuple[float, float] = (0.0, 0.0),
) -> subprocess.Popen[bytes]:
    """Start a program through the emulated Windows command shell.

    ``exit_code_file`` (guest view) receives the exact exit code, which may exceed 255.
    """
    program = _disk_path(disk, program_path)
    if program is None or not program.exists():
        raise GuestProgramNotFound(f"program {program_path} not found in the guest", program_path)
    if program.is_dir():
        raise GuestNotAFile(f"program {program_path} is a directory", program_path)
    cwd = working_directory or home_dir("windows", user)
    cwd_dir = _disk_path(disk, cwd)
    if cwd_dir is None or not cwd_dir.is_dir():
        raise GuestFileNotFound(f"working directory {cwd} not found in the guest", cwd)
    argv = [
        sys.executable, "-m", CMD_SHELL_MODULE, *windows_context_args(user, hostname, powershell_start),
        "--cwd", cwd, "--exit-code-file", exit_code_file, program_path, *([arguments] if arguments else []),
    ]  # fmt: skip
    return ns.spawn(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=windows_environment(user, hostname, env),
        start_new_session=True,
    )


def _disk_path(disk: GuestDisk, guest_path: str) -> Path | None:
    try:
        return disk.host_path(to_view("windows", guest_path))
    except ValueError:  # another drive than C:
        return None
