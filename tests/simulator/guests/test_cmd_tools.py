"""VMware Tools' programs in the cmd.exe dialect (vmtoolsd.exe --cmd, rpctool.exe) against a fake backdoor.

Pure logic, no root: the backdoor is a unix socket served by a thread, answering as the simulator
does ("1" + reply for success, "0" + message for failure). The real backdoor and freeze are
exercised in test_windows_guest.py and tests/cli/test_cli_freeze.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_vsphere_clone.simulator.guests.windows.cmd.shell import CmdShell
from pytest_vsphere_clone.simulator.guests.windows.context import WindowsGuestContext

TOOLS = r"C:\Program Files\VMware\VMware Tools"
CRLF = "\r\n"


class FakeBackdoor:
    """Answers RPCs on a unix socket: ``info-get guestinfo.ip`` succeeds, everything else fails."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls: list[str] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        command = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
        self.calls.append(command)
        conn.sendall(b"110.0.0.5" if command == "info-get guestinfo.ip" else b"0Unknown command")

    def close(self) -> None:
        self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
        self._server.close()
        self._thread.join(5)


@pytest.fixture
def backdoor(tmp_path: Path) -> Iterator[FakeBackdoor]:
    server = FakeBackdoor(tmp_path / "backdoor.sock")
    yield server
    server.close()


@pytest.fixture
def shell(tmp_path: Path, backdoor: FakeBackdoor) -> CmdShell:
    context = WindowsGuestContext("win-tools", tmp_path / "disk", "Administrator", backdoor_socket=str(backdoor.path))
    context.prepare_disk()
    return CmdShell(context)


def test_tools_programs_exist_where_the_installer_puts_them(shell: CmdShell) -> None:
    # Real files, so StartProgramInGuest's existence check passes for the full path.
    for name in ("vmtoolsd.exe", "rpctool.exe"):
        assert shell.host_path(rf"{TOOLS}\{name}").is_file()
    assert shell.run(rf'dir /b "{TOOLS}"').stdout.split(CRLF)[:2] == ["rpctool.exe", "vmtoolsd.exe"]
    assert TOOLS + "\\" in shell.env["PATH"].split(";")


@pytest.mark.parametrize("line", [
    'vmtoolsd --cmd "info-get guestinfo.ip"',
    'vmtoolsd.exe --cmd "info-get guestinfo.ip"',
    'VMTOOLSD.EXE "--cmd=info-get guestinfo.ip"',
    rf'""{TOOLS}\vmtoolsd.exe" --cmd "info-get guestinfo.ip""',  # cmd /c's outer quotes around a quoted path
    'rpctool "info-get guestinfo.ip"',
    rf'""{TOOLS}\rpctool.exe" "info-get guestinfo.ip""',
])
def test_an_rpc_prints_the_reply(shell: CmdShell, backdoor: FakeBackdoor, line: str) -> None:
    result = shell.run(line)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "10.0.0.5" + CRLF, "")
    assert backdoor.calls == ["info-get guestinfo.ip"]


def test_started_directly_by_its_full_path(shell: CmdShell, backdoor: FakeBackdoor) -> None:
    # What StartProgramInGuest does (and `vsphere-clone freeze` for Windows): no cmd.exe in between.
    result = shell.run_program(rf"{TOOLS}\vmtoolsd.exe", '--cmd "instantclone.freeze"')
    assert backdoor.calls == ["instantclone.freeze"]
    assert (result.exit_code, result.stderr) == (1, "Unknown command" + CRLF)  # this fake refuses it


def test_a_refused_rpc_exits_1_with_the_reason(shell: CmdShell) -> None:
    result = shell.run('vmtoolsd --cmd "info-get guestinfo.nope"')
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "Unknown command" + CRLF)
    assert shell.run('vmtoolsd --cmd "info-get guestinfo.nope" 2>nul || echo failed').stdout == "failed" + CRLF


def test_usage_errors(shell: CmdShell, backdoor: FakeBackdoor) -> None:
    for line in ("vmtoolsd", 'vmtoolsd --cmd "a" extra', "rpctool", "rpctool a b"):
        result = shell.run(line)
        assert result.exit_code == 1 and result.stderr.startswith("usage: "), line
    assert backdoor.calls == []


def test_unreachable_backdoor(tmp_path: Path) -> None:
    context = WindowsGuestContext("win-tools", tmp_path / "disk", backdoor_socket=str(tmp_path / "none.sock"))
    context.prepare_disk()
    result = CmdShell(context).run('vmtoolsd --cmd "info-get guestinfo.ip"')
    assert result.exit_code == 1
    assert result.stderr.startswith("vmtoolsd: cannot reach the virtual machine: ")
