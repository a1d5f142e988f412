"""``vsphere-clone simulator``: prints its facts, serves, stops cleanly on SIGTERM/SIGINT, leaves nothing behind."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
from pathlib import Path

import pytest
from cli_helpers import FAST_RETRY, read_facts, start

from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator.guests import guest_support_problem

BASE_KEYS = ("URL", "HOST", "USER", "PASSWORD", "CA_FILE", "THUMBPRINT")
GUEST_KEYS = ("GUEST_USER", "GUEST_PASSWORD", "GUEST_KEY", "WINDOWS_GUEST_USER", "WINDOWS_GUEST_PASSWORD")
REGISTRY = Path("/run/pytest-vsphere-clone-sim")


def stop(proc: subprocess.Popen[bytes], signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err.decode()


def check_serving(facts: dict[str, str]) -> None:
    with VSphereConnection(facts["HOST"], facts["USER"], facts["PASSWORD"], ca_bundle=facts["CA_FILE"],
                           retry=FAST_RETRY) as conn:
        assert find_template(conn, "linux-frozen").frozen


def registry_tag(pid: int) -> str | None:
    for entry in REGISTRY.glob("pvcs*.json"):
        try:
            data = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue
        if data.get("owner_pid") == pid:
            return entry.stem
    return None


def test_simulator_without_guests_stops_on_sigint() -> None:
    proc = start("--no-guests")
    try:
        facts = read_facts(proc, BASE_KEYS)
        assert facts["URL"] == f"https://{facts['HOST']}/sdk"
        assert facts["USER"] == "administrator@vsphere.local" and len(facts["PASSWORD"]) >= 12
        check_serving(facts)
        status, err = stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 0, err
    assert err == ""
    assert not Path(facts["CA_FILE"]).exists()
    assert not Path(facts["CA_FILE"]).parent.parent.exists()  # its whole state directory


def test_simulator_uses_the_given_password_and_port() -> None:
    proc = start("--no-guests", "--password", "chosen-secret")
    try:
        facts = read_facts(proc, BASE_KEYS)
        assert facts["PASSWORD"] == "chosen-secret"
        check_serving(facts)
        status, err = stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 0, err


def test_simulator_json_prints_the_facts_as_one_object_on_its_first_line() -> None:
    proc = start("--no-guests", "--json")
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no facts from the simulator"
        facts = json.loads(proc.stdout.readline())
        assert tuple(facts) == BASE_KEYS
        assert facts["URL"] == f"https://{facts['HOST']}/sdk" and len(facts["PASSWORD"]) >= 12
        check_serving(facts)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert rest == b""  # nothing after the JSON line: no KEY= lines


@pytest.mark.guests
def test_simulator_with_guests_stops_on_sigterm_and_leaves_nothing() -> None:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    proc = start()
    try:
        facts = read_facts(proc, BASE_KEYS + GUEST_KEYS)
        assert facts["GUEST_USER"] == "root" and facts["WINDOWS_GUEST_USER"] == "Administrator"
        assert facts["GUEST_PASSWORD"] and Path(facts["GUEST_KEY"]).is_file()
        check_serving(facts)
        tag = registry_tag(proc.pid)
        assert tag is not None, "the simulator did not register its guest network"
        assert any(name.startswith(tag) for name in os.listdir("/run/netns"))  # the running guests
        status, err = stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 0, err
    assert "Traceback" not in err
    state_dir = Path(facts["CA_FILE"]).parent.parent
    assert not state_dir.exists()
    assert registry_tag(proc.pid) is None  # its claim is gone
    if (REGISTRY / f"{tag}.json").exists():
        return  # the freed tag is already another simulator's (tests run side by side): its guests are not ours
    assert not [name for name in os.listdir("/run/netns") if name.startswith(tag)]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert f" {tag}" not in links
