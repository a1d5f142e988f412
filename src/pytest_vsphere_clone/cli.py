"""The ``vsphere-clone`` command: the simulator, listing, reaping, freezing, collapsing, doctor.

Exit status: 0 success, 1 failure (one line on stderr naming the fix), 2 usage error,
130 interrupted. Connection options fall back to the plugin's environment variables
(``VSPHERE_HOST``, ``VSPHERE_USER``, ``VSPHERE_PASSWORD``, ...); passwords are never printed.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vsphere-clone",
        description="Disposable vSphere clones for pytest: tools around the plugin.",
        epilog="Connection options fall back to VSPHERE_HOST, VSPHERE_USER, VSPHERE_PASSWORD, VSPHERE_INSECURE and "
               "VSPHERE_CA_BUNDLE; guest credentials to VSPHERE_GUEST_USER and VSPHERE_GUEST_PASSWORD. "
               "Exit status: 0 success, 1 failure, 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    console = Console(args)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
    except CommandError as exc:
        console.error(str(exc))
        return exc.exit_status
    except Exception as exc:
        from .client import faults
        from .client.errors import VSphereCloneError

        if getattr(args, "verbose", 0) >= 2:
            console.err("".join(traceback.format_exception(exc)))
        if isinstance(exc, VSphereCloneError):
            console.error(str(exc))
        elif faults.is_vsphere_fault(exc):
            console.error(f"the vCenter answered {describe_exception(exc)}; check the tasks and events of the "
                          f"objects involved in the vSphere Client (rerun with -vv for a traceback)")
        else:
            console.error(f"unexpected {describe_exception(exc)} (rerun with -vv for a traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
