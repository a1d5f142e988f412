"""Frozen sources outlive the shell that started ``vsphere-clone simulator`` in the background.

When a process exits and so orphans a process group that has stopped members, the kernel
sends SIGHUP, then SIGCONT, to that group (POSIX _exit(): "If the exit of the process causes
a process group to become orphaned, and if any member of the newly-orphaned process group is
stopped, then a SIGHUP signal followed by a SIGCONT signal shall be sent to each process in
the newly-orphaned process group"). A shell with job control puts a background job in a
group of its own; when the shell exits, that group is orphaned. A frozen guest's processes
are stopped: in the simulator's group they would die of the SIGHUP (and every later instant
clone would fail), or be resumed by the SIGCONT.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from guest_helpers import require_guest_support
from pyVim.connect import SmartConnect
from pyVmomi import vim
from sim_helpers import close, vm_by_name, wait

from pytest_vsphere_clone.simulator.guests.host import procfs

pytestmark = pytest.mark.guests

# Runs the command in the background with job control, waits for the test's go, then exits.
_SHELL = """\
set -m
"$@" > "$OUT" 2>&1 &
echo $! > "$PIDFILE"
while [ ! -e "$GO" ]; do sleep 0.05; done
exit 0
"""


def _until(check: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll a condition; the deadline only bounds a hang (nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a host process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def _stopped_descendants(root: int) -> dict[int, int]:
    """Stopped processes below ``root``: pid -> process group."""
    stats = {pid: st for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if (st := _stat(pid))}
    below: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, (_, ppid, _) in stats.items() if ppid in frontier} - below
        below |= frontier
    return {pid: stats[pid][2] for pid in below if stats[pid][0] in ("T", "t")}


def _facts(out: Path) -> dict[str, str]:
    text = out.read_text() if out.exists() else ""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _connect(facts: dict[str, str]) -> Any:
    host, port = facts["HOST"].rsplit(":", 1)
    context = ssl.create_default_context(cafile=facts["CA_FILE"])
    return SmartConnect(host=host, port=int(port), user=facts["USER"], pwd=facts["PASSWORD"], sslContext=context)


def test_frozen_sources_survive_the_exit_of_the_shell_that_started_the_simulator(tmp_path: Path) -> None:
    require_guest_support()
    out, go, pidfile = tmp_path / "facts", tmp_path / "go", tmp_path / "pid"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSPHERE_")}
    env.update(OUT=str(out), GO=str(go), PIDFILE=str(pidfile))
    shell = subprocess.Popen(  # a session of its own, as a terminal's shell has
        ["bash", "-c", _SHELL, "shell", sys.executable, "-m", "pytest_vsphere_clone.cli", "simulator"],
        env=env, start_new_session=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    simulator = 0
    si = None
    try:
        _until(lambda: "GUEST_KEY" in _facts(out), what="the simulator's facts")
        simulator = int(pidfile.read_text())
        facts = _facts(out)
        si = _connect(facts)
        source = vm_by_name(si, "linux-frozen")
        assert source.runtime.instantCloneFrozen
        _until(lambda: _stopped_descendants(simulator), what="the frozen guests' processes stopped")
        frozen = _stopped_descendants(simulator)
        assert os.getpgid(simulator) == simulator  # the job's own group, in the shell's session
        assert simulator not in frozen.values()  # no stopped process in it: the kernel has no reason to signal it

        go.touch()
        assert shell.wait(30) == 0  # the shell is gone: the simulator's group is orphaned

        assert procfs.is_alive(simulator)
        clone = wait(source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(
            name="after-the-shell", location=vim.vm.RelocateSpec())))
        assert clone.runtime.powerState == "poweredOn"
        _until(lambda: clone.guest.toolsRunningStatus == "guestToolsRunning", what="Tools in the clone")
        auth = vim.vm.guest.NamePasswordAuthentication(username=facts["GUEST_USER"], password=facts["GUEST_PASSWORD"])
        processes = si.content.guestOperationsManager.processManager
        pid = processes.StartProgramInGuest(clone, auth, vim.vm.guest.ProcessManager.ProgramSpec(
            programPath="/bin/sh", arguments="-c 'test \"$(hostname)\" != \"\"'"))
        _until(lambda: processes.ListProcessesInGuest(clone, auth, [pid])[0].exitCode is not None, what="exit")
        assert processes.ListProcessesInGuest(clone, auth, [pid])[0].exitCode == 0
        # Every frozen process is still there and still stopped: none died, none was resumed.
        assert _stopped_descendants(simulator).items() >= frozen.items()
        assert source.runtime.instantCloneFrozen

        wait(clone.PowerOffVM_Task())
        wait(clone.Destroy_Task())
    finally:
        if si is not None:
            close(si)
        go.touch()
        if shell.poll() is None:
            shell.kill()
        shell.wait()
        if simulator and procfs.is_alive(simulator):
            os.kill(simulator, signal.SIGINT)  # it cleans up after itself
            deadline = time.monotonic() + 60
            while procfs.is_alive(simulator) and time.monotonic() < deadline:
                time.sleep(0.1)
            if procfs.is_alive(simulator):
                os.kill(simulator, signal.SIGKILL)
                pytest.fail("the simulator did not stop on SIGINT")
