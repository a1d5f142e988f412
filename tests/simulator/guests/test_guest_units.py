"""The guest runtime's pure parts: specs, paths, accounts, command lines, netlink parsing, registry."""

from __future__ import annotations

import importlib
import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from pytest_vsphere_clone.simulator.guests import GuestInvalidArgument, GuestSpec
from pytest_vsphere_clone.simulator.guests.accounts import (
    build_account_files,
    group_ids,
    hash_password,
    parse_passwd,
    parse_shadow,
    verify_password,
)
from pytest_vsphere_clone.simulator.guests.host.daemons import WINRM_MODULE
from pytest_vsphere_clone.simulator.guests.host.host_registry import Allocation, Registry, index_of, tag_for
from pytest_vsphere_clone.simulator.guests.host.linkwatch import link_went_down
from pytest_vsphere_clone.simulator.guests.ops.launch import CMD_SHELL_MODULE, command_line, parse_env
from pytest_vsphere_clone.simulator.guests.ops.programs import exit_code
from pytest_vsphere_clone.simulator.guests.paths import from_view, to_view


@pytest.mark.parametrize("module", [CMD_SHELL_MODULE, WINRM_MODULE])
def test_programs_guests_run_by_module_name_exist(module: str) -> None:
    """Windows guests start these with ``python -m``: a moved module would only fail when a guest starts."""
    assert callable(importlib.import_module(module).main)


def _spec(**kw: object) -> GuestSpec:
    values: dict[str, object] = {
        "vm_id": "vm-1",
        "hostname": "web01.example.com",
        "mac": "00:50:56:AB:CD:EF",
        "family": "linux",
        "disk_dir": "/tmp/disk",
        "user": "alice",
        "password": "pw",
    }
    values.update(kw)
    return GuestSpec(**values)  # type: ignore[arg-type]


def test_spec_normalises_and_validates() -> None:
    spec = _spec()
    assert spec.mac == "00:50:56:ab:cd:ef" and spec.disk_dir == Path("/tmp/disk") and spec.winrm_port == 5985
    for bad in (
        {"mac": "00:50:56:ab:cd"},
        {"mac": "01:00:5e:00:00:01"},  # multicast
        {"family": "solaris"},
        {"user": "bad:user"},
        {"user": "-x"},
        {"hostname": "under_score"},
        {"hostname": "a" * 65},
        {"winrm_port": 0},
        {"authorized_keys": ["ssh-ed25519 AAAA\nssh-rsa BBBB"]},
    ):
        with pytest.raises(ValueError):
            _spec(**bad)


@pytest.mark.parametrize(
    ("guest_path", "view"),
    [
        (r"C:\Users\bob\a.txt", "/mnt/C/Users/bob/a.txt"),
        ("c:/Users//bob/./a.txt", "/mnt/C/Users/bob/a.txt"),
        (r"C:\Users\..\..\Windows", "/mnt/C/Windows"),  # cannot climb out of the drive
        ("D:\\", "/mnt/D"),
    ],
)
def test_windows_paths_map_into_the_drives(guest_path: str, view: str) -> None:
    assert to_view("windows", guest_path) == view


def test_path_validation_and_inverse() -> None:
    assert to_view("linux", "/tmp/x") == "/tmp/x"
    assert from_view("windows", "/mnt/C/Users/bob/t.txt") == r"C:\Users\bob\t.txt"
    for family, path in (("linux", "tmp/x"), ("linux", "/a\0b"), ("windows", r"\Users\x"), ("windows", "C:x")):
        with pytest.raises(GuestInvalidArgument):
            to_view(family, path)  # type: ignore[arg-type]


def test_password_hashes_verify_with_libcrypt() -> None:
    hashed = hash_password("s3cret: with spaces")
    assert hashed.startswith("$6$")
    assert verify_password("s3cret: with spaces", hashed)
    assert not verify_password("s3cret", hashed)
    assert not verify_password("", "!") and not verify_password("x", "*") and not verify_password("x", "")


