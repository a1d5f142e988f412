"""Guest Operations, active discovery and NIC refresh against the simulator's real guests.

These need ``SimulatorConfig(guests=True)`` (network namespaces, sshd, DHCP: root).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from client_helpers import FAST_RETRY

from pytest_vsphere_clone.client.clone import clone_vm
from pytest_vsphere_clone.client.clone_request import CloneRequest
from pytest_vsphere_clone.client.discovery import (
    ActiveDiscovery,
    AddressFilter,
    ToolsDiscovery,
    guest_wait_seconds,
    linux_wait_command,
    parse_addresses,
)
from pytest_vsphere_clone.client.errors import GuestLoginFailed, GuestOperationFailed, NicRefreshFailed, WaitTimeout
from pytest_vsphere_clone.client.guest_ops import GuestOperations
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.nic_refresh import (
    check_linux_prelude,
    check_windows_prelude,
    linux_prelude,
    refresh_nics,
    windows_prelude,
)
from pytest_vsphere_clone.client.pacing import WaitingPace
from pytest_vsphere_clone.client.retry import RetryPolicy
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import destroy
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.simulator import Simulator

pytestmark = pytest.mark.guests

GUEST_RETRY = RetryPolicy(attempts=20, base_delay=0.1, max_delay=0.5)


def _credentials(sim: Simulator, os_family: str) -> tuple[str, str]:
    """Guest user and password from the simulator's published facts (a simulator with guests has both)."""
    facts = sim.connection_facts()
    prefix = "WINDOWS_" if os_family == "windows" else ""
    return facts[f"{prefix}GUEST_USER"], facts[f"{prefix}GUEST_PASSWORD"]


