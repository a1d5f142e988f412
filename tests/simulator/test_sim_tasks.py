"""Tasks that take time: TaskInfo moves queued -> running (progress) -> success or error, with times."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from sim_helpers import close, connect, linked_clone_spec, vm_by_name

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.latency import LatencyProfile


def _poll_states(task: Any, timeout: float = 10.0) -> list[str]:
    """Every distinct state seen by polling task.info through the client."""
    states: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = task.info.state
        if not states or states[-1] != state:
            states.append(state)
        if state in ("success", "error"):
            return states
        time.sleep(0.02)
    raise AssertionError(f"task still {states[-1]} after {timeout} s")


def test_task_states_and_times_on_success(sim: Simulator, si: Any) -> None:
    assert sim.vc is not None
    sim.vc.options.profile = LatencyProfile("slow", {"task.queue": (0.25, 0.25), "clone.linked": (0.5, 0.5)})
    template = vm_by_name(si, "linux-template")
    task = template.CloneVM_Task(folder=template.parent, name="timed",
                                 spec=linked_clone_spec(template.snapshot.currentSnapshot))
    info = task.info
    assert info.state == "queued" and info.startTime is None and info.completeTime is None
    assert info.entity == template and info.entityName == "linux-template"
    assert info.descriptionId and info.key == task._moId
    assert info.reason.userName == sim.user
    progress_seen: set[int] = set()
    states: list[str] = ["queued"]
    while states[-1] not in ("success", "error"):
        info = task.info
        if info.state != states[-1]:
            states.append(info.state)
        if info.state == "running" and info.progress is not None:
            progress_seen.add(info.progress)
        time.sleep(0.02)
    assert states == ["queued", "running", "success"]
    assert len(progress_seen) >= 2  # the progress moved while running
    assert info.progress == 100
    assert info.queueTime <= info.startTime <= info.completeTime
    assert (info.startTime - info.queueTime).total_seconds() >= 0.2
    assert (info.completeTime - info.startTime).total_seconds() >= 0.45
    assert isinstance(info.result, vim.VirtualMachine) and info.result.name == "timed"
    assert info.error is None
    assert task in si.content.taskManager.recentTask


def test_task_error_state_carries_the_fault(si: Any) -> None:
    vm = vm_by_name(si, "linux-frozen")  # already powered on
    task = vm.PowerOnVM_Task()
    assert _poll_states(task)[-1] == "error"
    info = task.info
    assert isinstance(info.error, vim.fault.InvalidPowerState)
    assert info.error.existingState == "poweredOn"
    assert info.queueTime <= info.startTime <= info.completeTime
    assert info.result is None
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(task)


def test_time_scale_stretches_task_durations() -> None:
    # seed profile scaled to 1/20: a linked clone of 0.8-1.3 s takes 40-65 ms.
    with Simulator(SimulatorConfig(profile="seed", time_scale=0.05)) as simulator:
        si = connect(simulator)
        try:
            template = vm_by_name(si, "linux-template")
            start = time.monotonic()
            task = template.CloneVM_Task(folder=template.parent, name="scaled",
                                         spec=linked_clone_spec(template.snapshot.currentSnapshot))
            WaitForTask(task)
            elapsed = time.monotonic() - start
            info = task.info
            ran = (info.completeTime - info.startTime).total_seconds()
            assert 0.035 <= ran <= 0.5, ran
            assert elapsed >= 0.035
        finally:
            close(si)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown latency profile"):
        Simulator(SimulatorConfig(profile="turbo")).start()


def test_profiles_give_guests_their_scaled_ranges() -> None:
    # What guests draw for themselves (powershell.exe's start-up) comes from the same profile and scale.
    assert LatencyProfile.seed_profile(0.5).range("powershell.start") == (0.2, 0.45)
    assert LatencyProfile.fast().range("powershell.start") == (0.0, 0.0)
    assert LatencyProfile.fast().range("no-such-operation") == (0.0, 0.0)


def test_a_profile_at_its_means_draws_no_more() -> None:
    fixed = LatencyProfile.seed_profile(0.5).at_means()
    assert fixed.duration("clone.linked") == fixed.duration("clone.linked") == 0.525
    assert fixed.range("boot.linux") == (5.0, 5.0) and fixed.time_scale == 0.5
