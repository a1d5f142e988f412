"""Fault soak (issue 12): clone lifecycles under injected faults and one vCenter outage.

Runs ``--lifecycles`` clones that live for one test each (every fifth an instant clone of ``linux-frozen``
from ``vsphere_vm_factory``, the others function-scope linked clones of ``linux-template`` from
``vsphere_vm``) as ``pytest -n 2`` sessions against one bundled simulator
with real guests, on the ``seed`` profile scaled by ``--time-scale``. Each test runs ``true`` over SSH.
About 5 % of all SOAP calls are hit (``--fault-rate``), each rule drawing from its own seeded random:

- fail once: vmodl.fault.HostCommunication or vmodl.fault.SystemError (runtime faults, which the API
  reference lets any method answer), and vim.fault.TaskInProgress where the method declares it (the
  task methods end their task with it; guest process calls answer it);
- delay: the call waits ``--delay`` seconds before it runs;
- dropped connection: closed before the call runs, or after it ran (the answer is lost).

Once, when the middle session has finished a tenth of its tests, the vCenter goes away for ``--outage``
seconds (listening socket closed: connections refused; every session ended), then comes back on the
same port. The next session starts only after it is back.

Printed at the end: tests passed and failed (each failure must be one line; its distinct reasons with
counts), tracebacks (in pytest's output, in failure reports and logged by the plugin; must be 0),
VMs left in the simulator and network namespaces left on the machine (must be 0), SOAP requests per
lifecycle (everything the sessions sent, retries and login included, over the lifecycles) and wall
time. Exits 1 if tracebacks, leaks or a hung session are found. Needs root (real guests):

    .venv/bin/python benchmarks/fault_soak.py [--lifecycles 200] [--time-scale 0.1] [--sessions 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig, soap_trace
from pytest_vsphere_clone.simulator.faults import ANY_METHOD, FaultRule
from pytest_vsphere_clone.simulator.guests import guest_support_problem

#: Every n-th lifecycle is an instant clone.
INSTANT_EVERY = 5
#: Methods the plugin calls that declare vim.fault.TaskInProgress (or its base VimFault) in the
#: API reference, so a server may answer it; task methods end their task with it.
TASK_IN_PROGRESS_METHODS = ("CloneVM_Task", "InstantClone_Task", "PowerOnVM_Task", "PowerOffVM_Task",
                            "Destroy_Task", "ReconfigVM_Task", "StartProgramInGuest", "ListProcessesInGuest")
#: Share of all calls that go to the methods above (a linked lifecycle makes about 3 task calls and 1
#: guest program start in about 20): TaskInProgress rules fire that much more often on them.
TASK_METHOD_SHARE = 0.2
#: How long a pytest session may take before it counts as hung (the plugin's own timeouts are 300 s).
SESSION_TIMEOUT = 1200.0
EVENTS_ENV = "FAULT_SOAK_EVENTS"
DUMPS_ENV = "FAULT_SOAK_DUMPS"
TRACEBACK = "Traceback (most recent call last)"

#: The generated conftest.py: records test reports (controller only: it sees every worker's, and a
#: crashed worker's), anything the plugin logs with a traceback (every process), and registers a
#: faulthandler dump on SIGUSR1 so that a hung session's stacks can be read.
CONFTEST = '''
import faulthandler
import json
import logging
import os
import signal
import time

EVENTS = os.environ["FAULT_SOAK_EVENTS"]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "master")
_DUMP = open(os.path.join(os.environ["FAULT_SOAK_DUMPS"], f"{WORKER}-{os.getpid()}.txt"), "w")
faulthandler.register(signal.SIGUSR1, file=_DUMP, all_threads=True)


def _write(event, **fields):
    line = json.dumps({"event": event, "worker": WORKER, "time": time.time(), **fields}) + "\\n"
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class _LoggedTracebacks(logging.Handler):
    def emit(self, record):
        if record.exc_info and record.exc_info[0] is not None:
            _write("logged_traceback", logger=record.name, message=record.getMessage()[:300],
                   exception=repr(record.exc_info[1])[:300])


logging.getLogger("pytest_vsphere_clone").addHandler(_LoggedTracebacks())


def _has_traceback(longrepr):
    # pytest.fail(pytrace=False) still makes a ReprTraceback, but only of "value" entries (the message).
    chain = getattr(longrepr, "chain", None)
    if chain is None and hasattr(longrepr, "reprtraceback"):
        chain = [(longrepr.reprtraceback, None, None)]
    if chain is None:
        return "Traceback (most recent call last)" in str(longrepr)
    return any(entry.style != "value" for traceback, _, _ in chain for entry in traceback.reprentries)


def pytest_runtest_logreport(report):
    if WORKER == "master":
        _write("report", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
               text=report.longreprtext if report.failed else "", traceback=_has_traceback(report.longrepr))


def pytest_collectreport(report):
    if WORKER == "master" and report.failed:
        _write("report", nodeid=report.nodeid or "<collection>", when="collect", outcome="failed",
               text=report.longreprtext, traceback=_has_traceback(report.longrepr))
'''

TEST_MODULE = '''
import pytest

#: Lifecycle numbers are counted across the soak's sessions, so every fifth is an instant clone.
KINDS = {{n: "instant" if n % {every} == {every} - 1 else "linked" for n in range({start}, {start} + {count})}}


@pytest.fixture
def vm(request, kind):
    # Made in the test's set-up, as vsphere_vm's clones are; the factory's die with the test.
    if kind == "instant":
        return request.getfixturevalue("vsphere_vm_factory")(template="linux-frozen", clone_type="instant")
    return request.getfixturevalue("vsphere_vm")


@pytest.mark.parametrize("kind", [pytest.param(kind, id=f"{{kind}}-{{n}}") for n, kind in KINDS.items()])
def test_lifecycle(vm, kind):
    assert vm.run("true").exit_status == 0
'''


# --- faults ------------------------------------------------------------------------------------------------


def fault_rules(rate: float, delay: float, seed: int) -> list[FaultRule]:
    """Rules that together hit about ``rate`` of all calls: 40 % fail once, 30 % delay, 30 % drop."""
    fail, slow, drop = rate * 0.4, rate * 0.3, rate * 0.3
    in_progress = fail * 0.25 / TASK_METHOD_SHARE  # on the methods that declare it, a fifth of all calls
    rules = [
        FaultRule(ANY_METHOD, "HostCommunication", count=-1, probability=fail * 0.5, seed=seed),
        FaultRule(ANY_METHOD, "SystemError", count=-1, probability=fail * 0.25, seed=seed + 1),
        FaultRule(ANY_METHOD, count=-1, delay=delay, probability=slow, seed=seed + 2),
        FaultRule(ANY_METHOD, count=-1, drop=True, probability=drop / 2, seed=seed + 3),
        FaultRule(ANY_METHOD, count=-1, drop_reply=True, probability=drop / 2, seed=seed + 4),
    ]
    rules += [FaultRule(method, "TaskInProgress", count=-1, in_task=True, probability=in_progress,
                        seed=seed + 5 + index) for index, method in enumerate(TASK_IN_PROGRESS_METHODS)]
    return rules


def rule_label(rule: FaultRule) -> str:
    if rule.fault:
        where = "its task" if rule.in_task and rule.method.endswith("_Task") else "answer"
        return f"{rule.fault} ({'any method' if rule.method == ANY_METHOD else rule.method}, {where})"
    if rule.delay:
        return f"delay {rule.delay:g} s"
    return "drop before the call" if rule.drop else "drop the answer (call ran)"


# --- one session ---------------------------------------------------------------------------------------------


@dataclass
class Session:
    index: int
    #: The number of its first lifecycle in the soak, and how many it runs.
    start: int
    tests: int
    returncode: int | None = None
    wall: float = 0.0
    hung: bool = False
    output: str = ""
    dumps: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Clones (and guests) beyond the inventory's right after the session ended: the next session's
    #: start reaps orphans of dead runs, so only this shows what a session itself left.
    left: list[str] = field(default_factory=list)


class OutageTrigger:
    """Takes the vCenter away once the chosen session has finished ``after`` of its tests."""

    def __init__(self, sim: Simulator, session: int, after: int, seconds: float) -> None:
        self.sim, self.session, self.after, self.seconds = sim, session, after, seconds
        self.thread: threading.Thread | None = None
        #: Wall-clock times the vCenter went away and came back.
        self.started_at: float | None = None
        self.ended_at: float | None = None

    def watch(self, session: Session, events_file: Path, done: threading.Event) -> None:
        if session.index != self.session or self.seconds <= 0:
            return
        while not done.wait(0.25):
            finished = sum(1 for line in events_file.read_text().splitlines()
                           if '"when": "teardown"' in line and '"worker": "master"' in line)
            if finished >= self.after:
                print(f"... vCenter unavailable for {self.seconds:g} s after {finished} tests of session "
                      f"{session.index + 1}", file=sys.stderr, flush=True)
                self.thread = threading.Thread(target=self._outage, name="outage")
                self.thread.start()
                return

    def _outage(self) -> None:
        self.started_at = time.time()
        try:
            self.sim.outage(self.seconds)
        finally:
            self.ended_at = time.time()

    def wait_back(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def after_return(self, session: Session) -> tuple[int, int]:
        """(passed, failed) of the outage session's tests that ended after the vCenter was back: whether
        the plugin logs in again and goes on."""
        if self.ended_at is None or session.index != self.session:
            return 0, 0
        ended = {e["nodeid"]: e for e in session.events if e["event"] == "report" and e["when"] == "teardown"}
        late = {e["nodeid"] for e in session.events if e["event"] == "report" and e["time"] > self.ended_at
                and e["when"] == "setup"}
        failed = {e["nodeid"] for e in session.events if e["event"] == "report" and e["outcome"] == "failed"}
        return len((late & ended.keys()) - failed), len(late & failed)


def run_session(sim: Simulator, session: Session, workers: int, trigger: OutageTrigger) -> None:
    facts = sim.connection_facts()
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as tmp:
        workdir = Path(tmp)
        events, dumps = workdir / "events.jsonl", workdir / "dumps"
        events.touch()
        dumps.mkdir()
        # An ini file of its own: the project's pyproject.toml (addopts, testpaths) never applies.
        (workdir / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
        (workdir / "conftest.py").write_text(CONFTEST)
        (workdir / "test_soak.py").write_text(TEST_MODULE.format(start=session.start, count=session.tests,
                                                                 every=INSTANT_EVERY))
        env = {k: v for k, v in os.environ.items() if not k.startswith("VSPHERE_")}
        env.update(VSPHERE_PASSWORD=facts["PASSWORD"], VSPHERE_GUEST_PASSWORD=facts["GUEST_PASSWORD"])
        env[EVENTS_ENV], env[DUMPS_ENV] = str(events), str(dumps)
        command = [sys.executable, "-m", "pytest", "-q", "-rfE", f"--rootdir={workdir}", "test_soak.py",
                   "-n", str(workers), f"--vsphere-host={facts['HOST']}", f"--vsphere-user={facts['USER']}",
                   f"--vsphere-ca-bundle={facts['CA_FILE']}", f"--vsphere-guest-user={facts['GUEST_USER']}",
                   "--vsphere-template=linux-template", "--vsphere-scope=function"]
        output = workdir / "output.txt"
        done = threading.Event()
        watcher = threading.Thread(target=trigger.watch, args=(session, events, done), daemon=True)
        started = time.monotonic()
        with output.open("w") as out:
            proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            watcher.start()
            try:
                session.returncode = proc.wait(timeout=SESSION_TIMEOUT)
            except subprocess.TimeoutExpired:
                session.hung = True
                os.killpg(proc.pid, signal.SIGUSR1)  # every pytest process dumps its threads' stacks
                time.sleep(3)
                os.killpg(proc.pid, signal.SIGKILL)
                session.returncode = proc.wait()
        session.wall = time.monotonic() - started
        done.set()
        watcher.join()
        session.output = output.read_text(errors="replace")
        session.dumps = "\n".join(f"== {p.name}\n{p.read_text(errors='replace')}" for p in sorted(dumps.iterdir())
                                  if p.stat().st_size)
        session.events = [json.loads(line) for line in events.read_text().splitlines()]


# --- leaks -------------------------------------------------------------------------------------------------------


def namespaces(tag: str) -> list[str]:
    """Network namespaces on the machine named after this simulator's guest tag."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return sorted(name for line in listing.splitlines() if (name := line.split()[0]).startswith(f"{tag}-"))