def _running_clone(conn: VSphereConnection, template: str, name: str, clone_type: str = "linked") -> Any:
    """A powered-on clone whose VMware Tools already run (guest operations answer at once)."""
    info = find_template(conn, template)
    result = clone_vm(conn, CloneRequest(info, name, clone_type=clone_type), retry=FAST_RETRY)
    with Waiter(conn) as waiter:
        waiter.wait_for_property(result.vm, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning", 30.0)
    return result


@pytest.fixture
def linux_guest(guest_sim: Simulator, guest_conn: VSphereConnection) -> Any:
    result = _running_clone(guest_conn, "linux-template", "guest-linux")
    user, password = _credentials(guest_sim, "linux")
    yield GuestOperations(guest_conn, result.vm, user, password, retry=GUEST_RETRY, vm_name=result.name)
    destroy(guest_conn, result.vm)


def test_run_a_command(guest_sim: Simulator, linux_guest: GuestOperations) -> None:
    guest_sim.reset_counters()
    result = linux_guest.run("echo out; echo err >&2; exit 3")
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
    counts = guest_sim.counters()
    # Linux: one result file carries both streams and the exit status; it appears when the command
    # has ended, so looking for it replaces ListProcessesInGuest, and no temp file is made first.
    assert counts["CreateTemporaryFileInGuest"] == 0 and counts["DeleteFileInGuest"] == 1
    assert counts["StartProgramInGuest"] == 1 and counts["InitiateFileTransferFromGuest"] >= 1
    assert counts["ListProcessesInGuest"] == 0


def test_a_command_killed_before_its_result_fails_clearly(linux_guest: GuestOperations) -> None:
    # The script's shell dies with the command: no result file ever appears, and the occasional
    # process check ends the wait long before the timeout.
    started = time.monotonic()
    with pytest.raises(GuestOperationFailed, match="without writing its result file"):
        linux_guest.run("kill -9 $PPID; sleep 30", timeout=60)
    assert time.monotonic() - started < 20


def test_a_timed_out_command_is_stopped_and_leaves_no_file(linux_guest: GuestOperations) -> None:
    with pytest.raises(WaitTimeout, match="still running"):
        # The shell ignores SIGTERM here, as a command that outlives TerminateProcessInGuest:
        # once it ends, it must still write nothing, since the client has given up on it.
        linux_guest.run("trap '' TERM; sleep 2", timeout=1.0)
    time.sleep(2.5)
    listing = linux_guest.run("ls /tmp | grep -c '^pytest-vsphere-clone-' || true")
    assert listing.stdout.strip() == "2"  # only the listing's own .part and .err files


def test_temp_files_are_deleted(linux_guest: GuestOperations) -> None:
    linux_guest.run("true")
    listing = linux_guest.run("ls /tmp /tmp/vmware-* 2>/dev/null | grep -c pytest-vsphere-clone || true")
    # Only the listing command's own files (output and its stderr) exist while it runs.
    assert listing.stdout.strip() in ("0", "1", "2")


def test_a_result_file_left_for_later_goes_with_the_next_command(guest_sim: Simulator,
                                                                 linux_guest: GuestOperations) -> None:
    guest_sim.reset_counters()
    assert linux_guest.run("echo first", clean_up_later=True).stdout == "first\n"
    (left,) = linux_guest.leftovers
    assert linux_guest.read_file(left).startswith(b"first\n")  # still there: nothing deleted it yet
    # Another GuestOperations on the same VM (as the plugin makes per call) sees it too, and its
    # command deletes it in the guest: no DeleteFileInGuest for either file.
    other = GuestOperations(linux_guest.conn, linux_guest.vm, linux_guest.username, _credentials(guest_sim, "linux")[1],
                            retry=GUEST_RETRY, vm_name="guest-linux")
    assert other.leftovers == (left,)
    listing = other.run(f"ls {left} 2>&1 || true", clean_up_later=True)
    assert "No such file" in listing.stdout, listing.stdout
    assert guest_sim.counters()["DeleteFileInGuest"] == 0
    (second,) = linux_guest.leftovers
    assert second != left
    linux_guest.clean_up()  # what is left at the end: deleted by request
    assert linux_guest.leftovers == () and guest_sim.counters()["DeleteFileInGuest"] == 1
    with pytest.raises(GuestOperationFailed):
        linux_guest.read_file(second)


def test_a_command_that_never_started_leaves_its_leftovers_for_the_next(guest_sim: Simulator,
                                                                       linux_guest: GuestOperations) -> None:
    linux_guest.run("true", clean_up_later=True)
    left = linux_guest.leftovers
    guest_sim.inject_fault("StartProgramInGuest", "InvalidArgument")  # refused: the command did not run
    with pytest.raises(Exception, match=r"InvalidArgument|invalid"):
        linux_guest.run("true")
    assert linux_guest.leftovers == left
    linux_guest.run("true")
    assert linux_guest.leftovers == ()


def test_files_round_trip(linux_guest: GuestOperations) -> None:
    linux_guest.write_file("/tmp/pvc-test.bin", b"\x00binary\xffdata")
    assert linux_guest.read_file("/tmp/pvc-test.bin") == b"\x00binary\xffdata"
    linux_guest.delete_file("/tmp/pvc-test.bin")
    with pytest.raises(GuestOperationFailed):
        linux_guest.read_file("/tmp/pvc-test.bin")


def test_wrong_guest_password(guest_sim: Simulator, guest_conn: VSphereConnection,
                              linux_guest: GuestOperations) -> None:
    bad = GuestOperations(guest_conn, linux_guest.vm, linux_guest.username, "not-the-password",
                          vm_name="guest-linux")
    with pytest.raises(GuestLoginFailed) as raised:
        bad.run("true")
    assert "--vsphere-guest-password" in str(raised.value) and "not-the-password" not in str(raised.value)


def test_guest_operations_unavailable_once_is_retried(guest_sim: Simulator, linux_guest: GuestOperations) -> None:
    guest_sim.inject_fault("StartProgramInGuest", "GuestOperationsUnavailable")
    assert linux_guest.run("echo ok").stdout == "ok\n"


def test_active_discovery_linux(guest_conn: VSphereConnection, linux_guest: GuestOperations) -> None:
    found = ActiveDiscovery(linux_guest).discover(30)
    assert found.method == "active"
    assert ipaddress.ip_address(found.ip).version == 4 and not ipaddress.ip_address(found.ip).is_link_local


def test_the_waiting_command_says_how_long_it_waited_in_the_guest(linux_guest: GuestOperations) -> None:
    """The default Linux command leaves the guest's uptime before and after its wait on stderr:
    what the discovery pace learns from (client/pacing.py, WaitingPace)."""
    result = linux_guest.run(linux_wait_command("ipv4", 3.0), timeout=30)
    waited = guest_wait_seconds(result.stderr)
    assert waited is not None and 0.0 <= waited < 3.0, result.stderr
    assert parse_addresses(result.stdout), "the addresses still come on stdout"


def test_a_paced_discovery_looks_first_when_its_kind_had_its_address(linux_guest: GuestOperations,
                                                                     guest_sim: Simulator) -> None:
    """A pace that learned a 1.5 s wait puts the first look there: none before it, one or two after
    (this guest has its address already, so the round ends at once and the looks before 1.5 s
    would each have been a request); the round's own (short) wait is learned for the next."""
    pace = WaitingPace()
    pace.record("linux-frozen/linked", 1.5)
    guest_sim.reset_counters()
    started = time.monotonic()
    found = ActiveDiscovery(linux_guest, pace=pace, pace_kind="linux-frozen/linked").discover(30)
    assert time.monotonic() - started >= 1.5
    assert found.method == "active"
    assert guest_sim.counters()["InitiateFileTransferFromGuest"] <= 2
    assert pace.first_look("linux-frozen/linked") < 1.5
    assert pace.first_look("another/kind") == 0.0


def test_tools_discovery_linux(guest_conn: VSphereConnection, linux_guest: GuestOperations) -> None:
    with Waiter(guest_conn) as waiter:
        found = ToolsDiscovery(guest_conn, linux_guest.vm, waiter).discover(30)
    assert found.method == "tools" and ipaddress.ip_address(found.ip).version == 4


def test_active_discovery_falls_back_to_tools(guest_conn: VSphereConnection, linux_guest: GuestOperations) -> None:
    with Waiter(guest_conn) as waiter:
        tools = ToolsDiscovery(guest_conn, linux_guest.vm, waiter)
        found = ActiveDiscovery(linux_guest, command="no-such-command-here", fallback=tools).discover(30)
    assert found.method == "tools"


def test_discovery_failure_lists_what_it_saw(linux_guest: GuestOperations) -> None:
    from pytest_vsphere_clone.client.errors import NoUsableAddress

    with pytest.raises(NoUsableAddress) as raised:
        ActiveDiscovery(linux_guest, AddressFilter("ipv4", "203.0.113.0/24")).discover(2)
    assert "outside 203.0.113.0/24" in str(raised.value)


def test_instant_clone_nic_refresh_linux(guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    result = _running_clone(guest_conn, "linux-frozen", "instant-linux", "instant")
    user, password = _credentials(guest_sim, "linux")
    guest = GuestOperations(guest_conn, result.vm, user, password, retry=GUEST_RETRY, vm_name=result.name)
    try:
        refreshed = refresh_nics(guest, timeout=60)
        assert refreshed.method != "unknown" and refreshed.interfaces
        found = ActiveDiscovery(guest).discover(30)
        assert ipaddress.ip_address(found.ip).version == 4
    finally:
        destroy(guest_conn, result.vm)


def test_windows_guest(guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    result = _running_clone(guest_conn, "windows-template", "guest-windows")
    user, password = _credentials(guest_sim, "windows")
    guest = GuestOperations(guest_conn, result.vm, user, password, retry=GUEST_RETRY, vm_name=result.name)
    try:
        assert guest.os_family == "windows"
        run = guest.run("echo hello& hostname")
        assert run.exit_status == 0 and run.stdout.startswith("hello")
        found = ActiveDiscovery(guest).discover(30)
        assert ipaddress.ip_address(found.ip).version == 4
        # Discovery rounds leave their output files for the next command, which deletes them first.
        left = guest.leftovers
        assert left and all(p.startswith(guest._temp_directory()) for p in left)
        guest_sim.reset_counters()
        check = guest.run_merged(" & ".join(f'type "{p}"' for p in left))
        assert check.stdout.count("cannot find the file") == len(left), check.stdout
        assert guest_sim.counters()["DeleteFileInGuest"] == 1  # the check's own output, not asked to wait
        assert guest.leftovers == ()
    finally:
        destroy(guest_conn, result.vm)


def test_instant_clone_nic_refresh_windows(guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    result = _running_clone(guest_conn, "windows-frozen", "instant-windows", "instant")
    user, password = _credentials(guest_sim, "windows")
    guest = GuestOperations(guest_conn, result.vm, user, password, retry=GUEST_RETRY, vm_name=result.name)
    try:
        refreshed = refresh_nics(guest, timeout=60)
        assert refreshed.method == "netsh" and refreshed.interfaces
        assert ActiveDiscovery(guest).discover(30).ip
    finally:
        destroy(guest_conn, result.vm)


def _stale_ip(guest_sim: Simulator, vm: Any) -> str | None:
    """The address the instant clone resumed with (its source's), straight from the guest."""
    assert guest_sim.vc is not None and guest_sim.vc.guests is not None
    return guest_sim.vc.guests.host.guest(vm._moId).primary_ip()  # type: ignore[no-any-return]


def test_linux_refresh_rides_in_discovery_s_first_round(guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    result = _running_clone(guest_conn, "linux-frozen", "instant-combined", "instant")
    user, password = _credentials(guest_sim, "linux")
    guest = GuestOperations(guest_conn, result.vm, user, password, retry=GUEST_RETRY, vm_name=result.name)
    stale = _stale_ip(guest_sim, result.vm)
    checked: list[Any] = []
    try:
        guest_sim.reset_counters()
        found = ActiveDiscovery(guest, prelude=linux_prelude(),
                                check_prelude=lambda r: checked.append(check_linux_prelude(guest, r))).discover(60)
        # (the lambda answers None: the round's addresses stand, as after a refresh that worked)
        assert found.ip != stale and checked and checked[0].method == "dhclient"
        assert guest_sim.counters()["StartProgramInGuest"] == 1  # refresh and discovery: one command
    finally:
        destroy(guest_conn, result.vm)


def test_a_failed_linux_refresh_prelude_says_so(guest_sim: Simulator, linux_guest: GuestOperations) -> None:
    with pytest.raises(NicRefreshFailed, match="exited with 3"):
        ActiveDiscovery(linux_guest, prelude='echo "nic-refresh: custom eth0" >&2; echo "nic-refresh-status: 3" >&2',
                        check_prelude=lambda r: check_linux_prelude(linux_guest, r)).discover(30)


@pytest.mark.parametrize("adapters", [(), ("Ethernet0",), ("NoSuchAdapter",)], ids=["renew-all", "named", "wrong"])
def test_windows_refresh_rides_in_discovery_s_first_round(guest_sim: Simulator, guest_conn: VSphereConnection,
                                                          adapters: tuple[str, ...]) -> None:
    # A plain "ipconfig /renew" (what the plugin sends) or a named adapter's netsh bounce: one
    # command for refresh and discovery. With a wrong adapter name the combined refresh fails and
    # the full refresh (listing, retries) runs instead: the clone still gets its own address.
    result = _running_clone(guest_conn, "windows-frozen", f"instant-win-{len(adapters)}{''.join(adapters)[:2]}",
                            "instant")
    user, password = _credentials(guest_sim, "windows")
    guest = GuestOperations(guest_conn, result.vm, user, password, retry=GUEST_RETRY, vm_name=result.name)
    stale = _stale_ip(guest_sim, result.vm)
    outcomes: list[Any] = []

    def check(done: Any) -> Any:
        outcomes.append(check_windows_prelude(guest, done, 60, adapters))
        return outcomes[-1]

    try:
        guest_sim.reset_counters()
        found = ActiveDiscovery(guest, prelude=windows_prelude(adapters), check_prelude=check).discover(60)
        assert found.ip != stale
        if adapters == ("NoSuchAdapter",):
            assert outcomes[0].redone and outcomes[0].interfaces == ("Ethernet0",)
        else:
            assert not outcomes[0].redone and guest_sim.counters()["StartProgramInGuest"] == 1
    finally:
        destroy(guest_conn, result.vm)
