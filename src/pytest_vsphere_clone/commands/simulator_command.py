"""``vsphere-clone simulator``: run the bundled vCenter simulator in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..simulator import Simulator


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "simulator", help="run the bundled vCenter simulator (prints URL and credentials, then serves)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--profile", choices=("fast", "seed"), default="fast",
                        help="latency profile: fast (tests) or seed (the seeds' measured times)")
    parser.add_argument("--time-scale", type=_positive_float, default=1.0, help="multiply every latency by this")
    parser.add_argument("--inventory", type=Path, help="JSON file describing another inventory")
    parser.add_argument("--password", help="administrator password (default: a fresh random one)")
    parser.add_argument("--no-guests", dest="guests", action="store_false",
                        help="do not run real guests (network namespaces); needs no root")
    parser.add_argument("--trace", nargs="?", const="-", metavar="FILE",
                        help="log one line per SOAP call (method, object, result or fault, milliseconds) "
                             "to stderr, or append them to FILE")
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
    from ..simulator import Simulator, SimulatorConfig

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
    try:
        return _serve(Simulator(config), stop, trace_out)
    finally:
        if trace_out is not None and trace_out is not sys.stderr:
            trace_out.close()


def _serve(simulator: Simulator, stop: threading.Event, trace_out: TextIO | None) -> int:
    from ..simulator import soap_trace
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
        for key, value in simulator.connection_facts().items():
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
