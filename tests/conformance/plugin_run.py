"""Runs the plugin and its command against vcsim as a user would, and judges the output.

Every run is a real ``pytest`` (or ``vsphere-clone``) process with the installed plugin, its
settings on the command line, in a directory of its own with a private HOME and TMPDIR and no
VSPHERE_* variables from the outer run. The checks are the issue's: a failure is one line, no
traceback reaches the output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from local_sshd import SshdGuest
from vcsim_server import TEMPLATE, Vcsim

#: Markers of output that is not one line: Python tracebacks and pytest's internal errors.
TRACEBACK_MARKS = ("Traceback (most recent call last)", "INTERNALERROR")
#: The inner runs' log lines: when, which process (controller or xdist worker), where, what.
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
#: The plugin's bounds for this tier: vcsim answers within milliseconds, so a wait that reaches
#: them is a hang, and it ends the inner run in minutes instead of the 300 s defaults.
TIMEOUT_ARGS = ["--vsphere-clone-timeout=30", "--vsphere-ip-timeout=30", "--vsphere-connect-timeout=20"]


@dataclass
class Outcome:
    """How one command ended and what it printed."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    junit: Path | None = None

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"

    def report(self) -> str:
        """The whole transcript, for an assertion message."""
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stdout ---\n{self.stdout.strip()}\n"
                f"--- stderr ---\n{self.stderr.strip()}")

    def failure_texts(self) -> list[str]:
        """The text of every failure and error the JUnit report holds (empty without one)."""
        if self.junit is None or not self.junit.exists():
            return []
        root = ET.parse(self.junit).getroot()
        return [(element.get("message") or element.text or "").strip()
                for element in root.iter() if element.tag in ("failure", "error")]

    def problems(self) -> list[str]:
        """Why this output breaks the one-line rule: tracebacks, multi-line failures, stray stderr."""
        found = [f"output holds {mark!r}" for mark in TRACEBACK_MARKS if mark in self.output]
        for text in self.failure_texts():
            if len(text.splitlines()) != 1:
                found.append(f"a failure of {len(text.splitlines())} lines: {text!r}")
        errors = [line for line in self.stderr.splitlines() if line.strip()]
        if len(errors) > 1:
            found.append(f"{len(errors)} lines on stderr, not one")
        return found


class UserShell:
    """A user's shell in ``workdir``: pytest with the plugin, and vsphere-clone, against ``server``."""

    def __init__(self, workdir: Path, server: Vcsim, guest: SshdGuest) -> None:
        self.workdir = workdir
        self.server = server
        self.guest = guest
        self.home = workdir / "home"
        self.tmp = workdir / "tmp"
        self.records = workdir / "records.jsonl"
        self.log = workdir / "plugin.log"
        #: Every command run so far, in order: a failing test prints them (see conftest.py).
        self.runs: list[Outcome] = []
        for path in (self.home, self.tmp):
            path.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("VSPHERE_", "PYTEST_")) and key not in ("COV_CORE_SOURCE",)}
        env.update({"HOME": str(self.home), "TMPDIR": str(self.tmp), "CONFORMANCE_RECORDS": str(self.records)})
        return env

    def plugin_args(self, clone_type: str = "linked", scope: str = "worker", template: str = TEMPLATE, *,
                    insecure: bool = False) -> list[str]:
        """The settings of a user whose guest account has no Guest Operations, only an SSH key.

        ``insecure``: ``--vsphere-insecure`` instead of ``--vsphere-ca-bundle`` (no TLS verification).
        """
        connection = self.server.plugin_args()
        if insecure:
            connection = [a for a in connection if not a.startswith("--vsphere-ca-bundle=")] + ["--vsphere-insecure"]
        return [*connection, f"--vsphere-template={template}", f"--vsphere-clone-type={clone_type}",
                f"--vsphere-scope={scope}", "--vsphere-discovery=tools", "--vsphere-ssh-host-key-policy=accept-new",
                f"--vsphere-ssh-port={self.guest.port}", f"--vsphere-ssh-key={self.guest.key}", *TIMEOUT_ARGS]

    def pytest_argv(self, *args: str) -> tuple[list[str], Path]:
        junit = self.workdir / f"junit-{time.monotonic_ns()}.xml"
        # The plugin's log (waits, faults, collector replacements) from every process of the run,
        # appended to one file: evidence for a failure that the terminal's one line cannot hold.
        logging = [f"--log-file={self.log}", "--log-file-level=INFO", "-o", "log_file_mode=a",
                   "-o", f"log_file_format={LOG_FORMAT}"]
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *logging,
                *args], junit

    def log_excerpt(self, tail: int = 80) -> str:
        """The end of the inner runs' plugin log."""
        if not self.log.exists():
            return "(no log)"
        lines = self.log.read_text(errors="replace").splitlines()
        return f"{self.log} ({len(lines)} lines, last {tail})\n" + "\n".join(lines[-tail:])

    def pytest(self, *args: str, timeout: float = 300.0) -> Outcome:
        """``pytest *args`` in the work directory, to its end (killed after ``timeout``)."""
        argv, junit = self.pytest_argv(*args)
        return self._run(argv, timeout, junit)

    def start_pytest(self, *args: str) -> subprocess.Popen[str]:
        """``pytest *args`` started in a session of its own (for a test that kills it)."""
        argv, _ = self.pytest_argv(*args)
        return subprocess.Popen(argv, cwd=self.workdir, env=self.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def cli(self, *args: str, timeout: float = 120.0) -> Outcome:
        """``vsphere-clone *args`` with this vCenter's connection settings after the command name."""
        command, rest = args[0], args[1:]
        script = Path(sys.executable).parent / "vsphere-clone"
        return self._run([str(script), command, *self.server.cli_args(), *rest], timeout)

    def _run(self, argv: list[str], timeout: float, junit: Path | None = None) -> Outcome:
        process = subprocess.Popen(argv, cwd=self.workdir, env=self.env(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this call started: pytest and its xdist workers
            stdout, stderr = process.communicate()
            stderr += f"\n[conformance] killed after {timeout:.0f} s"
        outcome = Outcome([_shown(a) for a in argv], process.returncode, stdout, stderr, junit)
        self.runs.append(outcome)
        return outcome


def _shown(arg: str) -> str:
    return re.sub(r"^(--(?:vsphere-)?password=).*", r"\1***", arg)


def kill_group(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL ``process`` and everything in its session (started by start_pytest); its output."""
    os.killpg(process.pid, signal.SIGKILL)
    return process.communicate()
