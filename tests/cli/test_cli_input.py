"""Bad input: one clear line naming the fix, exit 1 (failures) or 2 (usage), passwords never printed."""

from __future__ import annotations

import socket
from importlib import metadata

import pytest
from cli_helpers import Run, run_subprocess, sim_env

from pytest_vsphere_clone.simulator import Simulator

COMMANDS = ("simulator", "list", "reap", "freeze", "collapse", "doctor")
#: One invocation of each vCenter-facing command (freeze gets guest credentials so it gets as far as connecting).
CONNECTING = (["list"], ["reap", "--dry-run"], ["freeze", "linux-template"], ["collapse", "linux-frozen"])
GUEST = {"VSPHERE_GUEST_USER": "root", "VSPHERE_GUEST_PASSWORD": "guest-secret-123"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_error_line(result_err: str) -> str:
    lines = [line for line in result_err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli: Run, command: str) -> None:
    result = cli(None, command, "--help")
    assert result.status == 0
    assert result.out.startswith(f"usage: vsphere-clone {command}")


def test_top_level_help_lists_the_commands(cli: Run) -> None:
    result = cli(None, "--help")
    assert result.status == 0
    for command in COMMANDS:
        assert command in result.out
    # argparse wraps the description (at a hyphen, too): compare without the white space
    assert f"(pytest-vsphere-clone{metadata.version('pytest-vsphere-clone')})." in "".join(result.out.split())


def test_version(cli: Run) -> None:
    result = cli(None, "--version")
    assert result.status == 0 and result.err == ""
    assert result.out == f"vsphere-clone {metadata.version('pytest-vsphere-clone')}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_the_verbosity_the_errors_advise(cli: Run, command: str) -> None:
    """Errors say "rerun with -vv": every command takes it, after the command or before it."""
    assert cli(None, command, "-vv", "--help").status == 0
    assert cli(None, "-vv", command, "--help").status == 0
    assert "-v, --verbose" in cli(None, command, "--help").out


def test_an_unexpected_error_advises_a_vv_that_works(cli: Run, sim: Simulator) -> None:
    sim.inject_fault("RetrievePropertiesEx", "InvalidArgument", count=-1, message="boom")
    result = cli(sim, "collapse", "linux-frozen")
    assert result.status == 1
    line = one_error_line(result.err)
    assert "(rerun with -vv for a traceback)" in line
    for argv in (("collapse", "linux-frozen", "-vv"), ("-vv", "collapse", "linux-frozen")):
        verbose = cli(sim, *argv)
        assert verbose.status == 1 and "Traceback (most recent call last)" in verbose.err, argv


def test_simulator_help_describes_it(cli: Run) -> None:
    result = cli(None, "simulator", "--help")
    assert result.status == 0
    text = " ".join(result.out.split())
    assert "Run the bundled vCenter simulator in the foreground" in text
    for default in ("(default: 127.0.0.1)", "(default: fast)", "(default: 1.0)", "(default: a fresh random one)"):
        assert default in text


def test_no_command_or_an_unknown_one_is_a_usage_error(cli: Run) -> None:
    assert cli(None).status == 2
    result = cli(None, "frobnicate")
    assert result.status == 2 and "invalid choice" in result.err


@pytest.mark.parametrize(("unset", "named"), [("VSPHERE_HOST", "--host"), ("VSPHERE_USER", "--user"),
                                               ("VSPHERE_PASSWORD", "VSPHERE_PASSWORD")])
def test_missing_connection_settings_are_usage_errors(cli: Run, sim: Simulator, unset: str, named: str) -> None:
    result = cli(sim, "list", env={unset: None})
    assert result.status == 2
    line = one_error_line(result.err)
    assert line.startswith("vsphere-clone list: error: ") and named in line and unset in line


def test_bad_values_are_usage_errors(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "reap", "--older-than", "soon")
    assert result.status == 2 and "expected a duration such as 90s, 15m, 2h or 1d" in result.err
    result = cli(sim, "reap", "--run", "r1", "--older-than", "1h")
    assert result.status == 2 and "not allowed with" in result.err
    result = cli(sim, "list", env={"VSPHERE_INSECURE": "maybe"})
    assert result.status == 2 and "VSPHERE_INSECURE" in one_error_line(result.err)
    result = cli(sim, "doctor", env={"VSPHERE_CLONE_TYPE": "linkd"})
    assert result.status == 2 and "linked, instant, full" in one_error_line(result.err)


def test_freeze_needs_guest_credentials(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "freeze", "linux-template")
    assert result.status == 2
    line = one_error_line(result.err)
    assert "--guest-user" in line and "VSPHERE_GUEST_PASSWORD" in line
    assert sim.find_vm("linux-template").power_state == "poweredOff"


@pytest.mark.parametrize("argv", CONNECTING, ids=lambda argv: argv[0])
def test_wrong_password(cli: Run, sim: Simulator, argv: list[str]) -> None:
    result = cli(sim, *argv, env={"VSPHERE_PASSWORD": "not-the-password", **GUEST},
                 secrets=("not-the-password", GUEST["VSPHERE_GUEST_PASSWORD"]))
    assert result.status == 1
    line = one_error_line(result.err)
    assert f"vsphere-clone {argv[0]}: error: vCenter" in line
    assert "rejected the login of user 'administrator@vsphere.local'" in line
    assert "check --user and --password" in line  # the command's options, not pytest's --vsphere-*


def test_password_given_on_the_command_line_is_never_echoed(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "list", "--password", "cmdline-secret", "-vv", secrets=("cmdline-secret",))
    assert result.status == 1 and "rejected the login" in result.err


@pytest.mark.parametrize("argv", CONNECTING, ids=lambda argv: argv[0])
def test_unreachable_host(cli: Run, argv: list[str]) -> None:
    port = closed_port()
    result = cli(None, *argv, env={"VSPHERE_HOST": f"127.0.0.1:{port}", "VSPHERE_USER": "u",
                                   "VSPHERE_PASSWORD": "unreachable-secret", **GUEST},
                 secrets=("unreachable-secret",))
    assert result.status == 1
    line = one_error_line(result.err)
    assert f"cannot reach vCenter 127.0.0.1:{port}" in line and "check --host" in line


def test_unknown_host_name(cli: Run) -> None:
    result = cli(None, "list", env={"VSPHERE_HOST": "no-such-vcenter.invalid", "VSPHERE_USER": "u",
                                    "VSPHERE_PASSWORD": "pw-pw-pw"})
    assert result.status == 1 and "cannot resolve host name" in one_error_line(result.err)


@pytest.mark.parametrize("argv", CONNECTING, ids=lambda argv: argv[0])
def test_tls_without_the_ca(cli: Run, sim: Simulator, argv: list[str]) -> None:
    result = cli(sim, *argv, env={"VSPHERE_CA_BUNDLE": None, **GUEST})
    assert result.status == 1
    line = one_error_line(result.err)
    assert "TLS certificate of vCenter" in line and "--ca-bundle=PATH" in line and "--insecure" in line


def test_missing_ca_bundle_file(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "list", "--ca-bundle", "/nonexistent/ca.pem")
    assert result.status == 1
    assert "CA bundle /nonexistent/ca.pem does not exist: check --ca-bundle" in one_error_line(result.err)


def test_insecure_connects_with_a_warning(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "list", "--insecure", env={"VSPHERE_CA_BUNDLE": None})
    assert result.status == 0
    assert "no VM carries the pytest-vsphere-clone marker" in result.out
    assert "warning: TLS verification of vCenter" in one_error_line(result.err)
    assert "--insecure" in result.err and "--vsphere-insecure" not in result.err


def test_options_win_over_the_environment(cli: Run, sim: Simulator) -> None:
    facts = sim.connection_facts()
    result = cli(sim, "list", "--host", facts["HOST"], env={"VSPHERE_HOST": "no-such-vcenter.invalid"})
    assert result.status == 0


def test_unknown_template(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "collapse", "linux-templat")
    assert result.status == 1
    line = one_error_line(result.err)
    assert "template 'linux-templat' not found" in line and "did you mean 'linux-template'" in line
    result = cli(sim, "freeze", "nope", env=GUEST)
    assert result.status == 1 and "template 'nope' not found" in one_error_line(result.err)


def test_the_console_script_runs_as_a_subprocess(sim: Simulator) -> None:
    result = run_subprocess(["reap", "--dry-run"], sim_env(sim))
    assert result.status == 0, result.err
    assert result.out.startswith("nothing to reap: 0 marked VMs")
    bad = run_subprocess(["list"], sim_env(sim, VSPHERE_PASSWORD="subprocess-secret"))
    assert bad.status == 1 and "rejected the login" in bad.err
    assert "subprocess-secret" not in bad.text and sim.password not in bad.text
