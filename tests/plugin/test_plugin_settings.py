"""Settings: CLI > env > ini > default, the header naming each source, no secret printed, usage errors.

These runs need no simulator: with ``--collect-only`` the plugin resolves and
shows its settings but connects to nothing, and invalid values stop pytest
before any test with exit code 4 (usage error).
"""

from __future__ import annotations

import pytest
from plugin_helpers import Inner, Outcome

A_TEST = "def test_nothing():\n    pass\n"
CONNECTION = ("--vsphere-host=vc.example.invalid", "--vsphere-user=tester@vsphere.local",
              "--vsphere-template=linux-template")


def header(outcome: Outcome) -> str:
    lines = [line for line in outcome.result.stdout.lines if line.startswith("vsphere-clone: ")]
    assert lines, outcome.out
    return lines[0]


def shown(outcome: Outcome) -> dict[str, str]:
    """``name -> "value (source)"`` from the header."""
    items = header(outcome).removeprefix("vsphere-clone: ").split(", ")
    return dict(item.split("=", 1) for item in items)


@pytest.fixture
def ini(inner: Inner) -> Inner:
    inner.pytester.makeini("""
        [pytest]
        vsphere_clone_type = full
        vsphere_ip_timeout = 30
        vsphere_keep = always
        vsphere_name_prefix = from-ini
        vsphere_guest_password = ini-Secret-1
    """)
    inner.pytester.makepyfile(test_a=A_TEST)
    return inner


def test_cli_beats_env_beats_ini_beats_default(ini: Inner) -> None:
    outcome = ini.run(*CONNECTION, "--vsphere-clone-type=linked", "--vsphere-ip-timeout=12", "--collect-only",
                      env={"VSPHERE_CLONE_TYPE": "instant", "VSPHERE_KEEP": "on-failure", "VSPHERE_IP_TIMEOUT": "20"})
    assert outcome.ret == 0, outcome.out
    settings = shown(outcome)
    assert settings["clone-type"] == "linked (cli)"  # cli over env and ini
    assert settings["ip-timeout"] == "12.0 (cli)"
    assert settings["keep"] == "on-failure (env)"  # env over ini
    assert settings["name-prefix"] == "from-ini (ini)"  # ini over default
    assert settings["host"] == "vc.example.invalid (cli)"
    assert "scope" not in settings and "collapse" not in settings  # defaults are not listed
    assert outcome.run_dirs() == []


def test_env_beats_ini(ini: Inner) -> None:
    outcome = ini.run(*CONNECTION, "--collect-only", env={"VSPHERE_CLONE_TYPE": "instant"})
    assert outcome.ret == 0, outcome.out
    settings = shown(outcome)
    assert settings["clone-type"] == "instant (env)"
    assert settings["ip-timeout"] == "30.0 (ini)"


def test_secrets_are_masked_in_the_header_and_never_printed(ini: Inner) -> None:
    outcome = ini.run(*CONNECTION, "--vsphere-password=cli-Secret-2", "--collect-only",
                      env={"VSPHERE_GUEST_PASSWORD": "env-Secret-3"})
    assert outcome.ret == 0, outcome.out
    settings = shown(outcome)
    assert settings["password"] == "*** (cli)"
    assert settings["guest-password"] == "*** (env)"
    for secret in ("cli-Secret-2", "env-Secret-3", "ini-Secret-1"):
        assert secret not in outcome.out


def test_an_invalid_secret_is_not_echoed(inner: Inner) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = inner.run(*CONNECTION, "--vsphere-insecure", "--vsphere-ca-bundle=/x.pem",
                        env={"VSPHERE_PASSWORD": "env-Secret-4"})
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "env-Secret-4" not in outcome.out


@pytest.mark.parametrize(("args", "env", "ini_line", "message"), [
    (["--vsphere-clone-type=quick"], {}, "",
     "invalid value 'quick' for --vsphere-clone-type: allowed: linked, instant, full"),
    ([], {"VSPHERE_SCOPE": "class"}, "",
     "invalid value 'class' for VSPHERE_SCOPE: allowed: worker, session, module, function"),
    ([], {}, "vsphere_keep = sometimes",
     "invalid value 'sometimes' for vsphere_keep: allowed: never, on-failure, always"),
    (["--vsphere-collapse=all"], {}, "", "for --vsphere-collapse: allowed: none, snapshot, promote"),
    (["--vsphere-discovery=dns"], {}, "", "for --vsphere-discovery: allowed: active, tools"),
    (["--vsphere-ip-family=ipv5"], {}, "", "for --vsphere-ip-family: allowed: ipv4, ipv6, any"),
    (["--vsphere-os=beos"], {}, "", "for --vsphere-os: allowed: auto, linux, windows"),
    (["--vsphere-winrm-transport=smoke"], {}, "", "for --vsphere-winrm-transport: allowed: ntlm, basic,"),
    (["--vsphere-ssh-port=twenty-two"], {}, "", "invalid value 'twenty-two' for --vsphere-ssh-port"),
    (["--vsphere-ip-timeout=0"], {}, "", "invalid value '0' for --vsphere-ip-timeout: must be greater than 0"),
    (["--vsphere-ttl=soon"], {}, "", "invalid value 'soon' for --vsphere-ttl: expected a duration such as 90s"),
    (["--vsphere-ip-network=10.0.0.0/33"], {}, "", "invalid value '10.0.0.0/33' for --vsphere-ip-network"),
    ([], {"VSPHERE_INSECURE": "maybe"}, "", "invalid value 'maybe' for VSPHERE_INSECURE: expected true or false"),
    (["--vsphere-insecure", "--vsphere-ca-bundle=/x.pem"], {}, "",
     "--vsphere-insecure and --vsphere-ca-bundle exclude each other"),
], ids=["cli-clone-type", "env-scope", "ini-keep", "collapse", "discovery", "ip-family", "os", "winrm-transport",
        "ssh-port", "ip-timeout", "ttl", "ip-network", "env-bool", "insecure-and-ca-bundle"])
def test_invalid_values_are_usage_errors_naming_setting_and_allowed_values(
        inner: Inner, args: list[str], env: dict[str, str], ini_line: str, message: str) -> None:
    if ini_line:
        inner.pytester.makeini(f"[pytest]\n{ini_line}\n")
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = inner.run(*CONNECTION, *args, env=env)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    errors = [line for line in outcome.result.stderr.lines if line.startswith("ERROR: ")]
    assert len(errors) == 1 and message in errors[0], outcome.out
    assert outcome.run_dirs() == []


def test_template_without_a_vcenter_names_the_fix(inner: Inner) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = inner.run("--vsphere-template=linux-template")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "set --vsphere-host (or VSPHERE_HOST), or use --vsphere-simulator" in outcome.out


def test_plugin_stays_idle_without_settings(inner: Inner) -> None:
    inner.pytester.makepyfile(test_a=A_TEST + "\ndef test_vm(vsphere_vm):\n    pass\n")
    outcome = inner.run("-rA")
    outcome.result.assert_outcomes(passed=1, errors=1)
    assert "vsphere-clone:" not in outcome.out  # no header line
    assert "vSphere fixtures need a template: pass --vsphere-template=NAME" in outcome.out
    assert outcome.run_dirs() == []
