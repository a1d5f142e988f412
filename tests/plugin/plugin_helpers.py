"""Helpers for the plugin's tests: inner pytest runs (pytester) against simulators with real guests.

Nothing is mocked: every inner run is a real ``pytest`` process with the
installed plugin, talking HTTPS to a simulator whose Linux guests run sshd in
network namespaces. Most tests share a module-scoped simulator started here
(``plugin_sim``) and pass its address to the inner run; afterwards they look at
the simulator itself (VM names, disk chains, request counts) and at the machine
(network namespaces, run directories) to prove that nothing was left behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

#: The inventory of the plugin tests' simulators: the default templates, plus the shapes the
#: bad-input cases need and sources private to the tests that change a source's disks.
INVENTORY: dict[str, Any] = {
    "datacenters": [
        {
            "name": "dc1",
            "datastores": [{"name": "datastore1"}],
            "networks": ["VM Network"],
            "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}],
            "vms": [
                {"name": "linux-template", "snapshots": ["base"]},
                {"name": "debian-template", "snapshots": ["base"]},
                {"name": "linux-frozen", "power": "poweredOn", "frozen": True},
                {"name": "linux-running", "power": "poweredOn"},
                {"name": "collapse-promote", "power": "poweredOn"},
                {"name": "collapse-snapshot", "power": "poweredOn"},
                {"name": "collapse-kept", "power": "poweredOn"},
                {"name": "linux-nosnap"},
                {"name": "ubuntu", "folder": "templates", "snapshots": ["base"]},
                {"name": "ubuntu", "folder": "old/templates", "snapshots": ["base"]},
                {"name": "windows-template", "guest_id": "windows2019srvNext_64Guest", "snapshots": ["base"]},
            ],
        }
    ],
    "users": [
        {"name": "noclone@vsphere.local", "password": "NoClone-Pass-1",
         "denied": ["VirtualMachine.Provisioning.Clone"]},
    ],
}
TEMPLATES = sorted(vm["name"] for vm in INVENTORY["datacenters"][0]["vms"])


# --- simulators ---------------------------------------------------------------------------


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@dataclass
class SimHandle:
    """A running simulator plus what a test needs to point an inner run at it and check it afterwards."""

    sim: Simulator
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """Name prefix of this simulator's network namespaces."""
        assert self.sim.vc is not None and self.sim.vc.guests is not None
        return self.sim.vc.guests.host.tag

    def namespaces(self) -> set[str]:
        return {name for name in netns_names() if name.startswith(self.tag + "-")}

    def args(self) -> list[str]:
        """CLI arguments reaching this simulator (the passwords go through the environment instead)."""
        f = self.facts
        return [f"--vsphere-host={f['HOST']}", f"--vsphere-user={f['USER']}", f"--vsphere-ca-bundle={f['CA_FILE']}",
                f"--vsphere-guest-user={f['GUEST_USER']}"]

    def env(self) -> dict[str, str]:
        return {"VSPHERE_PASSWORD": self.facts["PASSWORD"], "VSPHERE_GUEST_PASSWORD": self.facts["GUEST_PASSWORD"]}

    def clones(self) -> list[str]:
        """VMs that are not the inventory's templates."""
        return [name for name in self.sim.vm_names() if name not in TEMPLATES]


def start_sim(tmp_path: Path, inventory: dict[str, Any] | None = None) -> SimHandle:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory or INVENTORY))
    sim = Simulator(SimulatorConfig(guests=True, inventory=path)).start()
    return SimHandle(sim, sim.connection_facts())


# --- inner runs ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """An inner run's result with the checks the tests share."""

    result: pytest.RunResult
    tmpdir: Path

    @property
    def ret(self) -> int:
        return int(self.result.ret)

    @property
    def out(self) -> str:
        return self.result.stdout.str() + "\n" + self.result.stderr.str()

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.out.splitlines() if text in line]

    def summary_states(self) -> dict[str, str]:
        """Clone name -> state (destroyed, kept, ...) from the terminal summary."""
        return dict(re.findall(r"^(pytest-[0-9a-f]{6}-\S+) .*\[(\w+)\]$", self.out, re.MULTILINE))

    def run_dirs(self) -> list[Path]:
        """Run directories (and simulator state directories) the inner run left in its TMPDIR."""
        return sorted(self.tmpdir.glob("vsphere-clone-*"))


class Inner:
    """Runs pytest in a subprocess inside the pytester directory, with a private TMPDIR."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.monkeypatch = monkeypatch
        for key in list(os.environ):
            if key.startswith("VSPHERE_") or key.startswith("PYTEST_XDIST") or key == "PYTEST_ADDOPTS":
                monkeypatch.delenv(key)
        self.tmpdir = pytester.path / "run-tmp"
        self.tmpdir.mkdir()

    def run(self, *args: str, sim: SimHandle | None = None, env: dict[str, str] | None = None,
            timeout: float = 120.0) -> Outcome:
        """``pytest *args`` (plus the simulator's connection settings); the environment is restored after."""
        full_env = {"TMPDIR": str(self.tmpdir)}
        argv = list(args)
        if sim is not None:
            full_env.update(sim.env())
            argv = sim.args() + argv
        full_env.update(env or {})
        with self.monkeypatch.context() as patch:
            for key, value in full_env.items():
                patch.setenv(key, value)
            result = self.pytester.runpytest_subprocess("-p", "no:cacheprovider", *argv, timeout=timeout)
        return Outcome(result, self.tmpdir)

    def clean_after(self, outcome: Outcome, sim: SimHandle | None = None,
                    namespaces_before: set[str] | None = None) -> None:
        """Assert the run left nothing: no clone in the simulator, no namespace, no run directory."""
        assert outcome.run_dirs() == [], outcome.out
        if sim is not None:
            assert sim.clones() == [], outcome.out
            if namespaces_before is not None:
                assert sim.namespaces() == namespaces_before
