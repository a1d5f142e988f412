"""The cmd.exe dialect on a temp-dir disk with a fake network backend (pure logic, no root)."""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
import time
from pathlib import Path

import pytest

from pytest_vsphere_clone.client.discovery import windows_wait_command
from pytest_vsphere_clone.simulator.guests.windows.cmd.shell import CmdShell
from pytest_vsphere_clone.simulator.guests.windows.context import WindowsGuestContext
from pytest_vsphere_clone.simulator.guests.windows.network import DnsConfig, IpAddress, NetInterface, NetworkError

CRLF = "\r\n"
NOT_RECOGNIZED = (
    "'{}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
)


class FakeNetwork:
    """In-memory NetworkBackend: one DHCP-managed NIC (eth0) and an unplugged one (eth1)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_renew = False
        self.lo = NetInterface(
            1, "lo", "00:00:00:00:00:00", True, True, 65536, True, (IpAddress("127.0.0.1", 8, 4, "host"),)
        )
        self.eth0 = NetInterface(
            index=4,
            name="eth0",
            mac="00:50:56:ab:cd:ef",
            admin_up=True,
            carrier=True,
            addresses=(
                IpAddress("fe80::250:56ff:feab:cdef", 64, 6, "link"),
                IpAddress(
                    "10.0.0.5", 24, 4, "global", dynamic=True, valid_lifetime=3600, preferred_lifetime=3600
                ),
            ),
            gateways=("10.0.0.1",),
        )
        self.eth1 = NetInterface(5, "eth1", "00:50:56:00:00:02", admin_up=True, carrier=False)

    @property
    def dhcp_available(self) -> bool:
        return True

    def interfaces(self) -> list[NetInterface]:
        return [self.lo, self.eth0, self.eth1]

    def dns(self) -> DnsConfig:
        return DnsConfig(("10.0.0.1", "10.0.0.2"), ("lab.example",))

    def renew_dhcp(self, ifname: str) -> None:
        self.calls.append(("renew", ifname))
        if self.fail_renew:
            raise NetworkError("unable to contact your DHCP server. Request has timed out.")
        lease = IpAddress("10.0.0.77", 24, 4, dynamic=True, valid_lifetime=7200, preferred_lifetime=7200)
        v6 = tuple(a for a in self.eth0.addresses if a.family == 6)
        self.eth0 = dataclasses.replace(self.eth0, addresses=(*v6, lease))

    def release_dhcp(self, ifname: str) -> None:
        self.calls.append(("release", ifname))
        self.eth0 = dataclasses.replace(
            self.eth0, addresses=tuple(a for a in self.eth0.addresses if a.family == 6)
        )

    def set_link(self, ifname: str, up: bool) -> None:
        self.calls.append(("link-up" if up else "link-down", ifname))
        self.eth0 = dataclasses.replace(self.eth0, admin_up=up)


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork()


@pytest.fixture
def context(tmp_path: Path, network: FakeNetwork) -> WindowsGuestContext:
    ctx = WindowsGuestContext("win-test01.lab.example", tmp_path / "disk", "vagrant", network=network)
    ctx.prepare_disk()
    return ctx


@pytest.fixture
def shell(context: WindowsGuestContext) -> CmdShell:
    return CmdShell(context)


# -- ipconfig / netsh ------------------------------------------------------------------------------


def test_ipconfig_matches_windows_layout(shell: CmdShell) -> None:
    result = shell.run("ipconfig")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        "\r\nWindows IP Configuration\r\n\r\n"
        "\r\nEthernet adapter Ethernet0:\r\n\r\n"
        "   Connection-specific DNS Suffix  . : lab.example\r\n"
        "   Link-local IPv6 Address . . . . . : fe80::250:56ff:feab:cdef%4\r\n"
        "   IPv4 Address. . . . . . . . . . . : 10.0.0.5\r\n"
        "   Subnet Mask . . . . . . . . . . . : 255.255.255.0\r\n"
        "   Default Gateway . . . . . . . . . : 10.0.0.1\r\n"
        "\r\nEthernet adapter Ethernet1:\r\n\r\n"
        "   Media State . . . . . . . . . . . : Media disconnected\r\n"
        "   Connection-specific DNS Suffix  . : lab.example\r\n"
    )


def test_ipconfig_all_adds_hardware_and_dhcp_details(shell: CmdShell) -> None:
    out = shell.run("ipconfig /all").stdout
    assert "   Host Name . . . . . . . . . . . . : win-test01\r\n" in out
    assert "   Physical Address. . . . . . . . . : 00-50-56-AB-CD-EF\r\n" in out
    assert "   DHCP Enabled. . . . . . . . . . . : Yes\r\n" in out
    assert "   IPv4 Address. . . . . . . . . . . : 10.0.0.5(Preferred) \r\n" in out
    assert "   DNS Servers . . . . . . . . . . . : 10.0.0.1\r\n" + " " * 39 + "10.0.0.2\r\n" in out
    assert "Lease Expires" in out
    # Every "label : value" line puts the colon in the same column, as Windows does.
    fields = [line for line in out.split(CRLF) if line.startswith("   ") and " : " in line]
    assert fields and {line.index(" : ") for line in fields} == {36}


def test_ipconfig_is_case_insensitive_and_accepts_glued_switch(shell: CmdShell) -> None:
    assert "Physical Address" in shell.run("IPCONFIG/ALL").stdout
    assert "Physical Address" in shell.run(r"C:\Windows\System32\ipconfig.exe -all").stdout


def test_ipconfig_renew_runs_the_dhcp_hook(shell: CmdShell, network: FakeNetwork) -> None:
    result = shell.run("ipconfig /renew")
    assert result.exit_code == 0
    assert ("renew", "eth0") in network.calls
    # The unplugged adapter is skipped with Windows' message, not renewed.
    assert ("renew", "eth1") not in network.calls
    assert "No operation can be performed on Ethernet1 while it has its media disconnected." in result.stdout
    assert "IPv4 Address. . . . . . . . . . . : 10.0.0.77" in result.stdout


def test_ipconfig_renew_reports_dhcp_failure(shell: CmdShell, network: FakeNetwork) -> None:
    network.fail_renew = True
    result = shell.run("ipconfig /renew Ethernet0")
    assert result.exit_code == 1
    assert (
        "An error occurred while renewing interface Ethernet0 : unable to contact your DHCP server"
        in result.stdout
    )


def test_ipconfig_release_and_unknown_adapter(shell: CmdShell, network: FakeNetwork) -> None:
    result = shell.run("ipconfig /release Ethernet0")
    assert result.exit_code == 0
    assert network.calls == [("release", "eth0")]
    assert "IPv4 Address" not in result.stdout
    missing = shell.run("ipconfig /renew Nope*")
    assert missing.exit_code == 1
    assert "no adapter is in the state permissible" in missing.stdout


def test_ipconfig_rejects_unknown_switch(shell: CmdShell) -> None:
    result = shell.run("ipconfig /bogus")
    assert result.exit_code == 1
    assert "Error: unrecognized or incomplete command line." in result.stdout


@pytest.mark.parametrize(
    "disable, enable",
    [
        (
            'netsh interface set interface name="Ethernet0" admin=disabled',
            'netsh interface set interface name="Ethernet0" admin=enabled',
        ),
        ("netsh interface set interface Ethernet0 disable", "netsh int set int Ethernet0 enable"),
    ],
)
def test_netsh_toggles_the_real_link(
    shell: CmdShell, network: FakeNetwork, disable: str, enable: str
) -> None:
    assert shell.run(disable).exit_code == 0
    assert network.calls[-1] == ("link-down", "eth0")
    # Windows leaves disabled adapters out of ipconfig.
    assert "Ethernet0" not in shell.run("ipconfig").stdout
    assert (
        "Disabled       Disconnected   Dedicated        Ethernet0"
        in shell.run("netsh interface show interface").stdout
    )
    assert shell.run(enable).exit_code == 0
    assert network.calls[-1] == ("link-up", "eth0")
    assert "Ethernet adapter Ethernet0:" in shell.run("ipconfig").stdout


def test_netsh_errors(shell: CmdShell, network: FakeNetwork) -> None:
    missing = shell.run('netsh interface set interface name="Ethernet9" admin=disabled')
    assert missing.exit_code == 1
    assert "Element not found." in missing.stdout
    assert shell.run("netsh wlan show profiles").exit_code == 1
    assert network.calls == []


def test_interface_mapping_selects_and_renames(tmp_path: Path, network: FakeNetwork) -> None:
    context = WindowsGuestContext("h", tmp_path, interface_names={"Ethernet0 2": "eth1"}, network=network)
    out = CmdShell(context).run("ipconfig").stdout
    assert "Ethernet adapter Ethernet0 2:" in out
    assert "10.0.0.5" not in out


# -- cmd.exe behaviour ----------------------------------------------------------------------------


def test_identity_commands(shell: CmdShell) -> None:
    assert shell.run("hostname").stdout == "win-test01\r\n"
    assert shell.run("whoami").stdout == "win-test01\\vagrant\r\n"
    assert shell.run("ver").stdout == "\r\nMicrosoft Windows [Version 10.0.17763.1]\r\n"
    assert shell.run("echo %COMPUTERNAME% %USERNAME%").stdout == "WIN-TEST01 vagrant\r\n"


@pytest.mark.parametrize(
    "line, expected",
    [
        ("echo hello world", "hello world\r\n"),
        ("echo.", "\r\n"),
        ("echo", "ECHO is on.\r\n"),
        ('echo "a & b"', '"a & b"\r\n'),
        ("echo a^&b", "a&b\r\n"),
        ("echo a & echo b", "a \r\nb\r\n"),  # cmd.exe keeps the space before '&'
        ("(echo a & echo b)", "a \r\nb\r\n"),
        ("echo %NOPE_UNDEFINED%", "%NOPE_UNDEFINED%\r\n"),
    ],
)
def test_echo(shell: CmdShell, line: str, expected: str) -> None:
    result = shell.run(line)
    assert (result.exit_code, result.stdout, result.stderr) == (0, expected, "")


def test_unknown_command_answers_like_cmd(shell: CmdShell) -> None:
    result = shell.run("foo bar")
    assert result.exit_code == 9009
    assert result.stdout == ""
    assert result.stderr == NOT_RECOGNIZED.format("foo")


def test_exit_codes_and_conditionals(shell: CmdShell) -> None:
    assert shell.run("exit /b 3").exit_code == 3
    assert shell.run("cmd /c exit /b 4").exit_code == 4
    assert shell.run("exit 5 & echo never").stdout == ""
    assert shell.run("foo 2>nul || echo fallback").stdout == "fallback\r\n"
    assert shell.run("foo 2>nul && echo never").stdout == ""
    assert shell.run("hostname && echo ok").stdout == "win-test01\r\nok\r\n"
    # %ERRORLEVEL% expands when the line is read, before anything runs.
    assert shell.run("cmd /c exit /b 7 & echo %ERRORLEVEL%").stdout == "0\r\n"
    assert shell.run('cmd /c "exit /b 7" || echo failed').stdout == "failed\r\n"


def test_syntax_errors(shell: CmdShell) -> None:
    result = shell.run("&& echo x")
    assert (result.exit_code, result.stderr) == (255, "&& was unexpected at this time.\r\n")
    assert shell.run("echo x >").stderr == "The syntax of the command is incorrect.\r\n"


def test_redirection_round_trip(shell: CmdShell, context: WindowsGuestContext) -> None:
    result = shell.run(
        r"echo first> C:\Users\vagrant\AppData\Local\Temp\out.txt & echo second>>%TEMP%\out.txt"
        r" & type %TEMP%\OUT.TXT"
    )
    assert result.exit_code == 0
    # As in cmd.exe, the blank before '&' belongs to the echoed text.
    assert result.stdout == "first \r\nsecond \r\n"
    on_disk = context.disk_root / "C" / "Users" / "vagrant" / "AppData" / "Local" / "Temp" / "out.txt"
    assert on_disk.read_bytes() == b"first \r\nsecond \r\n"


def test_stderr_redirection(shell: CmdShell, context: WindowsGuestContext) -> None:
    result = shell.run(r"foo 2> C:\err.txt & type C:\err.txt")
    assert result.stderr == ""
    assert result.stdout == NOT_RECOGNIZED.format("foo")
    both = shell.run(r"(echo out & foo) > C:\both.txt 2>&1 & type C:\both.txt")
    assert both.stdout.startswith("out \r\n'foo' is not recognized")
    assert shell.run(r"type C:\missing.txt").stderr == "The system cannot find the file specified.\r\n"
    assert (
        shell.run(r"echo x > C:\no\such\dir\f.txt").stderr == "The system cannot find the path specified.\r\n"
    )


def test_pipes_into_findstr_and_find(shell: CmdShell) -> None:
    assert (
        shell.run("ipconfig | findstr IPv4").stdout == "   IPv4 Address. . . . . . . . . . . : 10.0.0.5\r\n"
    )
    assert shell.run('ipconfig /all | find /i "physical address"').stdout.count("Physical Address") == 2
    assert shell.run('ipconfig | find "nothing-like-this"').exit_code == 1


def test_paths_are_confined_to_the_disk(shell: CmdShell, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("outside")
    result = shell.run(r"type C:\..\..\secret.txt")
    assert result.exit_code == 1
    assert "outside" not in result.stdout
    (tmp_path / "disk" / "C" / "link").symlink_to(tmp_path)
    escaped = shell.run(r"type C:\link\secret.txt")
    assert (escaped.exit_code, escaped.stderr) == (1, "Access is denied.\r\n")
    assert shell.run(r"type D:\x.txt").exit_code == 1


def test_cd_dir_set_and_mkdir(shell: CmdShell) -> None:
    assert shell.run("cd").stdout == "C:\\Users\\vagrant\r\n"
    assert shell.run(r"cd /d c:\windows & cd").stdout == "C:\\Windows\r\n"
    assert shell.cwd == "C:\\Windows"
    assert shell.run(r"cd \nope").stderr == "The system cannot find the path specified.\r\n"
    assert shell.run(r"mkdir C:\work\sub & echo hi> C:\work\sub\f.txt").exit_code == 0
    listing = shell.run(r"dir C:\work\sub").stdout
    assert " Directory of C:\\work\\sub\r\n" in listing
    assert re.search(r"\s4 f\.txt\r\n", listing)
    assert shell.run(r"dir /b C:\work").stdout == "sub\r\n"
    assert shell.run("set GREETING=hi there").exit_code == 0
    assert shell.run("set GREET").stdout == "GREETING=hi there\r\n"
    assert shell.run("echo %greeting%").stdout == "hi there\r\n"
    assert shell.run("set NOPE_NOT_SET").exit_code == 1


def test_sleep_and_timeout_wait_and_can_be_cancelled(context: WindowsGuestContext) -> None:
    started = time.monotonic()
    result = CmdShell(context).run("sleep 0.2 & timeout /t 0 /nobreak")
    assert time.monotonic() - started >= 0.2
    assert result.exit_code == 0
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    assert CmdShell(context, cancel=cancel).run("sleep 30").exit_code != 0
    assert time.monotonic() - started < 5


def test_output_is_streamed_as_commands_finish(context: WindowsGuestContext) -> None:
    seen: list[tuple[str, str, float]] = []
    shell = CmdShell(context, on_output=lambda stream, text: seen.append((stream, text, time.monotonic())))
    shell.run("echo early& sleep 0.3 & echo late& foo")
    assert [(s, t) for s, t, _ in seen[:2]] == [("stdout", "early\r\n"), ("stdout", "late\r\n")]
    assert seen[1][2] - seen[0][2] >= 0.25
    assert seen[2][0] == "stderr"


def test_run_program_is_what_guest_operations_use(shell: CmdShell, context: WindowsGuestContext) -> None:
    result = shell.run_program(
        r"C:\Windows\System32\cmd.exe", r"/c ipconfig > C:\Users\vagrant\AppData\Local\Temp\out.txt"
    )
    assert (result.exit_code, result.stdout) == (0, "")
    saved = context.host_path(r"C:\Users\vagrant\AppData\Local\Temp\out.txt").read_text()
    assert "IPv4 Address. . . . . . . . . . . : 10.0.0.5" in saved
    assert shell.run_program("hostname.exe").stdout == "win-test01\r\n"
    missing = shell.run_program(r"C:\Tools\nothing.exe", "/x")
    assert (missing.exit_code, missing.stderr) == (2, "The system cannot find the file specified.\r\n")


def test_cmd_c_quote_rule(shell: CmdShell) -> None:
    assert shell.run('cmd /c "echo a & echo b"').stdout == "a \r\nb\r\n"
    # The Ruby winrm gem quotes the whole command; WinRM runs it as cmd.exe /c "<command>".
    assert shell.run('"hostname"').stdout == "win-test01\r\n"
    assert shell.run('"ipconfig /all"').exit_code == 0


# -- powershell ----------------------------------------------------------------------------------


def encoded(script: str) -> str:
    return "powershell -NoProfile -encodedcommand " + base64.b64encode(script.encode("utf-16-le")).decode()


def test_powershell_encoded_subset(shell: CmdShell) -> None:
    result = shell.run(encoded("hostname; $env:COMPUTERNAME\nWrite-Output 'one' \"two $env:USERNAME\""))
    assert result.exit_code == 0
    assert result.stdout == "win-test01\r\nWIN-TEST01\r\none\r\ntwo vagrant\r\n"
    ips = shell.run(encoded("(Get-NetIPAddress -AddressFamily IPv4).IPAddress")).stdout
    assert ips == "127.0.0.1\r\n10.0.0.5\r\n"
    listing = shell.run(encoded("Get-NetIPAddress -InterfaceAlias Ethernet0 -AddressFamily IPv4")).stdout
    assert "IPAddress         : 10.0.0.5\r\n" in listing
    assert "PrefixOrigin      : Dhcp\r\n" in listing
    assert (
        shell.run(encoded("ipconfig | Select-Object -First 2")).stdout == "\r\nWindows IP Configuration\r\n"
    )
    assert shell.run(encoded("$x = 'v'; echo $x; exit 4")).exit_code == 4


def test_powershell_errors_are_clixml_and_exit_1(shell: CmdShell) -> None:
    result = shell.run(encoded("Get-Nothing"))
    assert result.exit_code == 1
    assert result.stderr.startswith("#< CLIXML\r\n<Objs ")
    assert "The term 'Get-Nothing' is not recognized" in result.stderr
    plain = shell.run("powershell -Command Get-Nothing")
    assert plain.stderr.startswith("Get-Nothing : The term 'Get-Nothing' is not recognized")
    bad = shell.run("powershell -EncodedCommand !!notbase64!!")
    assert bad.exit_code == 1
    assert "not properly encoded" in bad.stderr


def test_powershell_loops_branches_and_conditions(shell: CmdShell) -> None:
    counted = shell.run(encoded("$i = 0; while ($i -lt 3) { echo $i; $i++ }; echo done"))
    assert (counted.exit_code, counted.stdout) == (0, "0\r\n1\r\n2\r\ndone\r\n")
    broken = shell.run(encoded("$i = 10\nwhile ($true) { $i--; if ($i -le 7) { break } }\necho $i"))
    assert broken.stdout == "7\r\n"
    branches = shell.run(encoded("if ($env:USERNAME -like 'vag*' -and -not ($false)) { echo yes } else { echo no }; "
                                 "if (1 -gt 2 -or 'a' -eq 'B') { echo wrong } else { echo right }"))
    assert branches.stdout == "yes\r\nright\r\n"
    # -and stops at the first false: the second clause would fail if it ran.
    assert shell.run(encoded("if ($false -and (Get-Nothing)) { echo x } else { echo short }")).stdout == "short\r\n"
    unclosed = shell.run(encoded("while ($true) { echo x"))
    assert unclosed.exit_code == 1 and "Missing closing '}'" in unclosed.stderr


def test_powershell_waits_for_an_address_as_discovery_does(shell: CmdShell, network: FakeNetwork) -> None:
    # The client's own Windows discovery command (the simulator's tests may use the client's text).
    wait = windows_wait_command("ipv4", wait=5.0)
    started = time.monotonic()
    at_once = shell.run(wait)
    assert at_once.exit_code == 0 and "10.0.0.5" in at_once.stdout and at_once.stderr == ""
    assert time.monotonic() - started < 0.3  # the lease is there: no wait at all
    network.release_dhcp("eth0")
    threading.Timer(0.4, network.renew_dhcp, ("eth0",)).start()
    started = time.monotonic()
    waited = shell.run(wait)
    assert 0.35 < time.monotonic() - started < 1.5
    assert "10.0.0.77" in waited.stdout and waited.stderr == ""
    network.release_dhcp("eth0")
    started = time.monotonic()
    timed_out = shell.run(windows_wait_command("ipv4", wait=0.3))  # none comes: ipconfig after the wait
    assert 0.3 <= time.monotonic() - started < 1.5 and "Windows IP Configuration" in timed_out.stdout


def test_the_windows_wait_without_powershell_is_a_plain_ipconfig(shell: CmdShell) -> None:
    result = shell.run(windows_wait_command().replace("powershell.exe", "no-such-shell.exe"))
    assert "Windows IP Configuration" in result.stdout and "not recognized" not in result.stdout + result.stderr


def test_get_net_ip_address_filters_by_origin_and_state(shell: CmdShell) -> None:
    dhcp = shell.run(encoded("(Get-NetIPAddress -PrefixOrigin Dhcp).IPAddress")).stdout
    assert dhcp == "10.0.0.5\r\n"
    assert shell.run(encoded("(Get-NetIPAddress -PrefixOrigin WellKnown -AddressFamily IPv4).IPAddress")).stdout \
        == "127.0.0.1\r\n"
    none = shell.run(encoded("Get-NetIPAddress -PrefixOrigin Manual"))
    assert none.exit_code == 1 and "No matching MSFT_NetIPAddress objects" in none.stderr
    # A non-terminating error inside a condition is reported, and the condition sees nothing.
    loud = shell.run(encoded("if (-not (Get-NetIPAddress -PrefixOrigin Manual)) { echo none }"))
    assert loud.stdout == "none\r\n" and "No matching MSFT_NetIPAddress objects" in loud.stderr
    quiet = shell.run(encoded("Get-NetIPAddress -PrefixOrigin Manual -ErrorAction SilentlyContinue; echo after"))
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "after\r\n", "")


def test_powershell_takes_its_start_up_time(context: WindowsGuestContext) -> None:
    slow = CmdShell(dataclasses.replace(context, powershell_start=(0.3, 0.3)))
    started = time.monotonic()
    assert slow.run("powershell -NoProfile -Command echo hi").stdout == "hi\r\n"
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert slow.run("echo cmd-alone").stdout == "cmd-alone\r\n"  # cmd.exe itself starts at once
    assert time.monotonic() - started < 0.3


def test_wildcards_in_dir_and_del(shell: CmdShell) -> None:
    shell.run(r"mkdir C:\logs & cd C:\logs & (echo a)>a.txt & (echo b)>b.log")
    assert shell.run(r"dir /b C:\LOGS\*.txt").stdout == "a.txt\r\n"
    assert shell.run("dir /b *.log").stdout == "b.log\r\n"
    missing = shell.run(r"dir C:\logs\*.nothing")
    assert (missing.exit_code, missing.stderr) == (1, "File Not Found\r\n")
    assert shell.run(r"del C:\logs\*.txt & dir /b").stdout == "b.log\r\n"
    # del reports what it could not find but, like cmd.exe, still succeeds.
    assert shell.run(r"del nothing.txt").stderr == "Could Not Find C:\\logs\\nothing.txt\r\n"


def test_move_renames_a_file_atomically_and_replaces_the_target(shell: CmdShell) -> None:
    result = shell.run(r"echo one> C:\a.part & echo old> C:\a.out & move /y C:\a.part C:\a.out & type C:\a.out")
    assert result.exit_code == 0
    assert result.stdout == "        1 file(s) moved.\r\none \r\n"  # cmd keeps the space before &
    assert shell.run(r"type C:\a.part").exit_code == 1


def test_move_of_a_missing_file_fails(shell: CmdShell) -> None:
    result = shell.run(r"move C:\nothing.txt C:\b.txt")
    assert result.exit_code == 1 and "cannot find the file" in result.stderr


def test_a_status_line_after_a_group_tells_success_from_failure(shell: CmdShell) -> None:
    # What GuestOperations.run_merged sends: the group's outcome as a line after its output.
    ok = shell.run(r"(echo hi) 1> C:\r.part 2>&1 && (echo pvc-status: 0 >> C:\r.part) || "
                   r"(echo pvc-status: 1 >> C:\r.part) & type C:\r.part")
    assert ok.stdout == "hi\r\npvc-status: 0 \r\n"
    bad = shell.run(r"(nosuchprogram) 1> C:\s.part 2>&1 && (echo pvc-status: 0 >> C:\s.part) || "
                    r"(echo pvc-status: 1 >> C:\s.part) & type C:\s.part")
    assert "is not recognized" in bad.stdout and bad.stdout.endswith("pvc-status: 1 \r\n")
