"""The small system programs of the simulated Windows guest: cmd.exe, hostname, whoami, sleep, timeout, findstr, find.

Programs (``PROGRAMS``), not built-ins: the shell finds them by base name, with or without a path and
``.exe``, and runs each with its own invocation, as Windows starts them from System32. ``cmd`` runs
the rest of its line in a nested shell; ``findstr`` and ``find`` search files or piped input.
"""

from __future__ import annotations

import re

from ..context import WindowsPathError
from .base import CRLF, CTRL_C_EXIT, Invocation, Program, leading_int

__all__ = ["PROGRAMS"]


def cmd(inv: Invocation) -> int:
    """``cmd.exe [/s] [/q] [/d] [/c|/k] command``: run the rest of the line in a nested shell."""
    rest = inv.raw
    strip_quotes = False
    command: str | None = None
    while True:
        rest = rest.lstrip(" \t")
        match = re.match(r"/([A-Za-z])(:\S*)?", rest)
        if not match:
            break
        switch = match.group(1).lower()
        rest = rest[match.end() :]
        if switch == "s":
            strip_quotes = True
        elif switch in ("c", "k"):
            command = rest.lstrip(" \t")
            break
    if command is None:
        if rest.strip():
            command = rest.strip()
        else:
            inv.print(f"Microsoft Windows [Version {inv.shell.context.os_version}]")
            inv.print("(c) Microsoft Corporation. All rights reserved.")
            return 0
    child = inv.shell.child()
    return child.execute(inv.shell.unquote_c(command, strip_quotes), inv.stdin, inv.out, inv.err)


def hostname(inv: Invocation) -> int:
    if inv.args:
        inv.error("sethostname: Use the Network Control Panel Applet to set hostname.")
        return 1
    inv.print(inv.shell.context.hostname.split(".", 1)[0])
    return 0


def whoami(inv: Invocation) -> int:
    context = inv.shell.context
    inv.print(f"{context.computer_name.lower()}\\{context.username.lower()}")
    return 0


def sleep(inv: Invocation) -> int:
    args = inv.args
    try:
        seconds = float(args[0]) if len(args) == 1 else -1.0
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        inv.error("Usage: sleep SECONDS")
        return 1
    return 0 if inv.shell.sleep(seconds) else CTRL_C_EXIT


def timeout(inv: Invocation) -> int:
    args = [a.lower() for a in inv.args]
    seconds: int | None = None
    if "/t" in args and args.index("/t") + 1 < len(args):
        seconds = leading_int(args[args.index("/t") + 1], -2)
    elif args and re.fullmatch(r"-?\d+", args[0]):
        seconds = int(args[0])
    if seconds is None or not -1 <= seconds <= 99999:
        inv.error("ERROR: Invalid syntax. Default option is not allowed more than '1' time(s).")
        inv.error('Type "TIMEOUT /?" for usage.')
        return 1
    key = "press CTRL+C to quit" if "/nobreak" in args else "press a key to continue"
    inv.print()
    inv.out.write(f"Waiting for {max(seconds, 0):>2} seconds, {key} ...")
    completed = inv.shell.sleep(max(seconds, 0))
    inv.out.write(CRLF)
    return 0 if completed else CTRL_C_EXIT


def _input_sources(inv: Invocation, files: list[str]) -> list[tuple[str | None, str]] | None:
    """(name, text) pairs from the named files, or stdin; None after reporting a missing file."""
    if not files:
        return [(None, inv.stdin or "")]
    sources: list[tuple[str | None, str]] = []
    for name in files:
        try:
            path = inv.shell.host_path(name)
        except WindowsPathError:
            path = None
        if path is None or not path.is_file():
            inv.error(f"File not found - {name.upper()}")
            return None
        sources.append((name, path.read_bytes().decode("utf-8", "surrogateescape")))
    return sources


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").split("\n")[: -1 if text.endswith("\n") else None]


def _findstr_regex(pattern: str) -> str:
    """findstr's regular expressions: ``. * ^ $ [class] \\< \\>`` and ``\\x`` escapes; nothing else."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        ch = pattern[index]
        if ch == "\\" and index + 1 < len(pattern):
            following = pattern[index + 1]
            out.append(r"\b" if following in "<>" else re.escape(following))
            index += 2
            continue
        if ch == "[":
            end = pattern.find("]", index + 1)
            if end > index:
                out.append(pattern[index : end + 1])
                index = end + 1
                continue
        out.append(ch if ch in ".*^$" else re.escape(ch))
        index += 1
    return "".join(out)


def findstr(inv: Invocation) -> int:
    args = inv.args
    options: set[str] = set()
    literals: list[str] = []
    operands: list[str] = []
    for arg in args:
        lowered = arg.lower()
        if lowered.startswith("/c:"):
            literals.append(arg[3:])
        elif lowered.startswith("/") and len(arg) > 1:
            options.update("/" + ch for ch in lowered[1:].replace("/", ""))
        else:
            operands.append(arg)
    if not literals:
        if not operands:
            inv.error("FINDSTR: Bad command line")
            return 2
        literals = operands.pop(0).split()
    flags = re.IGNORECASE if "/i" in options else 0
    as_regex = "/l" not in options
    patterns = [re.compile(_findstr_regex(p) if as_regex else re.escape(p), flags) for p in literals]
    sources = _input_sources(inv, operands)
    if sources is None:
        return 1
    found = False
    for name, text in sources:
        for number, line in enumerate(_lines(text), 1):
            hit = any(
                (p.fullmatch(line) if "/x" in options else p.search(line)) is not None
                and ("/b" not in options or p.match(line) is not None)
                for p in patterns
            )
            if hit != ("/v" in options):
                found = True
                prefix = f"{name}:" if name is not None and len(sources) > 1 else ""
                prefix += f"{number}:" if "/n" in options else ""
                inv.print(prefix + line)
    return 0 if found else 1


def find(inv: Invocation) -> int:
    args = inv.args
    options = {a.lower() for a in args if a.startswith("/")}
    operands = [a for a in args if not a.startswith("/")]
    if not operands:
        inv.error("FIND: Parameter format not correct")
        return 2
    needle, files = operands[0], operands[1:]
    sources = _input_sources(inv, files)
    if sources is None:
        return 1
    found = False
    fold = str.casefold if "/i" in options else str
    for name, text in sources:
        matches = [line for line in _lines(text) if (fold(needle) in fold(line)) != ("/v" in options)]
        found = found or bool(matches)
        header = f"{CRLF}---------- {name.upper()}" if name is not None else None
        if "/c" in options:
            inv.print(f"{header}: {len(matches)}" if header else str(len(matches)))
            continue
        if header:
            inv.print(header)
        for line in matches:
            inv.print(line)
    return 0 if found else 1


PROGRAMS: dict[str, Program] = {
    "cmd": cmd,
    "hostname": hostname,
    "whoami": whoami,
    "sleep": sleep,
    "timeout": timeout,
    "findstr": findstr,
    "find": find,
}
