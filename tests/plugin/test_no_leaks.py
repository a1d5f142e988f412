"""No leaks, ever: signals in every phase, killed workers, expired sessions, secrets in outputs.

Each scenario runs a real pytest process against a simulator with real guests that lives in
this test process, so the inventory can be inspected after the run. The signal is sent when
the run reaches a phase, seen in its output (the plugin's progress lines) or in the simulator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem

pytestmark = pytest.mark.guests

TEMPLATES = {"linux-frozen", "linux-template", "windows-frozen", "windows-template"}
SLOW_TEST = """
import time, pytest

@pytest.mark.parametrize("i", range({count}))
def test_slow(vsphere_vm, i):
    print("TEST-RUNNING", flush=True)
    time.sleep({sleep})
"""


@pytest.fixture(autouse=True)
def _clean_profile(sim: Simulator) -> Iterator[None]:
    """Scenarios slow some operations down; each starts from the fast profile and no faults."""
    assert sim.vc is not None
    times = dict(sim.vc.profile.times)
    yield
    sim.vc.profile.times.clear()
    sim.vc.profile.times.update(times)
    sim.clear_faults()


class Run:
    """A pytest process against ``sim``, with its output collected line by line."""

    def __init__(self, sim: Simulator, tmp_path: Path, test_source: str, *args: str) -> None:
        facts = sim.connection_facts()
        self.secrets = (facts["PASSWORD"], facts["GUEST_PASSWORD"])
        (tmp_path / "test_scenario.py").write_text(test_source)
        env = dict(os.environ, VSPHERE_PASSWORD=facts["PASSWORD"], VSPHERE_GUEST_PASSWORD=facts["GUEST_PASSWORD"],
                   PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path),
             f"--vsphere-host={facts['HOST']}", f"--vsphere-user={facts['USER']}",
             f"--vsphere-ca-bundle={facts['CA_FILE']}", "--vsphere-template=linux-template",
             f"--vsphere-guest-user={facts['GUEST_USER']}", "--vsphere-connect-timeout=20",
             "--vsphere-ip-timeout=20", "--vsphere-clone-timeout=30", *args],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """Read output until a line satisfies ``predicate``."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if predicate(line):
                return line
        raise AssertionError("the run never got there:\n" + "".join(self.lines[-40:]))

    def finish(self, timeout: float = 90.0) -> tuple[int, str]:
        out, _ = self.process.communicate(timeout=timeout)
        text = "".join(self.lines) + out
        return self.process.returncode, text


def _left(sim: Simulator) -> set[str]:
    return set(sim.vm_names()) - TEMPLATES


def _settled(sim: Simulator, seconds: float = 1.5) -> set[str]:
    """What is left once any task still running on the server had time to finish."""
    time.sleep(seconds)
    return _left(sim)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_the_clone_task_is_in_flight(sim: Simulator, tmp_path: Path, signum: int) -> None:
    assert sim.vc is not None
    sim.vc.profile.times["clone.linked"] = (2.0, 2.0)
    run = Run(sim, tmp_path, SLOW_TEST.format(count=1, sleep=5))
    run.wait_for(lambda line: "cloning linux-template" in line)
    time.sleep(0.5)  # the task is queued or running on the server now
    run.process.send_signal(signum)
    code, output = run.finish()
    assert code != 0
    assert _settled(sim, 2.5) == set(), output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_discovery(sim: Simulator, tmp_path: Path, signum: int) -> None:
    sim.inject_fault("StartProgramInGuest", delay=2.0, count=-1)
    run = Run(sim, tmp_path, SLOW_TEST.format(count=1, sleep=5))
    run.wait_for(lambda line: "cloning linux-template" in line)
    deadline = time.monotonic() + 10
    while not _left(sim) and time.monotonic() < deadline:  # the clone exists: discovery is under way
        time.sleep(0.05)
    time.sleep(0.3)
    run.process.send_signal(signum)
    code, output = run.finish()
    assert code != 0
    sim.clear_faults()
    assert _settled(sim) == set(), output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_test(sim: Simulator, tmp_path: Path, signum: int) -> None:
    run = Run(sim, tmp_path, SLOW_TEST.format(count=1, sleep=30))
    run.wait_for(lambda line: "TEST-RUNNING" in line)
    assert len(_left(sim)) == 1
    run.process.send_signal(signum)
    code, output = run.finish()
    assert code != 0
    assert _settled(sim, 0.2) == set(), output


def test_sigterm_to_the_xdist_controller(sim: Simulator, tmp_path: Path) -> None:
    run = Run(sim, tmp_path, SLOW_TEST.format(count=2, sleep=30), "-n", "2")
    deadline = time.monotonic() + 30
    while len(_left(sim)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_left(sim)) == 2
    time.sleep(1.0)
    run.process.send_signal(signal.SIGTERM)
    code, output = run.finish()
    assert code != 0
    assert _settled(sim) == set(), output


