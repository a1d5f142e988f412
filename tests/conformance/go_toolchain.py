"""Building the conformance tier's Go programs (the govmomi client, vcsim) with Debian's Go and govmomi.

GOPATH mode against /usr/share/gocode (golang-github-vmware-govmomi-dev), once per test session: the
first xdist worker builds, the others wait on a lock and reuse the binary. Every program of the session
shares one GOCACHE, so govmomi's packages are compiled once, not once per program.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Where Debian's golang-github-vmware-govmomi-dev puts the govmomi sources.
GOCODE = Path("/usr/share/gocode")


class GoToolchainError(RuntimeError):
    """A Go program could not be built; the message says what is missing or what failed."""


@dataclass(frozen=True)
class GoBinary:
    """A built program and what its build cost."""

    binary: Path
    seconds: float  # 0.0 when another xdist worker (or an earlier session) built it


def session_go_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory this session's xdist workers share for Go builds (pytest-N, not pytest-N/popen-gwK)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "go"


def build(source_dir: Path, name: str, shared_dir: Path, needs: str) -> GoBinary:
    """``shared_dir/<name>-<source digest>`` built from ``source_dir``; ``needs`` is a govmomi package
    directory (e.g. ``simulator``) whose absence means golang-github-vmware-govmomi-dev is missing."""
    go = shutil.which("go")
    if go is None or not (GOCODE / "src/github.com/vmware/govmomi" / needs).is_dir():
        raise GoToolchainError(f"building {name} needs golang-go and golang-github-vmware-govmomi-dev "
                               f"(.ci/setup installs them)")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(source_dir.glob("*.go")))).hexdigest()[:12]
    shared_dir.mkdir(parents=True, exist_ok=True)
    binary = shared_dir / f"{name}-{digest}"
    with open(shared_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time: the second reuses the first's cache
        if binary.exists():
            return GoBinary(binary, 0.0)
        env = {**os.environ, "GOPATH": f"{shared_dir / 'gopath'}:{GOCODE}", "GO111MODULE": "off",
               "GOCACHE": str(shared_dir / "gocache"), "GOFLAGS": "", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
        started = time.monotonic()
        done = subprocess.run([go, "build", "-o", f"{binary}.tmp", "."], cwd=source_dir, env=env,
                              capture_output=True, text=True, timeout=900)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise GoToolchainError(f"go build of {source_dir} failed:\n{done.stderr}")
        os.replace(f"{binary}.tmp", binary)
        return GoBinary(binary, seconds)
