"""Waiter: tasks and watches through one list view and its filter, WaitForUpdatesEx, timeouts that say what they saw."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from pyVmomi import vim

from pytest_vsphere_clone.client.errors import WaitTimeout
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.pacing import TaskPace
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.task_reads import TasksStillRunning, poll_tasks, task_finished
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

Connect = Callable[..., VSphereConnection]


def _linked_clone_task(conn: VSphereConnection, name: str) -> vim.Task:
    template = find_template(conn, "linux-template")
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"),
                            snapshot=template.current_snapshot)
    return template.ref.CloneVM_Task(folder=template.folder, name=name, spec=spec)


def test_wait_for_task_returns_the_result(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    vm = waiter.wait_for_task(_linked_clone_task(conn, "c1"), 10)
    assert isinstance(vm, vim.VirtualMachine) and vm.name == "c1"


def test_wait_for_task_raises_the_task_fault(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    template = find_template(conn, "linux-template")
    with pytest.raises(vim.fault.InvalidPowerState):
        waiter.wait_for_task(template.ref.PowerOffVM_Task(), 10)  # already off


def test_waits_use_one_collector_and_no_property_polling(sim: Simulator, conn: VSphereConnection) -> None:
    task = _linked_clone_task(conn, "c1")
    sim.reset_counters()
    with Waiter(conn) as waiter:
        waiter.wait_for_task(task, 10)
        waiter.wait_for_task(task, 10)
    counts = sim.counters()
    assert counts["CreatePropertyCollector"] == 1
    # One view and its two filters (tasks', VMs') for the waiter's life; the task joined it at its
    # creation, and a task already in the view costs nothing to wait for again.
    assert counts["CreateListView"] == 1 and counts["CreateFilter"] == 2
    assert counts["ModifyListView"] == counts["DestroyPropertyFilter"] == 0
    assert counts["Fetch"] == 0 and counts["RetrievePropertiesEx"] == 0
    assert counts["DestroyPropertyCollector"] == counts["DestroyView"] == 1


def test_wait_for_tasks_waits_for_all(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    tasks = [_linked_clone_task(conn, f"c{i}") for i in range(3)]
    vms = waiter.wait_for_tasks(tasks, 10)
    assert sorted(vm.name for vm in vms) == ["c0", "c1", "c2"]


def test_wait_for_tasks_can_return_faults(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    template = find_template(conn, "linux-template")
    good = _linked_clone_task(conn, "c1")
    bad = template.ref.PowerOffVM_Task()
    results = waiter.wait_for_tasks([good, bad], 10, return_errors=True)
    assert isinstance(results[0], vim.VirtualMachine)
    assert isinstance(results[1], vim.fault.InvalidPowerState)
    with pytest.raises(vim.fault.InvalidPowerState):
        waiter.wait_for_tasks([good, bad], 10)


def test_task_timeout_says_what_was_awaited_and_last_seen(shapes_file: object, connect: Connect) -> None:
    # Time scale 200: a linked clone takes 4-8 s, longer than the 0.3 s we allow (WaitForUpdatesEx
    # waits in whole seconds, so the timeout is kept to within one).
    with Simulator(SimulatorConfig(time_scale=200.0)) as slow:
        conn = connect(slow)
        task = _linked_clone_task(conn, "slow")
        with Waiter(conn) as waiter, pytest.raises(WaitTimeout) as raised:
            waiter.wait_for_task(task, 0.3, "clone of linux-template")
        message = str(raised.value)
        assert "waiting for clone of linux-template" in message
        assert "state=running" in message or "state=queued" in message
        assert "VirtualMachine.clone on linux-template" in message
        Waiter(conn).wait_for_task(task, 20)  # let it finish before the simulator stops


def test_property_timeout_shows_the_last_value(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    template = find_template(conn, "linux-template")
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as raised:
        waiter.wait_for_property(template.ref, "runtime.powerState", lambda v: v == "poweredOn", 1.0,
                                 "power-on of linux-template")
    assert time.monotonic() - started < 3.0
    assert "waiting for power-on of linux-template (last seen: runtime.powerState='poweredOff')" in str(raised.value)


def test_wait_for_property_sees_changes(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    vm = waiter.wait_for_task(_linked_clone_task(conn, "c1"), 10)
    vm.PowerOnVM_Task()
    state = waiter.wait_for_property(vm, "runtime.powerState", lambda v: v == "poweredOn", 10)
    assert state == "poweredOn"
    values = waiter.wait_for_properties(vm, ["name", "runtime.powerState"], lambda v: "name" in v, 10)
    assert values == {"name": "c1", "runtime.powerState": "poweredOn"}


def test_wait_survives_session_expiry(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    waiter.wait_for_task(_linked_clone_task(conn, "c1"), 10)  # the collector exists
    sim.expire_sessions()
    vm = waiter.wait_for_task(_linked_clone_task(conn, "c2"), 10)
    assert vm.name == "c2" and conn.generation == 1


def test_session_expiry_during_a_long_poll(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    template = find_template(conn, "linux-template")
    # The session dies mid-poll; the change comes after the server noticed (it checks once a second).
    expire = threading.Timer(0.2, sim.expire_sessions)
    power_on = threading.Timer(1.5, lambda: template.ref.PowerOnVM_Task())
    expire.start()
    power_on.start()
    try:
        state = waiter.wait_for_property(template.ref, "runtime.powerState", lambda v: v == "poweredOn", 10.0)
    finally:
        expire.join()
        power_on.join()
    assert state == "poweredOn"
    assert conn.generation == 1


def test_waiters_in_threads_do_not_clash(sim: Simulator, conn: VSphereConnection) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with Waiter(conn) as waiter:
                results[index] = waiter.wait_for_task(_linked_clone_task(conn, f"t{index}"), 10).name
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors
    assert results == {i: f"t{i}" for i in range(4)}
    assert sim.counters()["CreatePropertyCollector"] == 4


def test_deleted_object_ends_the_wait(sim: Simulator, conn: VSphereConnection, waiter: Waiter) -> None:
    vm = waiter.wait_for_task(_linked_clone_task(conn, "doomed"), 10)
    timer = threading.Timer(0.2, lambda: vm.Destroy_Task())
    timer.start()
    try:
        with pytest.raises(Exception, match="deleted"):
            waiter.wait_for_property(vm, "runtime.powerState", lambda v: v == "poweredOn", 5.0)
    finally:
        timer.join()


# --- poll_tasks: for when no wait works ---------------------------------------------------------


def test_poll_tasks_reads_task_infos_without_the_property_collector(sim: Simulator, conn: VSphereConnection) -> None:
    template = find_template(conn, "linux-template")
    good = _linked_clone_task(conn, "c1")
    bad = template.ref.PowerOffVM_Task()  # already off: ends with an error
    sim.inject_fault("CreateFilter", "NoPermission", count=-1)
    sim.inject_fault("WaitForUpdatesEx", "NoPermission", count=-1)
    sim.reset_counters()
    infos = poll_tasks(conn, [good, bad], 10)
    assert infos[good].state == "success" and isinstance(infos[good].result, vim.VirtualMachine)
    assert infos[bad].state == "error" and isinstance(infos[bad].error, vim.fault.InvalidPowerState)
    counts = sim.counters()
    assert counts["CreateFilter"] == counts["WaitForUpdatesEx"] == counts["CreatePropertyCollector"] == 0
    assert counts["RetrievePropertiesEx"] >= 1


def test_poll_tasks_times_out_saying_what_and_last_seen(connect: Connect) -> None:
    with Simulator(SimulatorConfig(time_scale=40.0)) as slow:  # a linked clone takes 0.8-1.6 s
        conn = connect(slow)
        task = _linked_clone_task(conn, "slow")
        started = time.monotonic()
        with pytest.raises(TasksStillRunning) as raised:
            poll_tasks(conn, [task], 0.3, "the clone of slow", hint="try later")
        assert time.monotonic() - started < 2.0
        message = str(raised.value)
        assert isinstance(raised.value, WaitTimeout)
        assert "timed out after 0.3 s waiting for the clone of slow (last seen: " in message
        assert f"{task._moId}: state=" in message and "VirtualMachine.clone on linux-template" in message
        assert message.endswith("try later")
        assert not task_finished(raised.value.infos[task])
        assert poll_tasks(conn, [task], 10)[task].state == "success"  # let it finish before the simulator stops


def test_poll_tasks_takes_a_forgotten_task_as_finished(sim: Simulator, conn: VSphereConnection) -> None:
    done = _linked_clone_task(conn, "c1")
    gone = vim.Task("task-does-not-exist", conn.si._stub)
    infos = poll_tasks(conn, [done, gone], 10)
    assert infos[gone] is None and task_finished(None)
    assert infos[done].state == "success"


# --- VM watches: one filter for a clone's life ---------------------------------------------------


def test_a_watched_vm_s_tasks_are_followed_through_the_tasks_themselves(sim: Simulator,
                                                                        conn: VSphereConnection) -> None:
    # The simulator, like servers the API reference allows for, sends no recentTask notifications
    # (ManagedEntity.recentTask: "vSphere Servers might not generate property collector update
    # notifications for this property"): every wait must end through the Task's own filter.
    assert sim.vc is not None and not sim.vc.options.recent_task_updates
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "w1"), 10)
        sim.reset_counters()
        started = time.monotonic()
        waiter.watch(vm)
        waiter.wait_for_task(vm.PowerOnVM_Task(), 10, on=vm)
        waiter.wait_for_property(vm, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning", 10)
        assert waiter.watched_power_state(vm, 10) == "poweredOn"
        waiter.wait_for_task(vm.PowerOffVM_Task(), 10, on=vm)
        assert waiter.wait_for_task(vm.Destroy_Task(), 10, on=vm, destroys=True) is None
        waiter.unwatch(vm)
        counts = sim.counters()
        assert time.monotonic() - started < 5  # no wait ran into its timeout
    # The watch and each task join the waiter's view (one ModifyListView each, the finished ones
    # leaving in the same call).
    assert counts["ModifyListView"] == 4
    assert counts["CreateFilter"] == counts["DestroyPropertyFilter"] == 0
    assert counts["CreatePropertyCollector"] == 0
    assert "w1" not in sim.vm_names()


@pytest.mark.parametrize("notify", [False, True], ids=["no-recentTask-updates", "recentTask-updates"])
def test_teardown_waits_end_with_or_without_recent_task_notifications(notify: bool, connect: Connect) -> None:
    from pytest_vsphere_clone.client.teardown import destroy

    with Simulator(SimulatorConfig(recent_task_updates=notify)) as simulator:
        conn = connect(simulator)
        with Waiter(conn) as waiter:
            vm = waiter.wait_for_task(_linked_clone_task(conn, "n1"), 10)
            waiter.wait_for_task(vm.PowerOnVM_Task(), 10)
            waiter.watch(vm)
            started = time.monotonic()
            assert destroy(conn, vm, waiter=waiter, timeout=20)
            assert time.monotonic() - started < 10
        assert "n1" not in simulator.vm_names()


def test_a_watched_task_s_fault_is_raised(sim: Simulator, conn: VSphereConnection) -> None:
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "w2"), 10)
        waiter.watch(vm)
        with pytest.raises(vim.fault.InvalidPowerState):
            waiter.wait_for_task(vm.PowerOffVM_Task(), 10, on=vm)  # never powered on
        waiter.wait_for_task(vm.Destroy_Task(), 10, on=vm, destroys=True)


def test_a_watched_vm_destroyed_by_someone_else_ends_the_wait(sim: Simulator, conn: VSphereConnection) -> None:
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "w3"), 10)
        waiter.watch(vm)
        other = Waiter(conn)
        timer = threading.Timer(0.3, lambda: other.wait_for_task(vm.Destroy_Task(), 10))
        timer.start()
        try:
            started = time.monotonic()
            with pytest.raises(vim.ManagedObjectNotFound):
                waiter.wait_for_property(vm, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning", 20)
            assert time.monotonic() - started < 10
        finally:
            timer.join()
            other.close()


def test_a_destroyed_object_faulted_by_the_server_leaves_its_watch(sim: Simulator, conn: VSphereConnection) -> None:
    # Some servers (vcsim) fault WaitForUpdatesEx with ManagedObjectNotFound naming a destroyed
    # object a filter still names, where the reference's answer is a "leave". The waiter takes that
    # object out of its view and goes on with the same collector: no storm of new collectors.
    with Waiter(conn) as waiter:
        doomed = waiter.wait_for_task(_linked_clone_task(conn, "gone1"), 10)
        other = waiter.wait_for_task(_linked_clone_task(conn, "live1"), 10)
        waiter.watch(doomed)
        waiter.watch(other)
        sim.reset_counters()
        sim.inject_fault("WaitForUpdatesEx", "ManagedObjectNotFound", obj=("VirtualMachine", doomed._moId))
        waiter.wait_for_task(other.PowerOnVM_Task(), 10, on=other)
        counts = sim.counters()
        assert counts["CreatePropertyCollector"] == 0
        assert counts["ModifyListView"] == 2  # the task joining the view, the dead object leaving it
        with pytest.raises(vim.ManagedObjectNotFound):
            waiter.wait_for_property(doomed, "guest.toolsRunningStatus", lambda v: False, 5)
        assert waiter.watched_power_state(other, 5) == "poweredOn"


def test_a_lost_collector_is_replaced_at_a_bounded_rate(sim: Simulator, conn: VSphereConnection) -> None:
    # ManagedObjectNotFound naming the collector itself, and a refused initial version, on every
    # WaitForUpdatesEx for a while: the waiter replaces its collector, pausing longer each time,
    # destroys the old ones, and the wait ends once the server answers again.
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "lost1"), 10)
        waiter.watch(vm)
        sim.reset_counters()
        sim.inject_fault("WaitForUpdatesEx", "ManagedObjectNotFound", count=-1)
        timer = threading.Timer(7.0, sim.clear_faults)
        timer.start()
        try:
            started = time.monotonic()
            waiter.wait_for_task(vm.PowerOnVM_Task(), 30, on=vm)
            elapsed = time.monotonic() - started
        finally:
            timer.join()
        counts = sim.counters()
    # Pauses of 0, 2 and 4 s fit in the 7 s of faults: at most 4 collectors, each old one destroyed.
    assert 7.0 <= elapsed < 20
    assert 1 <= counts["CreatePropertyCollector"] <= 4, counts
    assert counts["DestroyPropertyCollector"] >= counts["CreatePropertyCollector"]  # the closed waiter's too
    assert counts["WaitForUpdatesEx"] <= 2 * counts["CreatePropertyCollector"] + 4, counts


def test_a_refused_version_starts_over_on_the_same_collector(sim: Simulator, conn: VSphereConnection) -> None:
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "ver1"), 10)
        waiter.watch(vm)
        waiter.watched_power_state(vm, 5)  # the collector has a version now
        sim.reset_counters()
        sim.inject_fault("WaitForUpdatesEx", "InvalidCollectorVersion")
        waiter.wait_for_task(vm.PowerOnVM_Task(), 10, on=vm)
        assert waiter.watched_power_state(vm, 5) == "poweredOn"
        counts = sim.counters()
    assert counts["CreatePropertyCollector"] == 0


# --- paced first looks ---------------------------------------------------------------------------


def test_task_pace_is_when_nine_in_ten_recent_tasks_had_ended_and_capped() -> None:
    pace = TaskPace()
    assert pace.first_look("off") == 0.0  # nothing seen: look at once
    for seconds in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.55, 0.65, 0.75, 5.0):
        pace.record("off", seconds)
    assert pace.first_look("off") == 1.0 and pace.first_look("destroy") == 0.0
    for _ in range(20):
        pace.record("off", 60.0)  # only the recent ones count, and no first look waits that long
    assert pace.first_look("off") == 10.0


def test_a_paced_wait_reads_a_task_that_has_ended(sim: Simulator, conn: VSphereConnection) -> None:
    assert sim.vc is not None
    sim.vc.options.profile.times["power_off"] = (0.3, 0.3)
    with Waiter(conn) as waiter:
        vms = [waiter.wait_for_task(_linked_clone_task(conn, f"paced{i}"), 10) for i in range(2)]
        for vm in vms:
            waiter.wait_for_task(vm.PowerOnVM_Task(), 10)
            waiter.watch(vm)
        sim.reset_counters()
        waiter.wait_for_task(vms[0].PowerOffVM_Task(), 10, on=vms[0])
        assert sim.counters()["WaitForUpdatesEx"] == 2  # the task appearing, then its end
        waiter.pace.record("power-off", 1.0)  # (as if such tasks had taken 1 s)
        sim.reset_counters()
        started = time.monotonic()
        waiter.wait_for_task(vms[1].PowerOffVM_Task(), 10, on=vms[1], paced="power-off")
        assert time.monotonic() - started >= 1.0
        counts = sim.counters()  # one read of the ended task, nothing through the view
        assert counts["RetrievePropertiesEx"] == 1
        assert counts["WaitForUpdatesEx"] == counts["ModifyListView"] == 0
        # The pace learned the task's own duration (the server's queueTime to completeTime), not the
        # wait's 1 s, which its late first look made.
        assert 0.25 <= waiter.pace._seen["power-off"][-1] < 0.6
        # A paced wait still raises the task's fault.
        waiter.pace.record("power-off", 0.1)
        with pytest.raises(vim.fault.InvalidPowerState):
            waiter.wait_for_task(vms[1].PowerOffVM_Task(), 10, on=vms[1], paced="power-off")


@pytest.mark.parametrize("method", ["WaitForUpdatesEx", "ModifyListView", "CreateFilter", "CreateListView"])
def test_a_task_is_read_to_its_end_when_waiting_fails(sim: Simulator, conn: VSphereConnection, method: str) -> None:
    # The waiting machinery failing is not the task failing: the clone task goes on and makes its
    # VM, so its end is learned by reading the task (the clone must not be taken for failed).
    with Waiter(conn) as waiter:
        if method not in ("CreateFilter", "CreateListView"):  # made with the collector: before it, then
            waiter.wait_for_task(_linked_clone_task(conn, "warm"), 10)  # the collector exists
        sim.inject_fault(method, "SystemError", count=-1)
        try:
            vm = waiter.wait_for_task(_linked_clone_task(conn, "polled"), 30)
        finally:
            sim.clear_faults()
        assert isinstance(vm, vim.VirtualMachine) and vm.name == "polled"
        # And the waiter works again once the server does.
        assert waiter.wait_for_task(vm.PowerOnVM_Task(), 10) is None


# --- one view for every task and watch -----------------------------------------------------------


def test_finished_tasks_leave_the_view_with_the_next_change(sim: Simulator, conn: VSphereConnection) -> None:
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "v1"), 10)
        sim.reset_counters()
        waiter.watch(vm)
        power_on = vm.PowerOnVM_Task()
        waiter.wait_for_task(power_on, 10, on=vm)
        assert waiter.watched_power_state(vm, 5) == "poweredOn"
        view = waiter._view
        assert {m._moId for m in view.view} == {vm._moId, power_on._moId}  # (a read of the view, for the test)
        power_off = vm.PowerOffVM_Task()
        waiter.wait_for_task(power_off, 10, on=vm)
        assert {m._moId for m in view.view} == {vm._moId, power_off._moId}  # the power-on left as the power-off joined
        counts = sim.counters()
        assert counts["ModifyListView"] == 3 and counts["CreateFilter"] == 0
        waiter.unwatch(vm)  # a live VM leaves the view at once (its changes would wake waits)
        assert {m._moId for m in view.view} == set()
        vm.Destroy_Task()


def test_a_paced_look_at_a_running_task_follows_it_through_the_view(sim: Simulator,
                                                                    conn: VSphereConnection) -> None:
    assert sim.vc is not None
    sim.vc.options.profile.times["destroy"] = (1.0, 1.0)
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "v2"), 10)
        waiter.watch(vm)
        waiter.watched_power_state(vm, 5)
        waiter.pace.record("destroy", 0.1)  # (as if destroys took 0.1 s: this one is still running then)
        sim.reset_counters()
        assert waiter.wait_for_task(vm.Destroy_Task(), 10, on=vm, destroys=True, paced="destroy") is None
        counts = sim.counters()
        # Read at 0.1 s and once more a quarter of the pace later, then followed through the view.
        assert counts["RetrievePropertiesEx"] == 2 and counts["ModifyListView"] == 1
        assert 0.9 <= waiter.pace._seen["destroy"][-1] < 1.5  # the task's own duration
    assert "v2" not in sim.vm_names()


def test_a_paced_task_still_running_at_its_first_look_is_read_once_more(sim: Simulator,
                                                                        conn: VSphereConnection) -> None:
    assert sim.vc is not None
    sim.vc.options.profile.times["power_off"] = (0.5, 0.5)
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "v5"), 10)
        waiter.wait_for_task(vm.PowerOnVM_Task(), 10)
        waiter.pace.record("power-off", 0.48)  # the first look (0.48 s) comes before its end (0.5 s)
        sim.reset_counters()
        waiter.wait_for_task(vm.PowerOffVM_Task(), 10, paced="power-off")
        counts = sim.counters()
        assert counts["RetrievePropertiesEx"] == 2  # the second look (0.6 s) finds it ended
        assert counts["ModifyListView"] == counts["WaitForUpdatesEx"] == 0
        waiter.wait_for_task(vm.Destroy_Task(), 10)


def test_a_destroyed_vm_leaves_the_view_without_a_request(sim: Simulator, conn: VSphereConnection) -> None:
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "v3"), 10)
        waiter.watch(vm)
        waiter.pace.record("destroy", 0.5)
        sim.reset_counters()
        assert waiter.wait_for_task(vm.Destroy_Task(), 10, on=vm, destroys=True, paced="destroy") is None
        waiter.unwatch(vm)
        assert sim.counters()["ModifyListView"] == 0
        clone = _linked_clone_task(conn, "v4")
        other = waiter.wait_for_task(clone, 10)
        # The next task's ModifyListView took the destroyed VM and the ended tasks out of the view.
        assert {m._moId for m in waiter._view.view} == {clone._moId}  # (a read of the view, for the test)
        waiter.wait_for_task(other.Destroy_Task(), 10)
    assert not {"v3", "v4"} & set(sim.vm_names())


def test_a_renewed_session_gets_a_new_view_with_the_watches(sim: Simulator, conn: VSphereConnection) -> None:
    with Waiter(conn) as waiter:
        vm = waiter.wait_for_task(_linked_clone_task(conn, "v4"), 10)
        waiter.watch(vm)
        assert waiter.watched_power_state(vm, 5) == "poweredOff"
        sim.expire_sessions()
        sim.reset_counters()
        waiter.wait_for_task(conn.call(vm.PowerOnVM_Task), 10, on=vm)  # (the call logs in again)
        assert waiter.watched_power_state(vm, 5) == "poweredOn"
        counts = sim.counters()
        assert counts["CreateListView"] == counts["CreatePropertyCollector"] == 1
        waiter.wait_for_task(vm.PowerOffVM_Task(), 10, on=vm)
        waiter.wait_for_task(vm.Destroy_Task(), 10, on=vm, destroys=True)