def guests_of(sim: Simulator) -> list[str]:
    assert sim.vc is not None and sim.vc.guests is not None
    return sorted(g.vm_id for g in sim.vc.guests.host.guests if g.running)


# --- results ----------------------------------------------------------------------------------------------------


class SimulatorErrors(logging.Handler):
    """Errors the simulator logs (its own bugs: a client must get a fault, never a crash)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}"[:300])


#: The line pytest puts before an xdist worker's report ("[gw0] linux -- Python 3.11.7 /path/python").
WORKER_INFO = re.compile(r"^\[gw\d+\] \S+ -- Python .*$")


def reason_text(longreprtext: str) -> str:
    """A failure report's own text: without pytest's worker line and surrounding blank lines."""
    return "\n".join(line for line in longreprtext.strip().splitlines() if not WORKER_INFO.match(line)).strip()


def normalized(reason: str) -> str:
    """A failure reason with names and numbers generalized, so that equal reasons group."""
    reason = re.sub(r"'[^']*'", "'…'", reason)
    return re.sub(r"\d+(\.\d+)?", "N", reason)


@dataclass
class Outcome:
    passed: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    multi_line: list[str] = field(default_factory=list)
    report_tracebacks: list[str] = field(default_factory=list)
    logged_tracebacks: list[str] = field(default_factory=list)
    output_tracebacks: list[str] = field(default_factory=list)
    #: Tests never reported, by their session's reason.
    not_run: Counter[str] = field(default_factory=Counter)


def evaluate(sessions: list[Session]) -> Outcome:
    result = Outcome()
    for session in sessions:
        by_test: dict[str, list[dict[str, Any]]] = {}
        for event in session.events:
            if event["event"] == "report":
                by_test.setdefault(event["nodeid"], []).append(event)
            elif event["event"] == "logged_traceback":
                result.logged_tracebacks.append(f"{event['worker']} {event['logger']}: {event['message']} "
                                                f"({event['exception']})")
        for nodeid, reports in by_test.items():
            failures = [r for r in reports if r["outcome"] == "failed"]
            if not failures:
                result.passed += any(r["when"] == "call" and r["outcome"] == "passed" for r in reports)
                continue
            result.failed += 1
            for report in failures:
                text = report["text"] = reason_text(report["text"])
                if report["traceback"]:
                    result.report_tracebacks.append(f"{nodeid} ({report['when']}):\n{text[-1500:]}")
                if len(text.splitlines()) != 1:
                    result.multi_line.append(f"{nodeid} ({report['when']}):\n{text[:1500]}")
            first = failures[0]["text"].splitlines()
            result.reasons[f"{failures[0]['when']}: {normalized(first[0]) if first else '(no reason)'}"] += 1
        result.output_tracebacks += output_tracebacks(session.output)
        unreported = session.tests - len(by_test)
        if unreported > 0:
            # A session refused at start (pytest's "ERROR: ..." usage error) or ended early runs none.
            # An INTERNALERROR's last "module.Type: ..." line names the exception that escaped.
            why = ([line for line in session.output.splitlines() if line.startswith("ERROR: ")][:1]
                   or [line for line in session.output.splitlines()
                       if re.match(r"INTERNALERROR> [A-Za-z_][\w.]*: ", line)][-1:])
            result.not_run[f"session exit {session.returncode}: {normalized(why[0]) if why else '(no reason)'}"] \
                += unreported
    return result


def output_tracebacks(output: str) -> list[str]:
    """Python tracebacks in pytest's output, and INTERNALERROR blocks that show none (each an excerpt)."""
    lines = output.splitlines()
    found = ["\n".join(lines[number:number + 25]) for number, line in enumerate(lines) if TRACEBACK in line]
    for internal, group in itertools.groupby(lines, key=lambda line: line.startswith("INTERNALERROR>")):
        block = list(group)
        if internal and not any(TRACEBACK in line for line in block):
            found.append("\n".join(block[:25]))
    return found


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


