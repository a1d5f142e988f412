"""Helpers of the ``vsphere-clone`` tests: running the command, making clones to act on."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_vsphere_clone.client.clone import clone_vm
from pytest_vsphere_clone.client.clone_request import CloneRequest
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.marker import Marker
from pytest_vsphere_clone.client.retry import RetryPolicy
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
TEMPLATES = {"linux-template", "linux-frozen", "windows-template", "windows-frozen"}


@dataclass(frozen=True)
class Result:
    """What one ``vsphere-clone`` invocation did."""

    status: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


#: The ``cli`` fixture: ``cli(sim, *argv, env=..., secrets=...) -> Result``.
Run = Callable[..., Result]


def sim_env(sim: Simulator, **extra: str) -> dict[str, str]:
    """VSPHERE_* variables pointing at ``sim`` (its CA verified), plus the guest credentials if it has guests."""
    facts = sim.connection_facts()
    env = {"VSPHERE_HOST": facts["HOST"], "VSPHERE_USER": facts["USER"], "VSPHERE_PASSWORD": facts["PASSWORD"],
           "VSPHERE_CA_BUNDLE": facts["CA_FILE"]}
    if "GUEST_USER" in facts:
        env.update(VSPHERE_GUEST_USER=facts["GUEST_USER"], VSPHERE_GUEST_PASSWORD=facts["GUEST_PASSWORD"])
    env.update(extra)
    return env


def secrets_of(sim: Simulator) -> list[str]:
    facts = sim.connection_facts()
    return [facts[key] for key in ("PASSWORD", "GUEST_PASSWORD") if key in facts]


def assert_no_secrets(result: Result, secrets: Iterable[str]) -> None:
    for secret in secrets:
        assert secret not in result.text, "a password was printed"


def run_subprocess(argv: list[str], env: Mapping[str, str], timeout: float = 60.0) -> Result:
    """``python -m pytest_vsphere_clone.cli ARGV`` with only ``env``'s VSPHERE_* settings."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VSPHERE_")}
    full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "pytest_vsphere_clone.cli", *argv], env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def connect(sim: Simulator, **overrides: Any) -> VSphereConnection:
    """A verified connection to ``sim`` for setting up and checking what the command did."""
    options: dict[str, Any] = {"ca_bundle": sim.ca_file, "retry": FAST_RETRY, "timeout": 30.0}
    options.update(overrides)
    return VSphereConnection(f"{sim.host}:{sim.port}", sim.user, sim.password, **options).connect()


def make_clone(conn: VSphereConnection, name: str, template: str = "linux-template", *,
               marker: Marker | None = None, clone_type: str = "linked", power_on: bool = False) -> Any:
    """A clone of ``template`` (marked if ``marker``); returns its VM reference."""
    info = find_template(conn, template)
    request = CloneRequest(info, name, clone_type=clone_type, marker=marker, power_on=power_on)
    return clone_vm(conn, request, retry=FAST_RETRY).vm


def dead_pid() -> int:
    """The pid of a process that has ended (for orphaned markers)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def orphan_marker(run_id: str, ttl: float = 3600.0) -> Marker:
    """A marker as a process on this machine that has died would have left it."""
    fresh = Marker.new(run_id, "gw0", ttl=ttl)
    return Marker(fresh.run_id, fresh.worker, fresh.host, dead_pid(), fresh.created, fresh.expiry)


# --- the standalone simulator command -------------------------------------------------------


def start(*argv: str) -> subprocess.Popen[bytes]:
    """`vsphere-clone simulator ARGV...` in the background, without VSPHERE_* from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSPHERE_")}
    return subprocess.Popen([sys.executable, "-m", "pytest_vsphere_clone.cli", "simulator", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def read_facts(proc: subprocess.Popen[bytes], keys: tuple[str, ...], timeout: float = 30.0) -> dict[str, str]:
    """The KEY=value lines the simulator prints, once all ``keys`` are there."""
    assert proc.stdout is not None
    buffer = b""
    deadline = time.monotonic() + timeout
    while True:
        facts = dict(line.split("=", 1) for line in buffer.decode().splitlines() if "=" in line)
        if all(key in facts for key in keys) and buffer.endswith(b"\n"):
            return facts
        remaining = deadline - time.monotonic()
        assert remaining > 0 and proc.poll() is None, f"no facts from the simulator (got {buffer!r})"
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            buffer += os.read(proc.stdout.fileno(), 65536)
