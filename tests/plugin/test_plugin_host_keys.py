"""SSH host-key policies (guest, known-hosts, accept-new) and the checks a run makes at its start.

Real inner pytest runs against a simulator with real guests (sshd in network namespaces).
SSH without Guest Operations is proven by the simulator's request counts: no method of the
Guest Operations managers is called. The inventory adds a template without VMware Tools.
"""

from __future__ import annotations

import copy
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import INVENTORY, TEMPLATES, Inner, Outcome, SimHandle, start_sim

from pytest_vsphere_clone.simulator.guests import guest_support_problem

pytestmark = pytest.mark.guests

NO_TOOLS = "linux-notools"
A_TEST = """
def test_ssh(vsphere_vm):
    assert vsphere_vm.run("true").exit_status == 0
    assert vsphere_vm.host_keys  # the key the policy let through, pinned for later connections
    vsphere_vm.ssh().close()
    assert vsphere_vm.run("echo again").stdout == "again\\n"  # a new connection, same pinned key
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    inventory: dict[str, Any] = copy.deepcopy(INVENTORY)
    inventory["datacenters"][0]["vms"].append({"name": NO_TOOLS, "snapshots": ["base"], "tools": False})
    handle = start_sim(tmp_path_factory.mktemp("sim"), inventory)
    try:
        yield handle
    finally:
        handle.sim.stop()


def clones(sim: SimHandle) -> list[str]:
    return [name for name in sim.sim.vm_names() if name not in TEMPLATES and name != NO_TOOLS]


def guest_operations_calls(sim: SimHandle) -> dict[str, int]:
    """Requests to the Guest Operations managers (process, file and alias managers)."""
    return {method: count for method, count in sim.sim.counters().items()
            if method.endswith("InGuest") or method.startswith("InitiateFileTransfer")}


def run(inner: Inner, sim: SimHandle, *args: str, env: dict[str, str] | None = None,
        key_only: bool = False) -> Outcome:
    """An inner run against ``sim``; ``key_only``: the guest user logs in with its SSH key, no password."""
    before = sim.namespaces()
    if key_only:
        args = (f"--vsphere-ssh-key={sim.facts['GUEST_KEY']}", *args)
        env = {"VSPHERE_GUEST_PASSWORD": "", **(env or {})}
    outcome = inner.run(*args, sim=sim, env=env)
    assert "Traceback" not in outcome.out, outcome.out
    assert clones(sim) == [], outcome.out
    assert sim.namespaces() == before
    assert outcome.run_dirs() == []
    for secret in (sim.facts["PASSWORD"], sim.facts["GUEST_PASSWORD"]):
        assert secret not in outcome.out
    return outcome


def error_line(outcome: Outcome, *fragments: str) -> str:
    lines = [line for line in outcome.out.splitlines() if all(f in line for f in fragments)]
    assert lines, f"no line with {fragments} in:\n{outcome.out}"
    return lines[0]


# --- checks at the start ------------------------------------------------------------------------


@pytest.mark.parametrize("discovery", ["active", "tools"])
def test_a_template_without_tools_is_refused_at_the_start(inner: Inner, sim: SimHandle, discovery: str) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = run(inner, sim, f"--vsphere-template={NO_TOOLS}", f"--vsphere-discovery={discovery}")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    line = error_line(outcome, f"template '{NO_TOOLS}' has no VMware Tools")
    assert "guestToolsNotInstalled" in line and "install open-vm-tools" in line


@pytest.mark.parametrize(("env", "why"), [
    ({"VSPHERE_GUEST_PASSWORD": ""}, "guest user 'root' has no --vsphere-guest-password"),
    ({}, "no --vsphere-guest-user is set"),
], ids=["no-guest-password", "no-guest-user"])
def test_the_guest_policy_without_guest_operations_fails_at_the_start(inner: Inner, sim: SimHandle,
                                                                     env: dict[str, str], why: str) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    f = sim.facts
    args = [f"--vsphere-host={f['HOST']}", f"--vsphere-user={f['USER']}", f"--vsphere-ca-bundle={f['CA_FILE']}"]
    if "VSPHERE_GUEST_PASSWORD" in env:
        args.append(f"--vsphere-guest-user={f['GUEST_USER']}")
    before = sim.namespaces()
    outcome = inner.run(*args, "--vsphere-template=linux-template", "--vsphere-discovery=tools",
                        env={"VSPHERE_PASSWORD": f["PASSWORD"], **env})
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    errors = [line for line in outcome.result.stderr.lines if line.startswith("ERROR: ")]
    assert len(errors) == 1, outcome.out
    assert "--vsphere-ssh-host-key-policy=guest reads the SSH host keys" in errors[0] and why in errors[0]
    assert "--vsphere-ssh-host-key-policy=known-hosts" in errors[0]
    assert "--vsphere-ssh-host-key-policy=accept-new" in errors[0]
    assert clones(sim) == [] and sim.namespaces() == before


def test_a_missing_known_hosts_file_fails_at_the_start(inner: Inner, sim: SimHandle, tmp_path: Path) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    missing = tmp_path / "no-such-known-hosts"
    outcome = run(inner, sim, "--vsphere-template=linux-template", "--vsphere-ssh-host-key-policy=known-hosts",
                  f"--vsphere-known-hosts={missing}")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    line = error_line(outcome, f"cannot read {missing}")
    assert "--vsphere-known-hosts" in line


# --- SSH without Guest Operations --------------------------------------------------------------


def test_accept_new_with_tools_discovery_needs_no_guest_operations(inner: Inner, sim: SimHandle) -> None:
    """A key-only guest account (no password for Guest Operations) still gets SSH."""
    inner.pytester.makepyfile(test_a=A_TEST)
    sim.sim.reset_counters()
    outcome = run(inner, sim, "--vsphere-template=linux-template", "--vsphere-discovery=tools",
                  "--vsphere-ssh-host-key-policy=accept-new", key_only=True)
    assert outcome.ret == 0, outcome.out
    assert guest_operations_calls(sim) == {}
    assert sim.sim.counters()["CloneVM_Task"] == 1
    warnings = [line for line in outcome.out.splitlines() if line.startswith("vsphere-clone: warning:")]
    assert len(warnings) == 1 and "accept-new" in warnings[0]


def scan_host_keys(sim: SimHandle, name: str) -> list[str]:
    """``ssh-keyscan`` of a running VM, as a user would take the keys of a template: "type base64" lines."""
    deadline = time.monotonic() + 60
    while True:
        address = sim.sim.find_vm(name).tools.ip_address
        if address:
            scan = subprocess.run(["ssh-keyscan", "-T", "5", address], capture_output=True, text=True)
            keys = [" ".join(line.split()[1:3]) for line in scan.stdout.splitlines()
                    if line.strip() and not line.startswith("#")]
            if keys:
                return keys
        assert time.monotonic() < deadline, f"{name} got no address or answered no ssh-keyscan"
        time.sleep(0.5)


def test_known_hosts_matches_by_key_whatever_the_host_name(inner: Inner, sim: SimHandle, tmp_path: Path) -> None:
    """Clones of linux-running share its keys; the file lists them under another name, and only its
    ECDSA key, so the ed25519 key the client would pick first is not there: the next type is tried."""
    keys = scan_host_keys(sim, "linux-running")
    ecdsa = [key for key in keys if key.startswith("ecdsa-")]
    assert ecdsa and any(key.startswith("ssh-ed25519 ") for key in keys), keys
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("# the template's keys\n" + "".join(f"linux-running.example {key}\n" for key in ecdsa))
    inner.pytester.makepyfile(test_a=A_TEST + """
