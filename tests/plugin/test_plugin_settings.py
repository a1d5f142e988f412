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
    (["--vsphere-ssh-port=99999"], {}, "",
     "invalid value '99999' for --vsphere-ssh-port: must be a port number from 1 to 65535"),
    ([], {"VSPHERE_SSH_PORT": "0"}, "",
     "invalid value '0' for VSPHERE_SSH_PORT: must be a port number from 1 to 65535"),
    ([], {}, "vsphere_winrm_port = 65536",
     "invalid value '65536' for vsphere_winrm_port: must be a port number from 1 to 65535"),
    (["--vsphere-ttl=0"], {}, "", "invalid value '0' for --vsphere-ttl: must be at least 1 minute"),
    (["--vsphere-ttl=59s"], {}, "", "invalid value '59s' for --vsphere-ttl: must be at least 1 minute"),
    (["--vsphere-ip-network=10.0.0.0/8", "--vsphere-ip-family=ipv6"], {}, "",
     "--vsphere-ip-network=10.0.0.0/8 is an IPv4 network, but --vsphere-ip-family=ipv6 accepts only IPv6 addresses"),
    (["--vsphere-ip-network=fd00::/64"], {}, "",
     "--vsphere-ip-network=fd00::/64 is an IPv6 network, but --vsphere-ip-family=ipv4 accepts only IPv4 addresses"),
    (["--vsphere-ssh-host-key-policy=trust"], {}, "",
     "invalid value 'trust' for --vsphere-ssh-host-key-policy: allowed: guest, known-hosts, accept-new"),
], ids=["cli-clone-type", "env-scope", "ini-keep", "collapse", "discovery", "ip-family", "os", "winrm-transport",
        "ssh-port", "ip-timeout", "ttl", "ip-network", "env-bool", "insecure-and-ca-bundle", "ssh-port-range",
        "env-ssh-port-zero", "ini-winrm-port-range", "ttl-zero", "ttl-under-a-minute", "ipv4-network-ipv6-family",
        "ipv6-network-ipv4-family", "host-key-policy"])
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


def test_a_ttl_of_one_minute_and_an_agreeing_family_are_fine(inner: Inner) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = inner.run(*CONNECTION, "--vsphere-ttl=1m", "--vsphere-ip-network=fd00::/64", "--vsphere-ip-family=ipv6",
                        "--vsphere-ssh-port=65535", "--collect-only")
    assert outcome.ret == 0, outcome.out
    settings = shown(outcome)
    assert settings["ttl"] == "60.0 (cli)" and settings["ssh-port"] == "65535 (cli)"


def usage_error(outcome: Outcome) -> str:
    """The one ``ERROR:`` line of a run stopped by a usage error (exit 4)."""
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    errors = [line for line in outcome.result.stderr.lines if line.startswith("ERROR: ")]
    assert len(errors) == 1, outcome.out
    assert "Traceback" not in outcome.out
    return errors[0]


@pytest.mark.parametrize(("fixtures", "message"), [
    ("web: template=linux-template\n    web: template=linux-frozen clone_type=instant",
     "vsphere_fixtures: web is declared twice: give each named fixture its own name"),
    ("web: template=linux-template ip_network=10.0.0.0/8 ip_family=ipv6",
     "vsphere_fixtures: web: --vsphere-ip-network=10.0.0.0/8 is an IPv4 network, but --vsphere-ip-family=ipv6"),
    ("web: template=linux-template ssh_port=99999",
     "vsphere_fixtures: web: invalid ssh_port='99999': must be a port number from 1 to 65535"),
    ("web: template=linux-template ttl=10s", "vsphere_fixtures: web: invalid ttl='10s': must be at least 1 minute"),
    ("request: template=linux-template",
     "vsphere_fixtures: request is pytest's own request object, which no fixture may replace"),
], ids=["duplicate", "family-and-network", "port", "ttl", "request"])
def test_named_fixture_errors(inner: Inner, fixtures: str, message: str) -> None:
    inner.pytester.makeini(f"[pytest]\nvsphere_fixtures =\n    {fixtures}\n")
    inner.pytester.makepyfile(test_a=A_TEST)
    assert message in usage_error(inner.run(*CONNECTION, "--collect-only"))


