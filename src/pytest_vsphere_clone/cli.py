"""The ``vsphere-clone`` command: the simulator, listing, reaping, freezing, collapsing, doctor.

Exit status: 0 success, 1 failure (one line on stderr naming the fix), 2 usage error,
130 interrupted. Connection options fall back to the plugin's environment variables
(``VSPHERE_HOST``, ``VSPHERE_USER``, ``VSPHERE_PASSWORD``, ...); passwords are never printed.
With ``--json`` a command prints one JSON document on stdout; a failure prints
``{"error": LINE, "exit_status": N}`` there as well as the line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata

from .commands import (
    collapse_command,
    doctor_command,
    freeze_command,
    list_command,
    reap_command,
    simulator_command,
)
from .commands._common import CommandError, Console, describe_exception

#: Subcommand modules, in the order ``--help`` lists them; each has ``register(subparsers)``.
COMMANDS = (simulator_command, list_command, reap_command, freeze_command, collapse_command, doctor_command)
DISTRIBUTION = "pytest-vsphere-clone"


def version() -> str:
    """The installed package's version (its metadata, as pip reports it)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vsphere-clone",
        description=f"Disposable vSphere clones for pytest: tools around the plugin ({DISTRIBUTION} {version()}).",
        epilog="Connection options fall back to VSPHERE_HOST, VSPHERE_USER, VSPHERE_PASSWORD, VSPHERE_INSECURE and "
               "VSPHERE_CA_BUNDLE; guest credentials to VSPHERE_GUEST_USER and VSPHERE_GUEST_PASSWORD. "
               "Exit status: 0 success, 1 failure, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                        help="print the version and exit")
    # Also before the command (`vsphere-clone -vv list`), so the advice "rerun with -vv" works either way.
    parser.add_argument("-v", "--verbose", dest="top_verbose", action="count", default=0,
                        help="as the commands' -v (-vv: debug, with tracebacks of unexpected errors)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    args.verbose = int(getattr(args, "verbose", 0) or 0) + args.top_verbose
    console = Console(args)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return _fail(args, console, "interrupted", 130)
    except CommandError as exc:
        return _fail(args, console, str(exc), exc.exit_status)
    except Exception as exc:
        from .client import faults
        from .client.errors import VSphereCloneError

        if args.verbose >= 2:
            console.err("".join(traceback.format_exception(exc)))
        if isinstance(exc, VSphereCloneError):
            message = str(exc)
        elif faults.is_vsphere_fault(exc):
            message = (f"the vCenter answered {describe_exception(exc)}; check the tasks and events of the objects "
                       f"involved in the vSphere Client (rerun with -vv for a traceback)")
        else:
            message = f"unexpected {describe_exception(exc)} (rerun with -vv for a traceback)"
        return _fail(args, console, message, 1)


def _fail(args: argparse.Namespace, console: Console, message: str, status: int) -> int:
    """The error line on stderr and, under --json, ``{"error": LINE, "exit_status": N}`` on stdout."""
    console.error(message)
    if getattr(args, "json", False):
        console.json({"error": console.one_line(message), "exit_status": status})
    return status


if __name__ == "__main__":
    sys.exit(main())