def test_the_pinned_key_is_the_files(vsphere_vm):
    assert vsphere_vm.host_keys[0].startswith("ecdsa-")
""")
    sim.sim.reset_counters()
    outcome = run(inner, sim, "--vsphere-template=linux-running", "--vsphere-clone-type=full",
                  "--vsphere-discovery=tools", "--vsphere-ssh-host-key-policy=known-hosts",
                  f"--vsphere-known-hosts={known_hosts}", key_only=True)
    assert outcome.ret == 0, outcome.out
    assert guest_operations_calls(sim) == {}


def test_known_hosts_refuses_a_key_it_does_not_list(inner: Inner, sim: SimHandle, tmp_path: Path) -> None:
    import paramiko

    known_hosts = tmp_path / "known_hosts"
    other = paramiko.ECDSAKey.generate()
    known_hosts.write_text(f"* {other.get_name()} {other.get_base64()}\n")
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = run(inner, sim, "--vsphere-template=linux-template", "--vsphere-discovery=tools",
                  "--vsphere-ssh-host-key-policy=known-hosts", f"--vsphere-known-hosts={known_hosts}", key_only=True)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    line = error_line(outcome, f"is not in {known_hosts} (--vsphere-ssh-host-key-policy=known-hosts)")
    assert "add the template's host keys to that file" in line


NAMED_AND_FACTORY = """
def test_named(keyonly):
    assert keyonly.run("true").exit_status == 0