# --- main ---------------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=200, help="clones made and destroyed in all")
    parser.add_argument("--sessions", type=int, default=5, help="pytest sessions the lifecycles are split into")
    parser.add_argument("--workers", type=int, default=2, help="pytest -n")
    parser.add_argument("--time-scale", type=float, default=0.1, help="the seed profile's time scale")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of SOAP calls hit by a fault")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds a delayed call waits")
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the vCenter is away (0: no outage)")
    parser.add_argument("--outage-after", type=float, default=0.1,
                        help="share of the middle session's tests finished when the vCenter goes away (early "
                             "enough that tests go on after it is back)")
    parser.add_argument("--seed", type=int, default=12, help="seed of the fault rules' random draws")
    parser.add_argument("--output", type=Path, help="also write every session's pytest output here")
    parser.add_argument("--trace", type=Path, help="write the simulator's SOAP call trace here (one line per call, "
                                                    "injected faults and dropped connections included)")
    args = parser.parse_args()
    if args.lifecycles < args.sessions or args.sessions < 1:
        parser.error("--lifecycles must be at least --sessions (and that at least 1)")
    return args


def main() -> int:
    args = parse_args()
    problem = guest_support_problem()
    if problem:
        print(f"the simulator's real guests cannot run here: {problem}", file=sys.stderr)
        return 2
    sim_errors = SimulatorErrors()
    logging.getLogger("pytest_vsphere_clone.simulator").addHandler(sim_errors)
    sizes = [args.lifecycles // args.sessions + (index < args.lifecycles % args.sessions)
             for index in range(args.sessions)]
    sessions = [Session(index, sum(sizes[:index]), size) for index, size in enumerate(sizes)]
    middle = args.sessions // 2
    trace = args.trace.open("w") if args.trace else None
    if trace is not None:
        soap_trace.enable(trace)
    sim = Simulator(SimulatorConfig(guests=True, profile="seed", time_scale=args.time_scale)).start()
    try:
        assert sim.vc is not None and sim.vc.guests is not None
        tag = sim.vc.guests.host.tag
        baseline_vms, baseline_guests = sim.vm_names(), guests_of(sim)
        rules = [sim.vc.faults.add(rule) for rule in fault_rules(args.fault_rate, args.delay, args.seed)]
        trigger = OutageTrigger(sim, middle, max(1, round(sizes[middle] * args.outage_after)), args.outage)
        sim.reset_counters()
        started = time.monotonic()
        for session in sessions:
            print(f"... session {session.index + 1}/{len(sessions)}: {session.tests} lifecycles",
                  file=sys.stderr, flush=True)
            run_session(sim, session, args.workers, trigger)
            trigger.wait_back()
            session.left = [*sorted(set(sim.vm_names()) - set(baseline_vms)),
                            *(f"guest of {g}" for g in sorted(set(guests_of(sim)) - set(baseline_guests)))]
        wall = time.monotonic() - started
        sim.clear_faults()
        requests = sum(sim.counters().values())
        left_vms = sorted(set(sim.vm_names()) - set(baseline_vms))
        left_guests = sorted(set(guests_of(sim)) - set(baseline_guests))
    finally:
        sim.stop()
        if trace is not None:
            trace.close()
    left_namespaces = namespaces(tag)
    outcome = evaluate(sessions)
    if args.output:
        args.output.write_text("\n".join(f"===== session {s.index + 1} (exit {s.returncode}, {s.wall:.0f} s)\n"
                                         f"{s.output}" for s in sessions))
    hung = [s for s in sessions if s.hung]
    tracebacks = len(outcome.output_tracebacks) + len(outcome.report_tracebacks) + len(outcome.logged_tracebacks)
    fired = sum(rule.fired for rule in rules)
    session_leaks = [f"session {s.index + 1}: {name}" for s in sessions for name in s.left]
    # The last session's leaks are the soak's own at the end: counted once.
    leaks = len(session_leaks) + len(left_namespaces)

    instant = sum(1 for n in range(args.lifecycles) if n % INSTANT_EVERY == INSTANT_EVERY - 1)
    print(f"Fault soak: {args.lifecycles} clone lifecycles of one test each ({args.lifecycles - instant} linked, "
          f"{instant} instant) in {args.sessions} sessions of pytest -n {args.workers}, "
          f"seed profile x {args.time_scale:g}")
    back_passed, back_failed = trigger.after_return(sessions[middle])
    away = (f"vCenter away {args.outage:g} s once (session {middle + 1}, after {trigger.after} of its tests; "
            f"of the tests whose set-up ended after it was back {back_passed} passed, {back_failed} failed)"
            if trigger.started_at is not None else "no outage (the session ended before it was due)")
    print(f"faults: {fired} of {requests} SOAP calls ({fired / max(requests, 1):.1%}); {away}")
    for rule in rules:
        if rule.fired:
            print(f"  {rule.fired:>5}  {rule_label(rule)}")
    print()
    print_table([
        ("tests passed", str(outcome.passed)),
        ("tests failed", f"{outcome.failed} ({len(outcome.multi_line)} with more than one line of reason)"),
        ("tests not run", str(sum(outcome.not_run.values()))),
        ("tracebacks", f"{tracebacks} (output {len(outcome.output_tracebacks)}, failure reports "
                       f"{len(outcome.report_tracebacks)}, logged by the plugin {len(outcome.logged_tracebacks)})"),
        ("VMs left in the simulator", f"{len(left_vms)} at the end; {len(session_leaks)} right after a session "
                                      f"ended (before the next one's start reaped them)"),
        ("guests left running", str(len(left_guests))),
        ("network namespaces left", f"{len(left_namespaces)} (after the simulator stopped)"),
        ("hung sessions", str(len(hung))),
        ("simulator errors logged", str(len(sim_errors.messages))),
        ("SOAP requests per lifecycle", f"{requests / args.lifecycles:.1f} (all {requests} requests of the "
                                        f"sessions, retries and logins included)"),
        ("wall time", f"{wall:.0f} s ({', '.join(f'{s.wall:.0f}' for s in sessions)} s per session; "
                      f"exit statuses {', '.join(str(s.returncode) for s in sessions)})"),
    ])
    if outcome.reasons or outcome.not_run:
        print("\nfailure reasons (first failing phase, names and numbers generalized):")
        for reason, count in outcome.reasons.most_common():
            print(f"  {count:>4}  {reason}")
        for reason, count in outcome.not_run.most_common():
            print(f"  {count:>4}  not run: {reason}")
    for title, items in (("failures with more than one line", outcome.multi_line),
                         ("tracebacks in failure reports", outcome.report_tracebacks),
                         ("tracebacks logged by the plugin", outcome.logged_tracebacks),
                         ("tracebacks in pytest's output", outcome.output_tracebacks),
                         ("simulator errors", sim_errors.messages),
                         ("leaks", [*session_leaks, *(f"namespace {name}" for name in left_namespaces)])):
        if items:
            shown = items if title == "leaks" else items[:5]
            print(f"\n{title} ({len(items)}{'; first 5' if len(shown) < len(items) else ''}):")
            for item in shown:
                print("  " + item.replace("\n", "\n    "))
    for session in hung:
        print(f"\nsession {session.index + 1} hung; its processes' stacks (first 6000 characters):\n"
              f"{session.dumps[:6000]}")
    return 1 if tracebacks or leaks or hung else 0


if __name__ == "__main__":
    sys.exit(main())
