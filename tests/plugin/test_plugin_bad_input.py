"""Bad input: one clear line naming the fix, a non-zero exit, and nothing left behind.

Each case runs a real inner pytest against a simulator with real guests, then
checks the simulator (no VM but its templates), the machine (the simulator's
network namespaces unchanged, no run directory left in the run's TMPDIR) and
the output (one line saying what to fix; no password anywhere).
"""

from __future__ import annotations

import pytest
from conftest import Inner, Outcome, SimHandle

pytestmark = pytest.mark.guests

A_TEST = """
def test_uses_a_clone(vsphere_vm):
    assert vsphere_vm.run("true").exit_status == 0
"""


def one_line(outcome: Outcome, *fragments: str) -> str:
    """The one output line holding every fragment (the error message; the settings header is not one)."""
    lines = [line for line in outcome.out.splitlines()
             if all(f in line for f in fragments) and not line.startswith("vsphere-clone: host=")]
    assert lines, f"no line with {fragments} in:\n{outcome.out}"
    print(lines[0])
    return lines[0]


def no_secret(outcome: Outcome, sim: SimHandle) -> None:
    for secret in (sim.facts["PASSWORD"], sim.facts["GUEST_PASSWORD"]):
        assert secret not in outcome.out


@pytest.fixture
def bad_run(inner: Inner, plugin_sim: SimHandle) -> object:
    """``bad_run(*args, env=..., sim=...)``: an inner run of A_TEST, checked to have left nothing."""
    inner.pytester.makepyfile(test_bad=A_TEST)

    def run(*args: str, env: dict[str, str] | None = None, use_sim: bool = True) -> Outcome:
        before = plugin_sim.namespaces()
        outcome = inner.run(*args, sim=plugin_sim if use_sim else None, env=env)
        assert outcome.ret != 0, outcome.out
        inner.clean_after(outcome, plugin_sim, before)
        no_secret(outcome, plugin_sim)
        return outcome

    return run


def test_unknown_template_names_close_matches(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-templat")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "'linux-templat' not found")
    assert "did you mean 'linux-template'" in line and "--vsphere-template" in line


def test_ambiguous_template_lists_the_inventory_paths(bad_run) -> None:
    outcome = bad_run("--vsphere-template=ubuntu")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "'ubuntu' matches 2 VMs")
    assert "templates/ubuntu" in line and "old/templates/ubuntu" in line and "--vsphere-template" in line


def test_wrong_vcenter_password(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-template", env={"VSPHERE_PASSWORD": "not-the-password"})
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "rejected the login")
    assert "--vsphere-password" in line and "not-the-password" not in outcome.out


def test_wrong_guest_password(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-template", env={"VSPHERE_GUEST_PASSWORD": "not-the-password"})
    line = one_line(outcome, "--vsphere-guest-password")
    assert "root" in line
    assert "not-the-password" not in outcome.out


def test_missing_clone_privilege(bad_run, plugin_sim: SimHandle) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-user=noclone@vsphere.local",
                      env={"VSPHERE_PASSWORD": "NoClone-Pass-1"})
    line = one_line(outcome, "VirtualMachine.Provisioning.Clone")
    assert "noclone@vsphere.local" in line
    assert "NoClone-Pass-1" not in outcome.out


def test_unreachable_host(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-host=127.0.0.1:9",
                      "--vsphere-connect-timeout=3")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "cannot reach vCenter 127.0.0.1:9")
    assert "--vsphere-host" in line


def test_tls_without_the_simulators_ca(bad_run, plugin_sim: SimHandle, inner: Inner) -> None:
    # The system CAs do not know the simulator's own CA: verification must fail, never fall back.
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-ca-bundle=/etc/ssl/certs/ca-certificates.crt")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "TLS certificate of vCenter")
    assert "--vsphere-ca-bundle" in line and "--vsphere-insecure" in line


def test_tls_with_no_ca_bundle(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_bad=A_TEST)
    before = plugin_sim.namespaces()
    f = plugin_sim.facts
    outcome = inner.run(f"--vsphere-host={f['HOST']}", f"--vsphere-user={f['USER']}",
                        "--vsphere-template=linux-template", env=plugin_sim.env())
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "TLS certificate of vCenter")
    assert "--vsphere-ca-bundle" in line
    inner.clean_after(outcome, plugin_sim, before)


def test_no_usable_ip_says_what_was_seen(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-ip-network=192.0.2.0/24",
                      "--vsphere-ip-timeout=2")
    line = one_line(outcome, "192.0.2.0/24")
    assert "10." in line  # the addresses it saw and rejected


def test_powered_off_instant_source(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-clone-type=instant")
    line = one_line(outcome, "linux-template")
    assert "powered" in line.lower() and "instant" in line.lower()


def test_linked_clone_without_snapshot(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-nosnap")
    line = one_line(outcome, "linux-nosnap")
    assert "snapshot" in line.lower()
    assert "full" in line.lower() or "CreateSnapshot" in line or "take a snapshot" in line.lower()


def test_unknown_snapshot_name(bad_run) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-snapshot=nope")
    line = one_line(outcome, "'nope'")
    assert "base" in line and "--vsphere-snapshot" in line