HOST_PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:102:65534::/run/sshd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
hostuser:x:1000:1000::/home/hostuser:/bin/bash
"""
HOST_GROUP = "root:x:0:\nsudo:x:27:hostuser\nshadow:x:42:\nnogroup:x:65534:\nhostuser:x:1000:\n"


def test_guest_accounts_keep_system_users_and_drop_host_users() -> None:
    files = build_account_files(HOST_PASSWD, HOST_GROUP, "alice", "pw", "/home/alice", "/bin/bash")
    accounts = parse_passwd(files.passwd)
    assert set(accounts) == {"root", "daemon", "sshd", "nobody", "alice"}
    alice = accounts["alice"]
    assert (alice.uid, alice.gid, alice.home) == (1000, 1000, "/home/alice")
    shadow = parse_shadow(files.shadow)
    assert verify_password("pw", shadow["alice"]) and shadow["root"] == "*"
    assert group_ids(files.group, alice) == [27, 1000]  # the default user may sudo; hostuser is gone
    assert "hostuser" not in files.group and "hostuser" not in files.gshadow


def test_root_as_guest_user_gets_the_password() -> None:
    files = build_account_files(HOST_PASSWD, HOST_GROUP, "root", "pw", "/root", "/bin/bash")
    assert verify_password("pw", parse_shadow(files.shadow)["root"])
    assert len(parse_passwd(files.passwd)) == 4


def test_command_lines_follow_vmware_tools() -> None:
    assert command_line("/bin/sh", "-c 'echo $HOME > /tmp/x'") == "\"/bin/sh\" -c 'echo $HOME > /tmp/x'"
    assert command_line('/opt/we"ird $dir/run', "") == '"/opt/we\\"ird \\$dir/run"'
    assert command_line(r"C:\Windows\System32\cmd.exe", "/c ver", "windows") == r'"C:\Windows\System32\cmd.exe" /c ver'
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(GuestInvalidArgument):
        parse_env(["NOVALUE"])
    assert (exit_code(3), exit_code(-9)) == (3, 137)


def _rtm_newlink(index: int, flags: int) -> bytes:
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0)
    return struct.pack("=IHHII", 16 + len(body), 16, 0, 0, 0) + body


def test_netlink_link_down_detection() -> None:
    up, down = 0x1 | 0x40, 0x0
    assert link_went_down(_rtm_newlink(2, up) + _rtm_newlink(2, down), 2)
    assert not link_went_down(_rtm_newlink(2, up), 2)
    assert not link_went_down(_rtm_newlink(3, down), 2)
    assert not link_went_down(b"\x00" * 7, 2)


def test_names_carry_the_index() -> None:
    assert tag_for(7) == "pvcs007"
    assert [index_of(n) for n in ("pvcs007", "pvcs007-br", "pvcs012-33", "pvcs1234", "pvcsx", "eth0")] == [
        7, 7, 12, None, None, None,
    ]  # fmt: skip
    assert len(f"{tag_for(999)}-9999999") <= 15  # Linux interface name limit


def test_registry_claims_distinct_subnets_and_sweeps_dead_owners(tmp_path: Path) -> None:
    # A range of its own: subnets that live GuestHosts route (other tests, other workers) are skipped.
    registry = Registry(tmp_path / "reg", "198.18.0.0/16")
    swept: list[tuple[int, Allocation | None]] = []

    def sweep(index: int, allocation: Allocation | None) -> None:
        swept.append((index, allocation))

    first = registry.allocate("a", tmp_path, sweep=sweep, scan=set)
    second = registry.allocate("b", tmp_path, sweep=sweep, scan=set)
    assert first.index != second.index and first.subnet != second.subnet and swept == []
    assert first.runtime_dir == str(tmp_path.resolve() / first.tag)

    # An owner that died (here: a finished child process) and an orphan tag without entry.
    dead = subprocess.Popen(["true"])
    dead.wait()
    entry = json.loads((tmp_path / "reg" / f"{first.tag}.json").read_text())
    (tmp_path / "reg" / f"{first.tag}.json").write_text(json.dumps({**entry, "owner_pid": dead.pid}))
    third = registry.allocate("c", tmp_path, sweep=sweep, scan=lambda: {second.index, 77})

    assert sorted(i for i, _ in swept) == [first.index, 77]
    assert third.index == first.index  # the dead owner's index is free again
    registry.release(second)
    registry.release(third)
    assert not list((tmp_path / "reg").glob("*.json"))
    assert os.path.exists(tmp_path / "reg" / "lock")


def test_a_host_tool_start_that_fails_with_efault_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen once in about four full runs: exec of /usr/sbin/ip failed with EFAULT and a guest never booted.

    EFAULT cannot be provoked on purpose, so the failure is injected (subprocess.run patched for
    its first call only); the second call runs the real ``ip``.
    """
    from pytest_vsphere_clone.simulator.guests.host import host_tools

    real_run = subprocess.run
    calls: list[object] = []

    def flaky_run(*args: object, **kwargs: object) -> object:
        calls.append(args)
        if len(calls) == 1:
            raise OSError(14, "Bad address", "/usr/sbin/ip")
        return real_run(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", flaky_run)
    assert "ip utility" in host_tools.run(["ip", "-V"])
    assert len(calls) == 2


def test_a_host_tool_that_cannot_start_is_one_guest_host_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any other start failure is not repeated and names the tool (not a bare OSError from deep inside)."""
    from pytest_vsphere_clone.simulator.guests.errors import GuestHostError
    from pytest_vsphere_clone.simulator.guests.host import host_tools

    def refused(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", "/usr/sbin/ip")

    monkeypatch.setattr(subprocess, "run", refused)
    with pytest.raises(GuestHostError, match="could not start ip: Permission denied"):
        host_tools.run(["ip", "-V"])