@pytest.mark.parametrize(("name", "where"), [
    ("tmp_path", "_pytest.tmpdir.tmp_path"),
    ("vsphere_vm", "pytest_vsphere_clone.plugin.fixtures.vsphere_vm"),
])
def test_a_named_fixture_may_not_take_a_fixture_name_of_pytest_or_a_plugin(inner: Inner, name: str,
                                                                            where: str) -> None:
    """A named fixture called tmp_path silently replaced pytest's own: now the run stops before it starts."""
    inner.pytester.makeini(f"[pytest]\nvsphere_fixtures =\n    {name}: template=linux-template\n")
    inner.pytester.makepyfile(test_a="def test_tmp(tmp_path):\n    assert tmp_path.is_dir()\n")
    line = usage_error(inner.run(*CONNECTION, "--collect-only"))
    assert f"vsphere_fixtures: {name} is already the name of a fixture ({where})" in line
    assert "give the clone fixture another name in vsphere_fixtures" in line


@pytest.mark.parametrize("place", ["conftest", "module"])
def test_a_named_fixture_may_not_share_a_name_with_a_conftest_or_module_fixture(inner: Inner, place: str) -> None:
    inner.pytester.makeini("[pytest]\nvsphere_fixtures =\n    web: template=linux-template\n")
    fixture = "import pytest\n\n@pytest.fixture\ndef web():\n    return 'mine'\n"
    test = "def test_web(web):\n    assert web == 'mine'\n"
    if place == "conftest":
        inner.pytester.makeconftest(fixture)
        inner.pytester.makepyfile(test_a=test)
    else:
        inner.pytester.makepyfile(test_a=fixture + "\n\n" + test)
    line = usage_error(inner.run(*CONNECTION, "--collect-only"))
    assert "vsphere_fixtures: web is already the name of a fixture" in line
    assert ("conftest.web" if place == "conftest" else "test_a.web") in line


def test_the_simulator_sets_the_environments_vcenter_and_guest_settings_aside(inner: Inner) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = inner.run("--vsphere-simulator", "--collect-only", env={
        "VSPHERE_HOST": "vc.example.invalid", "VSPHERE_USER": "someone@example.invalid",
        "VSPHERE_PASSWORD": "env-Secret-5", "VSPHERE_GUEST_USER": "admin", "VSPHERE_GUEST_PASSWORD": "env-Secret-6",
        "VSPHERE_DATACENTER": "prod", "VSPHERE_KEEP": "always"})
    assert outcome.ret == 0, outcome.out
    settings = shown(outcome)
    assert settings["keep"] == "always (env)"  # not a vCenter or guest setting: still the environment's
    for name in ("host", "user", "password", "guest-user", "guest-password", "datacenter"):
        assert name not in settings
    notes = [line for line in outcome.result.stdout.lines if line.startswith("vsphere-clone: --vsphere-simulator")]
    assert notes == ["vsphere-clone: --vsphere-simulator ignores VSPHERE_DATACENTER, VSPHERE_GUEST_PASSWORD, "
                     "VSPHERE_GUEST_USER, VSPHERE_HOST, VSPHERE_PASSWORD, VSPHERE_USER from the environment: the "
                     "simulator brings its own vCenter and guests"], outcome.out
    for secret in ("env-Secret-5", "env-Secret-6"):
        assert secret not in outcome.out


def test_accept_new_warns_in_the_header(inner: Inner) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = inner.run(*CONNECTION, "--vsphere-ssh-host-key-policy=accept-new", "--collect-only")
    assert outcome.ret == 0, outcome.out
    assert shown(outcome)["ssh-host-key-policy"] == "accept-new (cli)"
    warnings = [line for line in outcome.result.stdout.lines if line.startswith("vsphere-clone: warning:")]
    assert len(warnings) == 1 and "accept-new trusts each clone's SSH host key on first use" in warnings[0]
