"""The WinRM server, driven by the real pywinrm client over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import spnego
import winrm
import xmltodict
from winrm.exceptions import InvalidCredentialsError, WSManFaultError

import pytest_vsphere_clone
from pytest_vsphere_clone.simulator.guests.windows.context import WindowsGuestContext
from pytest_vsphere_clone.simulator.guests.windows.network import LinuxNetwork
from pytest_vsphere_clone.simulator.guests.windows.winrm.accounts import ACCOUNT_FILE_ENV, write_account_file
from pytest_vsphere_clone.simulator.guests.windows.winrm.auth import ENCRYPTED_CONTENT_TYPE
from pytest_vsphere_clone.simulator.guests.windows.winrm.server import WinRMServer

SRC = Path(pytest_vsphere_clone.__file__).resolve().parents[1]
USER, PASSWORD, HOSTNAME = "vagrant", "S3cret pass:word!", "win-rm01"
NOT_RECOGNIZED = (
    b"'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
)


@dataclass
class Endpoint:
    url: str
    disk: Path
    process: subprocess.Popen[str]


def start_server(disk: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    accounts = disk.parent / f"{disk.name}-accounts"
    write_account_file(accounts, USER, PASSWORD, HOSTNAME)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        ACCOUNT_FILE_ENV: str(accounts),  # the server's own environment only, as the guest runtime does
    }
    argv = [sys.executable, "-m", "pytest_vsphere_clone.simulator.guests.windows.winrm.server", "--port", "0"]
    argv += ["--bind", "127.0.0.1", "--user", USER, "--hostname", HOSTNAME]
    argv += ["--disk-root", str(disk), *extra]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready: list[str] = []
    reader = threading.Thread(
        target=lambda: ready.append(process.stdout.readline() if process.stdout else "")
    )
    reader.start()
    reader.join(15)
    if not ready or not ready[0].startswith("READY port="):
        process.kill()
        raise AssertionError(
            f"server did not start: {ready} {process.stderr.read() if process.stderr else ''}"
        )
    return process, int(ready[0].strip().split("=", 1)[1])


def stop_server(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> int:
    process.send_signal(signum)
    try:
        return process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    disk = tmp_path_factory.mktemp("winrm-disk")
    process, port = start_server(disk)
    yield Endpoint(f"http://127.0.0.1:{port}/wsman", disk, process)
    assert stop_server(process) == 0
    assert process.stderr is not None
    assert PASSWORD not in process.stderr.read()


def session(
    endpoint: Endpoint, transport: str = "basic", password: str = PASSWORD, **kwargs: object
) -> winrm.Session:
    return winrm.Session(endpoint.url, auth=(USER, password), transport=transport, proxy=None,
                         ca_trust_path=None, **kwargs)


def host_ipv4() -> dict[str, tuple[str, ...]]:
    if shutil.which("ip") is None:
        return {}
    links = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, check=True).stdout)
    return {
        link["ifname"]: tuple(a["local"] for a in link.get("addr_info", []) if a["family"] == "inet")
        for link in links
        if {"UP", "LOWER_UP"} <= set(link["flags"]) and "LOOPBACK" not in link["flags"]
    }


# -- commands --------------------------------------------------------------------------------------


def test_ipconfig_reports_the_real_interfaces(endpoint: Endpoint) -> None:
    before = host_ipv4()
    result = session(endpoint).run_cmd("ipconfig")
    after = host_ipv4()
    assert result.status_code == 0
    assert result.std_err == b""
    out = result.std_out.decode()
    assert out.startswith("\r\nWindows IP Configuration\r\n\r\n")
    for name, ips in before.items():
        if after.get(name) == ips:  # ignore interfaces other tests changed meanwhile
            for ip in ips:
                assert f"   IPv4 Address. . . . . . . . . . . : {ip}\r\n" in out
    detailed = session(endpoint).run_cmd("ipconfig", ["/all"])
    assert f"   Host Name . . . . . . . . . . . . : {HOSTNAME}\r\n".encode() in detailed.std_out


def test_hostname_via_cmd_and_powershell(endpoint: Endpoint) -> None:
    s = session(endpoint)
    assert s.run_cmd("hostname").std_out == f"{HOSTNAME}\r\n".encode()
    ps = s.run_ps("hostname")
    assert (ps.status_code, ps.std_out, ps.std_err) == (0, f"{HOSTNAME}\r\n".encode(), b"")
    assert s.run_ps("$env:COMPUTERNAME").std_out == HOSTNAME.upper().encode() + b"\r\n"
    assert b"127.0.0.1\r\n" in s.run_ps("(Get-NetIPAddress -AddressFamily IPv4).IPAddress").std_out


def test_exit_codes_and_unknown_commands(endpoint: Endpoint) -> None:
    s = session(endpoint)
    assert s.run_cmd("cmd", ["/c", "exit /b 3"]).status_code == 3
    unknown = s.run_cmd("foo")
    assert (unknown.status_code, unknown.std_out, unknown.std_err) == (9009, b"", NOT_RECOGNIZED)
    ps = s.run_ps("Get-Nothing")
    assert ps.status_code == 1
    # pywinrm turned the CLIXML error stream back into text.
    assert ps.std_err.startswith(b"Get-Nothing : The term 'Get-Nothing' is not recognized")


def test_operators_and_redirection(endpoint: Endpoint) -> None:
    s = session(endpoint)
    result = s.run_cmd(r"(echo one)> %TEMP%\note.txt && type %TEMP%\note.txt & foo 2>nul || echo fallback")
    # echo does not reset ERRORLEVEL, so cmd.exe still exits with foo's 9009.
    assert (result.status_code, result.std_out) == (9009, b"one\r\nfallback\r\n")
    saved = endpoint.disk / "C" / "Users" / USER / "AppData" / "Local" / "Temp" / "note.txt"
    assert saved.read_bytes() == b"one\r\n"
    assert s.run_cmd("hostname & whoami").std_out == f"{HOSTNAME}\r\n{HOSTNAME}\\{USER}\r\n".encode()


def test_long_output_arrives_in_several_receives(endpoint: Endpoint) -> None:
    payload = b"".join(b"line %06d of a long listing\r\n" % n for n in range(60000))  # ~1.7 MB
    (endpoint.disk / "C" / "big.txt").write_bytes(payload)
    protocol = session(endpoint).protocol
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "type", [r"C:\big.txt"])
    chunks, receives, done = [], 0, False
    while not done:
        stdout, _, code, done = protocol.get_command_output_raw(shell_id, command_id)
        chunks.append(stdout)
        receives += 1
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)
    assert (code, b"".join(chunks)) == (0, payload)
    assert receives > 5  # bounded by MaxEnvelopeSize (150 KiB)


def test_slow_commands_survive_receive_timeouts(endpoint: Endpoint) -> None:
    # OperationTimeout of 1 s makes the server answer w:TimedOut, which pywinrm retries.
    s = session(endpoint, operation_timeout_sec=1, read_timeout_sec=3)
    started = time.monotonic()
    result = s.run_cmd("sleep 1.5 & echo done")
    assert (result.status_code, result.std_out) == (0, b"done\r\n")
    assert time.monotonic() - started >= 1.5


def test_terminate_signal_stops_a_running_command(endpoint: Endpoint) -> None:
    protocol = session(endpoint).protocol
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "sleep 60")
    started = time.monotonic()
    protocol.cleanup_command(shell_id, command_id)
    with pytest.raises(WSManFaultError):
        protocol.get_command_output_raw(shell_id, command_id)  # the command is gone
    protocol.close_shell(shell_id)
    assert time.monotonic() - started < 5


# -- protocol errors and auth --------------------------------------------------------------------


def test_unknown_shell_is_an_invalid_selectors_fault(endpoint: Endpoint) -> None:
    protocol = session(endpoint).protocol
    with pytest.raises(WSManFaultError) as fault:
        protocol.run_command(str(uuid.uuid4()).upper(), "hostname")
    assert fault.value.fault_subcode == "w:InvalidSelectors"
    assert fault.value.wsman_fault_code == 2150858843
    assert fault.value.code == 500


def test_malformed_xml_is_a_fault_and_the_server_keeps_serving(endpoint: Endpoint) -> None:
    http = requests.Session()
    http.trust_env = False
    reply = http.post(
        endpoint.url,
        data=b"<env:Envelope><not-closed>",
        auth=(USER, PASSWORD),
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        timeout=10,
    )
    assert reply.status_code == 400
    fault = xmltodict.parse(reply.content)["s:Envelope"]["s:Body"]["s:Fault"]
    assert fault["s:Code"]["s:Subcode"]["s:Value"] == "w:SchemaValidationError"
    # A well-formed envelope with an unknown action is a fault too, related to its MessageID.
    bogus = session(endpoint).protocol.build_wsman_header("http://example.invalid/Nope", winrm_resource())
    bogus["env:Header"]["a:MessageID"] = "uuid:11111111-2222-3333-4444-555555555555"
    reply = http.post(
        endpoint.url,
        data=xmltodict.unparse({"env:Envelope": {**bogus, "env:Body": {}}}),
        auth=(USER, PASSWORD),
        timeout=10,
    )
    envelope = xmltodict.parse(reply.content)["s:Envelope"]
    assert reply.status_code == 500
    assert envelope["s:Header"]["a:RelatesTo"] == "uuid:11111111-2222-3333-4444-555555555555"
    assert envelope["s:Body"]["s:Fault"]["s:Code"]["s:Subcode"]["s:Value"] == "a:ActionNotSupported"
    assert session(endpoint).run_cmd("hostname").status_code == 0


def winrm_resource() -> str:
    return "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"


def test_missing_credentials_get_a_challenge(endpoint: Endpoint) -> None:
    http = requests.Session()
    http.trust_env = False
    reply = http.post(endpoint.url, data=b"<x/>", timeout=10)
    assert reply.status_code == 401
    offered = reply.raw.headers.getlist("WWW-Authenticate")
    assert offered == ["Negotiate", 'Basic realm="WSMAN"']
    identify = http.post(
        endpoint.url, data=IDENTIFY, headers={"WSMANIDENTIFY": "unauthenticated"}, timeout=10
    )
    assert identify.status_code == 200
    assert b"<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>" in identify.content


IDENTIFY = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
    b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
)


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_wrong_password_is_rejected(endpoint: Endpoint, transport: str) -> None:
    with pytest.raises(InvalidCredentialsError):
        session(endpoint, transport, password="not-it").run_cmd("hostname")


def test_ntlm_with_message_encryption(endpoint: Endpoint) -> None:
    s = session(endpoint, "ntlm")
    result = s.run_cmd("ipconfig & hostname")
    assert result.status_code == 0
    assert result.std_out.endswith(f"{HOSTNAME}\r\n".encode())
    # Over plain HTTP pywinrm seals every message with the NTLM session key.
    assert s.protocol.transport.encryption is not None
    assert s.run_ps("Write-Output 'sealed'").std_out == b"sealed\r\n"
    plain = session(endpoint, "ntlm", message_encryption="never")
    assert plain.run_cmd("cmd", ["/c", "exit /b 5"]).status_code == 5
    domain = winrm.Session(endpoint.url, auth=(f".\\{USER}", PASSWORD), transport="ntlm", proxy=None,
                           ca_trust_path=None)
    assert domain.run_cmd("whoami").std_out == f"{HOSTNAME}\\{USER}\r\n".encode()


def test_sigint_shuts_down_cleanly(tmp_path: Path) -> None:
    process, port = start_server(tmp_path, "--auth", "basic")
    assert (
        winrm.Session(f"127.0.0.1:{port}", auth=(USER, PASSWORD), transport="basic", proxy=None, ca_trust_path=None)
        .run_cmd("hostname")
        .std_out
        == f"{HOSTNAME}\r\n".encode()
    )
    assert stop_server(process, signal.SIGINT) == 0


# -- in-process API --------------------------------------------------------------------------------


def test_in_process_server_codepages_and_ctrl_c(tmp_path: Path) -> None:
    context = WindowsGuestContext(HOSTNAME, tmp_path / "disk", USER, network=LinuxNetwork())
    write_account_file(tmp_path / "accounts", USER, PASSWORD, HOSTNAME)
    server = WinRMServer(context, username=USER, account_file=tmp_path / "accounts", port=0, auth_methods=["basic"])
    with server.start():
        protocol = winrm.Session(
            f"http://127.0.0.1:{server.port}/wsman", auth=(USER, PASSWORD), transport="basic", proxy=None,
            ca_trust_path=None,
        ).protocol
        for codepage, expected in ((437, "é".encode("cp437")), (65001, "é".encode())):
            shell_id = protocol.open_shell(codepage=codepage)
            command_id = protocol.run_command(shell_id, "echo é")
            assert protocol.get_command_output(shell_id, command_id) == (expected + b"\r\n", b"", 0)
            protocol.close_shell(shell_id, close_session=False)

        shell_id = protocol.open_shell()
        command_id = protocol.run_command(shell_id, "sleep 60 & echo after")
        started = time.monotonic()
        ctrl_c = {
            "env:Envelope": protocol.build_wsman_header(
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal", winrm_resource(), shell_id
            )
        }
        ctrl_c["env:Envelope"]["env:Body"] = {
            "rsp:Signal": {
                "@CommandId": command_id,
                "rsp:Code": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
            }
        }
        protocol.send_message(xmltodict.unparse(ctrl_c))
        stdout, _, code = protocol.get_command_output(shell_id, command_id)
        # Ctrl+C ends the wait (STATUS_CONTROL_C_EXIT); like cmd.exe the line then goes on.
        assert (stdout, code) == (b"after\r\n", 0xC000013A)
        assert time.monotonic() - started < 5
        protocol.close_shell(shell_id)


def test_encoded_command_is_what_run_ps_sends(endpoint: Endpoint) -> None:
    script = "Write-Output 'a'; Write-Output \"b\""
    raw = session(endpoint).run_cmd(
        f"powershell -encodedcommand {base64.b64encode(script.encode('utf-16-le')).decode()}"
    )
    assert raw.std_out == b"a\r\nb\r\n"


def test_spnego_wrapped_ntlm_and_sealing(endpoint: Endpoint) -> None:
    """pypsrp-style clients wrap NTLM in SPNEGO; the connection then carries sealed messages."""
    client = spnego.client(
        USER, PASSWORD, hostname="127.0.0.1", service="http", options=spnego.NegotiateOptions.use_negotiate
    )
    http = requests.Session()
    http.trust_env = False
    token = client.step()
    assert token is not None and token[:1] == b"\x60"  # an SPNEGO NegTokenInit, not raw NTLM
    while not client.complete:
        reply = http.post(
            endpoint.url, data=b"", headers={"Authorization": f"Negotiate {base64.b64encode(token).decode()}"}
        )
        challenge = reply.headers["WWW-Authenticate"].split(" ", 1)[1]
        token = client.step(base64.b64decode(challenge)) or b""
        if reply.status_code == 200:
            break
        assert reply.status_code == 401
    assert client.complete

    header = session(endpoint).protocol.build_wsman_header(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", winrm_resource()
    )
    message = xmltodict.unparse(
        {"env:Envelope": {**header, "env:Body": {"rsp:Shell": {"rsp:InputStreams": "stdin"}}}}
    ).encode()
    sealed = client.wrap(message, encrypt=True).data
    body = (
        (
            b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n"
            b"--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n" % len(message)
        )
        + struct.pack("<I", 16)
        + sealed
        + b"--Encrypted Boundary--\r\n"
    )
    reply = http.post(endpoint.url, data=body, headers={"Content-Type": ENCRYPTED_CONTENT_TYPE})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("multipart/encrypted")
    payload = reply.content.split(b"application/octet-stream\r\n", 1)[1].removesuffix(
        b"--Encrypted Boundary--\r\n"
    )
    plain = client.unwrap(payload[4:]).data
    assert b"<rsp:ShellId>" in plain
