"""VSphereConnection: endpoints, TLS verification, login errors, re-login on expiry, logout."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import pytest

from pytest_vsphere_clone.client.errors import ConnectionFailed, LoginFailed, TlsVerificationFailed, VSphereCloneError
from pytest_vsphere_clone.client.secret import Secret
from pytest_vsphere_clone.client.session import Endpoint, VSphereConnection, make_ssl_context, parse_endpoint
from pytest_vsphere_clone.simulator import Simulator

Connect = Callable[..., VSphereConnection]


@pytest.mark.parametrize(("text", "expected"), [
    ("vc.example.com", Endpoint("vc.example.com", 443, "/sdk")),
    ("vc.example.com:8443", Endpoint("vc.example.com", 8443, "/sdk")),
    ("https://vc.example.com", Endpoint("vc.example.com", 443, "/sdk")),
    ("https://vc.example.com:9443/sdk/", Endpoint("vc.example.com", 9443, "/sdk")),
    ("https://vc.example.com/custom", Endpoint("vc.example.com", 443, "/custom")),
    ("10.0.0.5", Endpoint("10.0.0.5", 443, "/sdk")),
    ("[2001:db8::5]:8443", Endpoint("2001:db8::5", 8443, "/sdk")),
    ("2001:db8::5", Endpoint("2001:db8::5", 443, "/sdk")),
    ("https://[2001:db8::5]:8443/sdk", Endpoint("2001:db8::5", 8443, "/sdk")),
])
def test_parse_endpoint(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["", "http://vc.example.com", "vc:notaport", "vc:70000", "https://:443"])
def test_parse_endpoint_rejects_bad_values_naming_the_setting(text: str) -> None:
    with pytest.raises(VSphereCloneError, match="--vsphere-host"):
        parse_endpoint(text)


def test_connects_with_the_ca_bundle_and_verifies_tls(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim)
    assert conn.connected
    assert conn.content.about.apiType == "VirtualCenter"
    assert conn.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert conn.session_key


def test_url_form_of_the_host_works(sim: Simulator) -> None:
    with VSphereConnection(sim.url, sim.user, sim.password, ca_bundle=sim.ca_file) as conn:
        assert conn.content.rootFolder is not None


def test_unknown_ca_is_a_tls_error_naming_both_fixes(sim: Simulator) -> None:
    # The system store does not know the simulator's CA (and localhost gets no free pass).
    conn = VSphereConnection(f"{sim.host}:{sim.port}", sim.user, sim.password)
    with pytest.raises(TlsVerificationFailed) as raised:
        conn.connect()
    message = str(raised.value)
    assert "--vsphere-ca-bundle" in message and "--vsphere-insecure" in message
    assert "\n" not in message


def test_insecure_skips_verification(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim, ca_bundle=None, insecure=True)
    assert conn.ssl_context.verify_mode == ssl.CERT_NONE
    assert conn.content.rootFolder is not None


def test_missing_ca_bundle_file_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(VSphereCloneError, match="--vsphere-ca-bundle"):
        make_ssl_context(ca_bundle="/nonexistent/ca.pem")


def test_wrong_password_is_a_login_error_without_the_password(sim: Simulator) -> None:
    wrong = "Wr0ng-S3cret-value"
    conn = VSphereConnection(f"{sim.host}:{sim.port}", sim.user, wrong, ca_bundle=sim.ca_file)
    with pytest.raises(LoginFailed) as raised:
        conn.connect()
    assert "--vsphere-password" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in repr(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_unreachable_host_is_a_connection_error() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = VSphereConnection(f"127.0.0.1:{port}", "user", "pw", insecure=True)
    with pytest.raises(ConnectionFailed, match=r"cannot reach vCenter 127\.0\.0\.1") as raised, conn:
        pass
    assert "Connection refused" in str(raised.value)


def test_unresolvable_host_is_a_connection_error() -> None:
    conn = VSphereConnection("no-such-vcenter.invalid", "user", "pw", insecure=True)
    with pytest.raises(ConnectionFailed, match="cannot resolve"):
        conn.connect()


def test_repr_never_shows_the_password(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim)
    assert sim.password not in repr(conn)
    assert "***" in repr(conn)
    assert sim.password not in repr(vars(conn))  # what `pytest -l` would print for it
    assert repr(Secret("hunter2")) == "Secret('***')" and str(Secret("hunter2")) == "Secret('***')"


def test_session_expiry_logs_in_again_transparently(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim)
    root = conn.content.rootFolder
    sim.reset_counters()
    sim.expire_sessions()
    assert root.name == "Datacenters"  # a property read after expiry
    assert conn.generation == 1
    sim.expire_sessions()
    view_manager = conn.content.viewManager
    assert view_manager is not None
    view = view_manager.CreateContainerView(root, [], False)  # a method call after expiry
    view.DestroyView()
    assert conn.generation == 2
    assert sim.counters()["Login"] == 2


def test_an_expired_session_reads_as_unset_and_the_key_logs_in_again(sim: Simulator, connect: Connect) -> None:
    # SessionManager.currentSession reads as unset without a valid session (no fault): the client
    # must take that as "expired" and log in again.
    conn = connect(sim)
    first = conn.session_key
    sim.expire_sessions()
    second = conn.session_key
    assert first and second and second != first
    assert conn.generation == 1  # one log-in again (generations count from 0)


def test_relogin_with_a_changed_password_is_a_login_error(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim)
    sim.expire_sessions()
    sim.add_user(sim.user, "changed-password")  # the account's password changed meanwhile
    with pytest.raises(LoginFailed):
        _ = conn.content.rootFolder.name


def test_close_logs_out(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim)
    key = conn.session_key
    assert sim.vc is not None and sim.vc.sessions.peek(key or "") is not None
    conn.close()
    assert sim.vc.sessions.peek(key or "") is None
    assert not conn.connected
    conn.close()  # idempotent
