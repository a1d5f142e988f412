"""Helpers for the real-guest tests: SSH, waiting on guest programs, a recording backdoor."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from pytest_vsphere_clone.simulator.guests import (
    Guest,
    GuestProcessInfo,
    GuestSpec,
    missing_prerequisites,
)
from pytest_vsphere_clone.simulator.guests import copy_disk as copy_disk_dir

PASSWORD = "Pa55 w0rd:!"  # spaces and colons: must survive passwd/shadow handling

# The conftest fixtures ``make_spec`` and ``make_guest``.
MakeSpec = Callable[..., GuestSpec]
MakeGuest = Callable[..., Guest]


def require_guest_support(family: str = "linux") -> None:
    problems = missing_prerequisites(family)
    if problems:
        pytest.skip("real guests unavailable: " + "; ".join(problems))


@dataclass
class RpcRecorder:
    """Backdoor handler that records calls; answers from ``replies``, fails unknown ``info-get`` keys."""

    replies: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, vm_id: str, command: str) -> str:
        self.calls.append((vm_id, command))
        if command in self.replies:
            return self.replies[command]
        if command.startswith("info-get "):
            raise LookupError("No value found")
        return ""


def copy_disk(guest: Guest, destination: Path) -> Path:
    """What the simulator does for a clone: copy the VM's disk directory."""
    copy_disk_dir(guest.spec.disk_dir, destination)
    return destination


def ssh(ip: str, user: str, password: str | None = None, pkey: paramiko.PKey | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(ip, username=user, password=password, pkey=pkey, look_for_keys=False, allow_agent=False, timeout=10)
    return client


def ssh_run(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _, stdout, _ = client.exec_command(command, timeout=10)
    out = stdout.read().decode()
    return stdout.channel.recv_exit_status(), out


def wait_exit(guest: Guest, pid: int, timeout: float = 15.0) -> GuestProcessInfo:
    """Poll ListProcessesInGuest until the program has an exit code, as a vSphere client does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (info,) = guest.list_processes([pid])
        if info.exit_code is not None:
            return info
        time.sleep(0.01)
    raise AssertionError(f"process {pid} still running after {timeout} s")


def run_in_guest(guest: Guest, user: str, program: str, arguments: str = "", **kw: object) -> int:
    """StartProgramInGuest and wait: the exit code."""
    code = wait_exit(guest, guest.start_program(user, program, arguments, **kw)).exit_code  # type: ignore[arg-type]
    assert code is not None
    return code


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