def test_a_killed_worker_s_clones_are_destroyed_by_the_controller(sim: Simulator, tmp_path: Path) -> None:
    run = Run(sim, tmp_path, SLOW_TEST.format(count=2, sleep=6), "-n", "2")
    deadline = time.monotonic() + 30
    while len(_left(sim)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = subprocess.run(["pgrep", "-P", str(run.process.pid)], capture_output=True, text=True,
                             check=False).stdout.split()
    assert workers, "no xdist worker found"
    os.kill(int(workers[0]), signal.SIGKILL)
    code, output = run.finish()
    assert code == 1  # the crashed worker's test fails; the run goes on
    assert "crashed" in output
    assert _left(sim) == set(), output


def test_sigkill_of_the_whole_run_is_cleaned_by_the_next_run(sim: Simulator, tmp_path: Path) -> None:
    first = Run(sim, tmp_path, SLOW_TEST.format(count=1, sleep=30))
    first.wait_for(lambda line: "TEST-RUNNING" in line)
    left = _left(sim)
    assert len(left) == 1
    run_dirs = [d for d in Path(tempfile.gettempdir()).glob("vsphere-clone-run-*")
                if (d / "owner").read_text().split()[0] == str(first.process.pid)]
    assert len(run_dirs) == 1
    first.process.kill()
    first.finish()
    assert _left(sim) == left  # SIGKILL: nothing could run; the marker says whose it is
    assert run_dirs[0].exists()
    (tmp_path / "test_scenario.py").unlink()
    second = Run(sim, tmp_path, "def test_nothing():\n    pass\n")
    code, output = second.finish()
    assert code == 0, output
    assert "left by earlier runs" in output
    assert _left(sim) == set()
    assert not run_dirs[0].exists()  # the killed run's files went with its clones


def test_session_expiry_mid_run_is_survived(sim: Simulator, tmp_path: Path) -> None:
    source = """
import pytest

@pytest.mark.parametrize("i", range(2))
def test_expire(vsphere_vm, i):
    assert vsphere_vm.run("true").exit_status == 0
    print("EXPIRE-NOW", flush=True)
    import time; time.sleep(1.0)
"""
    run = Run(sim, tmp_path, source, "--vsphere-scope=function")
    run.wait_for(lambda line: "EXPIRE-NOW" in line)
    sim.expire_sessions()
    code, output = run.finish()
    assert code == 0, output
    assert "2 passed" in output
    assert _left(sim) == set()


def test_secrets_never_appear_in_any_output(sim: Simulator, tmp_path: Path) -> None:
    source = """
def test_fails(vsphere_vm, vsphere_service_instance):
    settings = vsphere_vm._settings
    assert vsphere_vm.run("false").exit_status == 0, repr(vsphere_vm)
"""
    junit = tmp_path / "junit.xml"
    log_file = tmp_path / "run.log"
    run = Run(sim, tmp_path, source, "-l", "-vv", f"--junitxml={junit}", f"--log-file={log_file}",
              "--log-file-level=DEBUG", "--log-level=DEBUG")
    code, output = run.finish()
    assert code == 1
    assert "vsphere-clone: " in output  # the header and progress were printed
    for secret in run.secrets:
        assert secret not in output
        assert secret not in junit.read_text()
        assert secret not in log_file.read_text()
    assert _left(sim) == set()


def test_the_simulator_stopping_mid_run_ends_the_run_with_a_clear_error(tmp_path: Path) -> None:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    with Simulator(SimulatorConfig(guests=True)) as doomed:
        run = Run(doomed, tmp_path, SLOW_TEST.format(count=2, sleep=2), "--vsphere-scope=function")
        run.wait_for(lambda line: "TEST-RUNNING" in line)
    started = time.monotonic()
    code, output = run.finish(timeout=120)
    assert code != 0
    assert time.monotonic() - started < 90
    assert "Traceback" not in output.split("short test summary")[0].split("= FAILURES =")[0]
    assert "127.0.0.1" in output  # the error names the vCenter it could not reach


def test_a_fault_while_reaping_earlier_runs_is_one_warning_not_an_internal_error(sim: Simulator,
                                                                                tmp_path: Path) -> None:
    first = Run(sim, tmp_path, SLOW_TEST.format(count=1, sleep=30))
    first.wait_for(lambda line: "TEST-RUNNING" in line)
    left = _left(sim)
    first.process.kill()
    first.finish()
    (tmp_path / "test_scenario.py").unlink()
    # Every property collector wait of the next run's start-up reap fails with a fault no retry helps.
    sim.inject_fault("PowerOffVM_Task", "NotSupported", count=-1)
    try:
        second = Run(sim, tmp_path, "def test_nothing():\n    pass\n")
        code, output = second.finish()
    finally:
        sim.clear_faults()
    assert code == 0, output
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert "could not reap clones left by earlier runs" in output
    assert _left(sim) == left  # still there: the next run or `vsphere-clone reap` takes it
    third = Run(sim, tmp_path, "def test_nothing():\n    pass\n")
    code, output = third.finish()
    assert code == 0 and _left(sim) == set(), output
