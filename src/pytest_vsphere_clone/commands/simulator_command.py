"""``vsphere-clone simulator``: run the bundled vCenter simulator in the foreground.

It prints its connection facts (URL, HOST, USER, PASSWORD, CA_FILE, THUMBPRINT and, with real
guests, the guest accounts) as ``KEY=value`` lines, or as one JSON object on the first line
with ``--json``, then serves until SIGINT or SIGTERM. The credentials it prints are the ones it
made up for itself: printing them is its job, so they are not scrubbed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._common import Console, add_verbose_option, client_logging

if TYPE_CHECKING:
    from ..simulator import Simulator


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "simulator", help="run the bundled vCenter simulator (prints URL and credentials, then serves)",
        description="Run the bundled vCenter simulator in the foreground: a vSphere Web Services endpoint over "
                    "HTTPS (its own CA) with an inventory of templates and, unless --no-guests, real guests in "
                    "network namespaces (as root, or in a user namespace of its own). Prints URL, HOST, USER, "
                    "PASSWORD, CA_FILE, THUMBPRINT and the guest accounts (GUEST_USER, GUEST_PASSWORD, GUEST_KEY, "
                    "WINDOWS_GUEST_USER, WINDOWS_GUEST_PASSWORD) as KEY=value lines (without root also NSENTER, "
                    "the prefix that runs a client in its network), then serves until Ctrl-C or SIGTERM and removes "
                    "everything it made.",
        epilog="Point the plugin at it with VSPHERE_HOST=HOST, VSPHERE_USER=USER, VSPHERE_PASSWORD=PASSWORD and "
               "VSPHERE_CA_BUNDLE=CA_FILE (or run pytest --vsphere-simulator, which starts one itself).")
    add_verbose_option(parser, "what the simulator does")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, a free one)")
    parser.add_argument("--profile", choices=("fast", "seed"), default="fast",
                        help="latency profile: fast (for tests) or seed (the seeds' measured times) (default: fast)")
    parser.add_argument("--time-scale", metavar="FACTOR", type=_positive_float, default=1.0,
                        help="multiply every latency by this (default: 1.0)")
    parser.add_argument("--inventory", metavar="FILE", type=Path,
                        help="JSON file describing another inventory (default: the bundled one: linux-template, "
                             "linux-frozen, windows-template, windows-frozen)")
    parser.add_argument("--password", help="administrator password (default: a fresh random one)")
    parser.add_argument("--no-guests", dest="guests", action="store_false",
                        help="do not run real guests (network namespaces); needs no root (default: run them)")
    parser.add_argument("--json", action="store_true",
                        help="print the facts as one JSON object on the first line instead of KEY=value lines")
    parser.add_argument("--trace", nargs="?", const="-", metavar="FILE",
                        help="log one line per SOAP call (method, object, result or fault, milliseconds) "
                             "to stderr, or append them to FILE (default: no trace)")
    parser.set_defaults(run=run)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def run(args: argparse.Namespace) -> int:
    from ..simulator import Simulator, SimulatorConfig, userns

    if args.guests and userns.needed():
        # Not root: this command again, inside a user namespace of its own (simulator/userns.py);
        # clients outside reach it through the NSENTER= prefix it prints.
        try:
            return userns.run_inside([sys.executable, *sys.orig_argv[1:]])
        except userns.NamespaceRefused as exc:
            print(f"vsphere-clone simulator: real guests without root run in a user namespace, which {exc} "
                  "(or pass --no-guests)", file=sys.stderr)
            return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    config = SimulatorConfig(host=args.host, port=args.port, profile=args.profile, time_scale=args.time_scale,
                             inventory=args.inventory, password=args.password, guests=args.guests)
    trace_out = _open_trace(args.trace)
    if args.trace and trace_out is None:
        return 2
    # Log records as the other commands print them; the facts below are printed as they are (see the docstring).
    console = Console(None, "simulator")
    try:
        with client_logging(console, int(args.verbose or 0)):
            return _serve(Simulator(config), stop, trace_out, as_json=args.json)
    finally:
        if trace_out is not None and trace_out is not sys.stderr:
            trace_out.close()


def _serve(simulator: Simulator, stop: threading.Event, trace_out: TextIO | None, *, as_json: bool = False) -> int:
    from ..simulator import soap_trace, userns
    from ..simulator.inventory import InventoryError

    try:
        simulator.start()
    except InventoryError as exc:
        print(f"vsphere-clone simulator: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"vsphere-clone simulator: {exc}. Real guests need root; run as root or pass --no-guests.",
              file=sys.stderr)
        return 2
    handler = soap_trace.enable(trace_out) if trace_out is not None else None
    try:
        facts = simulator.connection_facts()
        enter = userns.enter_command()
        if enter:
            facts["NSENTER"] = enter  # the run's network is its own: clients run with this prefix
        if as_json:
            print(json.dumps(facts))  # one line: `head -1 | jq` reads it while the simulator serves
        else:
            for key, value in facts.items():
                print(f"{key}={value}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
        if handler is not None:
            soap_trace.disable(handler)
    return 0


def _open_trace(target: str | None) -> TextIO | None:
    """Where --trace writes: stderr for "-", else FILE opened for appending (None: no trace, or unopenable)."""
    if not target:
        return None
    if target == "-":
        return sys.stderr
    try:
        # Line-buffered: a `tail -f` of the file sees each call as it ends.
        return open(target, "a", buffering=1, encoding="utf-8")
    except OSError as exc:
        print(f"vsphere-clone simulator: cannot write the trace to {target}: {exc.strerror}", file=sys.stderr)
        return None
