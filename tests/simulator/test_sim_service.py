"""ServiceContent, vimServiceVersions.xml and sessions: login, logout, idle expiry."""

from __future__ import annotations

import ssl
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pyVmomi import SoapStubAdapter, VmomiSupport, vim
from sim_helpers import close, connect

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig


def _anonymous_stub(sim: Simulator) -> Any:
    """A client stub that has not logged in (what SmartConnect holds before Login)."""
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    return SoapStubAdapter(host=sim.host, port=sim.port, version="vim.version.v8_0_3_0", sslContext=context)


def test_service_versions_document_names_a_version_the_client_knows(shared_sim: Simulator) -> None:
    context = ssl.create_default_context(cafile=str(shared_sim.ca_file))
    url = f"https://{shared_sim.host}:{shared_sim.port}/sdk/vimServiceVersions.xml"
    with urllib.request.urlopen(url, context=context, timeout=5) as response:
        assert response.status == 200
        doc = ET.fromstring(response.read())
    namespace = doc.find("namespace")
    assert namespace is not None
    assert namespace.findtext("name") == "urn:vim25"
    version = namespace.findtext("version")
    assert version == "8.0.3.0"
    assert f"vim25/{version}" in VmomiSupport.versionMap
    prior = namespace.find("priorVersions")
    assert prior is not None and len(prior) > 0  # older clients can negotiate too


def test_service_content_is_a_vcenters(shared_si: Any) -> None:
    content = shared_si.RetrieveContent()
    about = content.about
    assert about.apiType == "VirtualCenter"
    assert about.apiVersion == "8.0.3.0"
    assert about.instanceUuid
    assert content.rootFolder._moId == "group-d1"
    for manager in ("propertyCollector", "viewManager", "sessionManager", "authorizationManager", "searchIndex",
                    "taskManager", "customFieldsManager"):
        assert getattr(content, manager) is not None, manager
    assert shared_si.CurrentTime().tzinfo is not None


def test_service_content_needs_no_login_but_everything_else_does(shared_sim: Simulator) -> None:
    stub = _anonymous_stub(shared_sim)
    try:
        content = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent()
        assert content.about.apiType == "VirtualCenter"
        with pytest.raises(vim.fault.NotAuthenticated):
            _ = content.rootFolder.childEntity
    finally:
        stub.DropConnections()


def test_login_session_and_logout(sim: Simulator) -> None:
    si = connect(sim)
    try:
        manager = si.content.sessionManager
        session = manager.currentSession
        assert session.userName == sim.user
        assert manager.SessionIsActive(sessionID=session.key, userName=sim.user) is True
        assert manager.SessionIsActive(sessionID="no-such-session", userName=sim.user) is False
        assert manager.SessionIsActive(sessionID=session.key, userName="someone@else") is False
        other = connect(sim)
        try:
            other_key = other.content.sessionManager.currentSession.key
            assert other_key != session.key
            assert manager.SessionIsActive(sessionID=other_key, userName=sim.user) is True
            other.content.sessionManager.Logout()
            assert manager.SessionIsActive(sessionID=other_key, userName=sim.user) is False
        finally:
            other._stub.DropConnections()
    finally:
        close(si)


def test_bad_credentials_are_invalid_login(shared_sim: Simulator) -> None:
    with pytest.raises(vim.fault.InvalidLogin):
        connect(shared_sim, password="wrong-password")
    with pytest.raises(vim.fault.InvalidLogin):
        connect(shared_sim, user="nobody@vsphere.local", password=shared_sim.password)


def test_calls_after_logout_are_not_authenticated(sim: Simulator) -> None:
    si = connect(sim)
    try:
        root = si.content.rootFolder
        assert root.childEntity
        si.content.sessionManager.Logout()
        with pytest.raises(vim.fault.NotAuthenticated):
            _ = root.childEntity
        with pytest.raises(vim.fault.NotAuthenticated):
            si.content.sessionManager.SessionIsActive(sessionID="x", userName=sim.user)
    finally:
        si._stub.DropConnections()


def test_idle_session_expires_and_activity_keeps_it_alive() -> None:
    with Simulator(SimulatorConfig(session_idle_timeout=0.4)) as sim:
        si = connect(sim)
        try:
            root = si.content.rootFolder
            for _ in range(4):  # calls closer together than the timeout keep the session alive
                time.sleep(0.2)
                assert root.childEntity
            time.sleep(0.6)
            with pytest.raises(vim.fault.NotAuthenticated):
                _ = root.childEntity
            relogin = connect(sim)
            try:
                assert relogin.content.rootFolder.childEntity
            finally:
                close(relogin)
        finally:
            si._stub.DropConnections()


def test_expire_sessions_control_ends_every_session(sim: Simulator) -> None:
    si = connect(sim)
    try:
        assert si.content.rootFolder.childEntity
        sim.expire_sessions()
        with pytest.raises(vim.fault.NotAuthenticated):
            _ = si.content.rootFolder.childEntity
    finally:
        si._stub.DropConnections()


def test_session_list_and_terminate_session(sim: Simulator) -> None:
    si = connect(sim)
    victim = connect(sim)
    try:
        manager = si.content.sessionManager
        victim_key = victim.content.sessionManager.currentSession.key
        assert victim_key in {s.key for s in manager.sessionList}
        manager.TerminateSession(sessionId=[victim_key])
        with pytest.raises(vim.fault.NotAuthenticated):
            _ = victim.content.rootFolder.childEntity
        with pytest.raises(vim.fault.NotFound):
            manager.TerminateSession(sessionId=[victim_key])
    finally:
        victim._stub.DropConnections()
        close(si)


def test_stop_ends_connections_clients_keep_open() -> None:
    """A client that never disconnects must not keep the simulator's handler threads alive."""
    before = set(threading.enumerate())  # other tests' simulators have handler threads of their own
    simulator = Simulator(SimulatorConfig()).start()
    si = connect(simulator)
    try:
        assert si.CurrentTime() is not None  # a pooled keep-alive connection is open now
        handlers = [t for t in set(threading.enumerate()) - before if "process_request_thread" in t.name]
        assert handlers
        simulator.stop()
        for thread in handlers:
            thread.join(5)
        assert not any(t.is_alive() for t in handlers)
    finally:
        simulator.stop()
        si._stub.DropConnections()