def test_factory(vsphere_vm_factory, key_file):
    clone = vsphere_vm_factory(discovery="tools", ssh_host_key_policy="accept-new", guest_password=None,
                               ssh_key=key_file)
    assert clone.run("true").exit_status == 0
"""


def test_named_fixtures_and_the_factory_take_the_policy_too(inner: Inner, sim: SimHandle) -> None:
    key = sim.facts["GUEST_KEY"]
    named = f"keyonly: template=linux-template discovery=tools ssh_host_key_policy=accept-new guest_password= " \
            f"ssh_key={key}"
    inner.pytester.makeini(f"[pytest]\nvsphere_fixtures =\n    {named}\n")
    inner.pytester.makeconftest(f"import pytest\n\n@pytest.fixture\ndef key_file():\n    return {key!r}\n")
    inner.pytester.makepyfile(test_a=NAMED_AND_FACTORY)
    sim.sim.reset_counters()
    outcome = run(inner, sim, "--vsphere-template=linux-template")
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=2)
    assert guest_operations_calls(sim) == {}


# --- the factory and named fixtures ------------------------------------------------------------

FACTORY_MISTAKES = """
import pytest
from pytest_vsphere_clone.plugin.settings import SettingsError

@pytest.mark.parametrize(("overrides", "message"), [
    ({"clone_type": "instnt"}, "vsphere_vm_factory: invalid clone_type='instnt': allowed: linked, instant, full"),
    ({"scope": "session"}, "vsphere_vm_factory: scope cannot be overridden"),
    ({"ssh_port": 99999}, "vsphere_vm_factory: invalid ssh_port=99999: must be a port number from 1 to 65535"),
    ({"ttl": "30s"}, "vsphere_vm_factory: invalid ttl='30s': must be at least 1 minute"),
    ({"ip_family": "ipv6", "ip_network": "10.0.0.0/8"},
     "vsphere_vm_factory: --vsphere-ip-network=10.0.0.0/8 is an IPv4"),
])
def test_mistake(vsphere_vm_factory, overrides, message):
    with pytest.raises(SettingsError) as raised:
        vsphere_vm_factory(**overrides)
    assert message in str(raised.value)

def test_a_secret_is_not_echoed(vsphere_vm_factory):
    with pytest.raises(SettingsError) as raised:
        vsphere_vm_factory(guest_password="Factory-Secret-7", guest_op_retries=-1)
    assert "guest_op_retries=-1" in str(raised.value) and "Factory-Secret-7" not in str(raised.value)
"""


def test_the_factory_names_the_offending_key(inner: Inner, sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_a=FACTORY_MISTAKES)
    sim.sim.reset_counters()
    outcome = run(inner, sim, "--vsphere-template=linux-template")
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=6)
    assert sim.sim.counters()["CloneVM_Task"] == 0


def test_a_clash_under_xdist_fails_the_tests_that_see_it(inner: Inner, sim: SimHandle) -> None:
    """An xdist worker finds a test module's fixture only when it collects: the test fails with the line."""
    inner.pytester.makeini("[pytest]\nvsphere_fixtures =\n    web: template=linux-template\n")
    inner.pytester.makepyfile(test_a="import pytest\n\n@pytest.fixture\ndef web():\n    return 1\n\n"
                                     "def test_web(web):\n    assert web == 1\n")
    outcome = run(inner, sim, "-n", "2", "--vsphere-template=linux-template")
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    error_line(outcome, "vsphere_fixtures: web is already the name of a fixture (test_a.web)")
    assert "no active workers" not in outcome.out


# --- the embedded simulator and the environment ------------------------------------------------


def test_the_embedded_simulator_ignores_the_environments_vcenter_and_guest(inner: Inner) -> None:
    """A user's VSPHERE_* for a real vCenter stay in the environment; --vsphere-simulator still works."""
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = inner.run("--vsphere-simulator", env={
        "VSPHERE_HOST": "127.0.0.1:9", "VSPHERE_USER": "someone@example.invalid", "VSPHERE_PASSWORD": "Env-Secret-8",
        "VSPHERE_GUEST_USER": "nobody", "VSPHERE_GUEST_PASSWORD": "Env-Secret-9"})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=1)
    assert "127.0.0.1:9" not in outcome.out and "nobody" not in outcome.out
    error_line(outcome, "vsphere-clone: --vsphere-simulator ignores VSPHERE_GUEST_PASSWORD, VSPHERE_GUEST_USER, "
                        "VSPHERE_HOST, VSPHERE_PASSWORD, VSPHERE_USER from the environment")
    assert "Env-Secret-8" not in outcome.out and "Env-Secret-9" not in outcome.out
    assert outcome.run_dirs() == []
