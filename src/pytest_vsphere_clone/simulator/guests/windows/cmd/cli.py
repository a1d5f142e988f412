"""The cmd.exe of a simulated Windows guest as a program: what Guest Operations start.

StartProgramInGuest on a Windows guest runs, inside the guest's namespaces::

    python -m pytest_vsphere_clone.simulator.guests.windows.cmd.cli --disk-root DIR [options] \\
        C:\\Windows\\System32\\cmd.exe "/c ipconfig > C:\\Users\\x\\out.txt"

It starts one program the way CreateProcess does (see :meth:`CmdShell.run_program`), streams its
output, and exits with its exit code (also written to ``--exit-code-file``: exit statuses lose
codes above 255).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..context import WindowsPathError, add_context_arguments, context_from_args
from .base import CRLF
from .shell import CmdShell

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: run one program the way StartProgramInGuest does, inside the namespace."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_vsphere_clone.simulator.guests.windows.cmd.cli",
        description="Run a program on a simulated Windows guest (cmd.exe dialect).",
    )
    add_context_arguments(parser)
    parser.add_argument("--cwd", default=None, help="Windows working directory (default: the user's profile)")
    parser.add_argument(
        "--exit-code-file",
        type=Path,
        default=None,
        help="also write the exit code here: process exit statuses lose codes above 255 (e.g. 9009)",
    )
    parser.add_argument("program", help=r"program path, e.g. C:\Windows\System32\cmd.exe")
    parser.add_argument(
        "arguments", nargs=argparse.REMAINDER, help="raw argument string (joined with spaces when split)"
    )
    args = parser.parse_args(argv)
    context = context_from_args(args)
    context.prepare_disk()
    out, err = sys.stdout.buffer, sys.stderr.buffer

    def write(stream: str, text: str) -> None:
        target = out if stream == "stdout" else err
        target.write(text.encode("utf-8", "surrogateescape"))
        target.flush()

    try:
        shell = CmdShell(context, cwd=args.cwd, on_output=write)
        if not context.host_path(shell.cwd).is_dir():
            raise WindowsPathError("The directory name is invalid.")
    except WindowsPathError as exc:
        err.write(f"{exc}{CRLF}".encode())
        code = 267  # ERROR_DIRECTORY, what CreateProcess reports for a bad working directory
    else:
        code = shell.run_program(args.program, " ".join(args.arguments)).exit_code
    if args.exit_code_file is not None:
        args.exit_code_file.write_text(f"{code}\n")
    # Keep a failure a failure when the code does not fit an exit status (256 would read as 0).
    return (code & 0xFF) or (1 if code else 0)


if __name__ == "__main__":
    sys.exit(main())
