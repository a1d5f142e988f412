"""The ownership marker: encoding, parsing, expiry, orphans, and the custom attribute."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from pyVmomi import vim

from pytest_vsphere_clone.client import marker as marker_module
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.marker import FIELD_NAME, Marker, ensure_field, field_key, find_marker, set_marker
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator


def test_round_trip() -> None:
    marker = Marker.new("run 1/ü", "gw3", ttl=3600, template="dc1/vm/linux template", now=1_700_000_000)
    text = marker.encode()
    assert text.startswith("pytest-vsphere-clone/v1 run=")
    assert "\n" not in text and " 1/" not in text  # values are quoted: one token each
    assert Marker.parse(text) == marker
    assert marker.host == socket.gethostname() and marker.pid == os.getpid()
    assert marker.expiry - marker.created == 3600



def test_a_kept_clones_address_and_test_round_trip_and_older_markers_still_read() -> None:
    from dataclasses import replace

    fresh = Marker.new("abc", "gw1", now=1_700_000_000, template="linux-template")
    kept = replace(fresh, pid=0, ip="10.0.0.5", kept_by="tests/test_web.py::test_login[linux template]")
    text = kept.encode()
    assert " ip=10.0.0.5 " in text and text.endswith(" test=tests%2Ftest_web.py::test_login%5Blinux%20template%5D")
    assert Marker.parse(text) == kept
    # A marker written before the fields existed reads with them empty; the new fields stay optional.
    older = text.split(" ip=")[0]
    assert Marker.parse(older) == replace(kept, ip="", kept_by="")
    assert " ip=" not in fresh.encode() and " test=" not in fresh.encode()

def test_found_inside_other_text_and_annotation() -> None:
    marker = Marker.new("abc", now=1_700_000_000)
    note = marker.annotation("The template's own notes.")
    assert note.startswith("The template's own notes.")
    assert Marker.parse(note) == marker
    # A clone of a clone does not stack markers.
    again = Marker.new("def", now=1_700_000_100).annotation(note)
    assert again.count("pytest-vsphere-clone/v1") == 1 and Marker.parse(again).run_id == "def"  # type: ignore[union-attr]


@pytest.mark.parametrize("text", [None, "", "hello", "pytest-vsphere-clone/v1", "pytest-vsphere-clone/v1 run=x",
                                  "pytest-vsphere-clone/v1 run=x created=yesterday expires=tomorrow"])
def test_junk_is_no_marker(text: str | None) -> None:
    assert Marker.parse(text) is None


def test_expiry() -> None:
    marker = Marker.new("r", ttl=60, now=1000)
    assert not marker.is_expired(now=1059)
    assert marker.is_expired(now=1060)


def test_orphaned_when_the_creating_process_is_gone() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    mine = Marker.new("r")
    orphan = Marker(mine.run_id, mine.worker, mine.host, int(dead.stdout), mine.created, mine.expiry)
    assert orphan.is_orphaned() and not mine.is_orphaned()
    elsewhere = Marker(mine.run_id, mine.worker, "some-other-machine", int(dead.stdout), mine.created, mine.expiry)
    assert not elsewhere.is_orphaned()  # cannot know about other machines' processes


def test_find_marker_in_any_place() -> None:
    text = Marker.new("r", now=1000).encode()
    assert find_marker(text) is not None
    assert find_marker(None, f"notes\n{text}") is not None
    assert find_marker(None, None, {marker_module.EXTRA_CONFIG_KEY: text}) is not None
    assert find_marker("junk", "junk", {"other.key": text}) is None


def test_field_is_defined_once_and_the_value_set(sim: Simulator, conn: VSphereConnection) -> None:
    assert field_key(conn) is None
    key = ensure_field(conn)
    assert ensure_field(conn) == key
    assert sim.counters()["AddCustomFieldDef"] == 1
    template = find_template(conn, "linux-template")
    marker = Marker.new("run-x")
    set_marker(conn, template.ref, marker, key)
    values = {v.key: v.value for v in template.ref.customValue}
    assert Marker.parse(values[key]) == marker
    manager = conn.content.customFieldsManager
    assert manager is not None
    fields = manager.field
    assert [(f.name, f.managedObjectType) for f in fields] == [(FIELD_NAME, vim.VirtualMachine)]


def test_field_definition_race_is_tolerated(sim: Simulator, conn: VSphereConnection, connect: object,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Another worker defines the field between our read and our AddCustomFieldDef.
    other = connect(sim)  # type: ignore[operator]
    real_field_key = marker_module.field_key
    calls: list[int] = []

    def racing_field_key(c: VSphereConnection) -> int | None:
        calls.append(1)
        if len(calls) == 1:
            ensure_field(other)  # the other worker wins
            return None
        return real_field_key(c)

    monkeypatch.setattr(marker_module, "field_key", racing_field_key)
    key = ensure_field(conn)
    assert key == real_field_key(conn)
    assert sim.counters()["AddCustomFieldDef"] == 2  # ours got DuplicateName and used theirs


def test_the_field_key_is_read_once_and_again_if_its_definition_went(sim: Simulator, conn: VSphereConnection) -> None:
    template = find_template(conn, "linux-template")
    manager = conn.content.customFieldsManager
    assert manager is not None
    set_marker(conn, template.ref, Marker.new("run-1"))
    sim.reset_counters()
    set_marker(conn, template.ref, Marker.new("run-2"))
    assert sim.counters()["Fetch"] == 0  # the key came from the connection's facts
    manager.RemoveCustomFieldDef(field_key(conn))  # someone removed the definition meanwhile
    marker = Marker.new("run-3")
    set_marker(conn, template.ref, marker)  # SetField refuses the old key: looked up (defined) again
    key = field_key(conn)
    assert key is not None
    assert Marker.parse({v.key: v.value for v in template.ref.customValue}[key]) == marker
