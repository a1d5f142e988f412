"""The ``vsphere-clone`` command: the simulator, listing, reaping, freezing, collapsing, doctor."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .commands import simulator_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vsphere-clone",
        description="Disposable vSphere clones for pytest: tools around the plugin.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    simulator_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
