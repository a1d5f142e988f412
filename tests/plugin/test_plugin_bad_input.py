"""Bad input: one clear line naming the fix, a non-zero exit, and nothing left behind.

Each case runs a real inner pytest against a simulator with real guests, then
checks the simulator (no VM but its templates), the machine (the simulator's
network namespaces unchanged, no run directory left in the run's TMPDIR) and
the output (one line saying what to fix; no password anywhere).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from plugin_helpers import Inner, Outcome, SimHandle

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
    return lines[0]


def no_secret(outcome: Outcome, sim: SimHandle) -> None:
    for secret in (sim.facts["PASSWORD"], sim.facts["GUEST_PASSWORD"]):
        assert secret not in outcome.out


@pytest.fixture
def bad_run(inner: Inner, plugin_sim: SimHandle) -> Callable[..., Outcome]:
    """``bad_run(*args, env=...)``: an inner run of A_TEST that must fail cleanly and leave nothing."""
    inner.pytester.makepyfile(test_bad=A_TEST)

    def run(*args: str, env: dict[str, str] | None = None, ca_bundle: bool = True) -> Outcome:
        before = plugin_sim.namespaces()
        if ca_bundle:
            outcome = inner.run(*args, sim=plugin_sim, env=env)
        else:  # the connection settings without the simulator's CA
            f = plugin_sim.facts
            outcome = inner.run(f"--vsphere-host={f['HOST']}", f"--vsphere-user={f['USER']}", *args,
                                env={**plugin_sim.env(), **(env or {})})
        assert outcome.ret != 0, outcome.out
        assert "Traceback" not in outcome.out, outcome.out  # a message, not a crash
        inner.clean_after(outcome, plugin_sim, before)
        no_secret(outcome, plugin_sim)
        return outcome

    return run


def test_unknown_template_names_close_matches(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-templat")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "'linux-templat' not found")
    assert "did you mean 'linux-template'" in line and "--vsphere-template" in line


def test_ambiguous_template_lists_the_inventory_paths(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=ubuntu")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "'ubuntu' matches 2 VMs")
    assert "templates/ubuntu" in line and "old/templates/ubuntu" in line and "--vsphere-template" in line


def test_wrong_vcenter_password(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-template", env={"VSPHERE_PASSWORD": "not-the-password"})
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "rejected the login")
    assert "--vsphere-password" in line and "not-the-password" not in outcome.out


def test_wrong_guest_password(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-template", env={"VSPHERE_GUEST_PASSWORD": "not-the-password"})
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED
    line = one_line(outcome, "rejected the login of guest user 'root'")
    assert "--vsphere-guest-user and --vsphere-guest-password" in line
    assert "not-the-password" not in outcome.out


def test_missing_clone_privilege(bad_run: Callable[..., Outcome]) -> None:
    # Checked on the template when the session starts: one usage error, not one per test.
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-user=noclone@vsphere.local",
                      env={"VSPHERE_PASSWORD": "NoClone-Pass-1"})
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "vCenter user 'noclone@vsphere.local' lacks privilege(s)",
                    "VirtualMachine.Provisioning.Clone")
    assert "grant them to the user's role" in line
    assert "NoClone-Pass-1" not in outcome.out


def test_unreachable_host(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-host=127.0.0.1:9",
                      "--vsphere-connect-timeout=3")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "cannot reach vCenter 127.0.0.1:9")
    assert "--vsphere-host" in line


def test_tls_without_the_simulators_ca(bad_run: Callable[..., Outcome]) -> None:
    # The system CAs do not know the simulator's own CA: verification must fail, never fall back.
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-ca-bundle=/etc/ssl/certs/ca-certificates.crt")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "TLS certificate of vCenter")
    assert "--vsphere-ca-bundle" in line and "--vsphere-insecure" in line


def test_tls_with_no_ca_bundle(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-template", ca_bundle=False)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "TLS certificate of vCenter", "could not be verified")
    assert "--vsphere-ca-bundle" in line


@pytest.mark.parametrize(("args", "rejected"), [
    (["--vsphere-ip-network=192.0.2.0/24"], "outside 192.0.2.0/24"),
    (["--vsphere-ip-network=192.0.2.0/24", "--vsphere-discovery=tools"], "outside 192.0.2.0/24"),
    (["--vsphere-ip-family=ipv6"], "not IPv6"),
], ids=["active-network", "tools-network", "active-ipv6"])
def test_no_usable_ip_says_what_was_seen(bad_run: Callable[..., Outcome], args: list[str], rejected: str) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-ip-timeout=2", *args)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED
    line = one_line(outcome, "no usable IP", "within 2 s")
    assert rejected in line and "10.213." in line  # what it saw and why it refused it
    assert "--vsphere-ip-timeout" in line


# The source's state is known before any clone: these stop the run at its start, once, not in every test.


def test_powered_off_instant_source(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-clone-type=instant")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "template 'linux-template' is poweredOff, but an instant clone needs a running or frozen")
    assert "vsphere-clone freeze linux-template" in line and "--vsphere-clone-type=linked" in line


def test_linked_clone_without_snapshot(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-nosnap")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "template 'linux-nosnap' has no snapshot, which a linked clone needs")
    assert "create a snapshot on linux-nosnap" in line and "--vsphere-clone-type=full" in line


def test_unknown_snapshot_name(bad_run: Callable[..., Outcome]) -> None:
    outcome = bad_run("--vsphere-template=linux-template", "--vsphere-snapshot=nope")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(outcome, "has no snapshot 'nope' (it has 'base')")
    assert "--vsphere-snapshot" in line


def test_named_fixture_with_a_powered_off_instant_source(bad_run: Callable[..., Outcome], inner: Inner) -> None:
    inner.pytester.makeini("[pytest]\nvsphere_fixtures =\n    fresh: template=linux-template clone_type=instant\n")
    outcome = bad_run("--vsphere-template=linux-template")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    one_line(outcome, "template 'linux-template' is poweredOff, but an instant clone needs")


def test_a_vm_without_snapshots_is_fine_as_a_full_clone(inner: Inner, plugin_sim: SimHandle) -> None:
    """The up-front check does not refuse what works: a full clone of a VM without snapshots."""
    inner.pytester.makepyfile(test_ok=A_TEST)
    outcome = inner.run("--vsphere-template=linux-nosnap", "--vsphere-clone-type=full", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    inner.clean_after(outcome, plugin_sim)
