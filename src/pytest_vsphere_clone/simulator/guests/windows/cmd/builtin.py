"""cmd.exe's built-in commands (``INTERNAL``): echo, cd, dir, type, set, exit, mkdir, del, move and the like.

They act on the shell itself (its directory, environment, ERRORLEVEL) or on the guest's files, as
cmd.exe's own commands do. Programs the shell finds by name are elsewhere: system_programs.py,
ipconfig_netsh.py, vmware_tools.py and PowerShell's program.py.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from datetime import datetime
from pathlib import Path

from ..context import FILE_NOT_FOUND, PATH_NOT_FOUND, WindowsPathError
from .base import Invocation, Program, leading_int

__all__ = ["INTERNAL"]

_SYNTAX = "The syntax of the command is incorrect."


def _flags_and_operands(args: list[str]) -> tuple[set[str], list[str]]:
    flags = {a.lower() for a in args if a.startswith("/")}
    return flags, [a for a in args if not a.startswith("/")]


def _split_wildcard(operand: str) -> tuple[str, str]:
    """``C:\\logs\\*.txt`` -> (``C:\\logs``, ``*.txt``); without wildcards the pattern is ``*``."""
    head, sep, tail = operand.replace("/", "\\").rpartition("\\")
    if not any(ch in tail for ch in "*?"):
        return operand, "*"
    if not sep:
        head = tail[:2] if tail[1:2] == ":" else "."
        tail = tail[2:] if tail[1:2] == ":" else tail
    return (head + "\\" if head.endswith(":") or not head else head), tail


# -- built-ins ------------------------------------------------------------------------------------


def echo(inv: Invocation) -> int:
    raw = inv.raw
    if not raw.strip() and raw[:1] in ("", " ", "\t"):
        inv.print("ECHO is on.")
        return 0
    text = raw[1:]  # the character that ended "echo" is swallowed: "echo." prints an empty line
    if raw[0] in " \t" and text.strip().lower() in ("on", "off"):
        return 0
    inv.print(text)
    return 0


def rem(inv: Invocation) -> int:
    return 0


def cd(inv: Invocation) -> int:
    shell = inv.shell
    target = inv.raw.strip()
    if target.lower().startswith("/d"):
        target = target[2:].strip()
    target = target.strip('"')
    if not target:
        inv.print(shell.cwd)
        return 0
    if re.fullmatch(r"[A-Za-z]:", target):
        inv.print(shell.cwd if shell.cwd[:2].upper() == target.upper() else target.upper() + "\\")
        return 0
    try:
        path = shell.host_path(target)
        if not path.is_dir():
            raise WindowsPathError("The directory name is invalid." if path.exists() else PATH_NOT_FOUND)
        shell.cwd = shell.windows_path(target)
    except WindowsPathError as exc:
        inv.error(str(exc))
        return 1
    return 0


def _format_time(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp)
    hour = moment.hour % 12 or 12
    return f"{moment:%m/%d/%Y}  {hour:02d}:{moment:%M} {'AM' if moment.hour < 12 else 'PM'}"


def dir_(inv: Invocation) -> int:
    shell = inv.shell
    flags, operands = _flags_and_operands(inv.args)
    bare = "/b" in flags
    status = 0
    for operand in operands or ["."]:
        base, pattern = _split_wildcard(operand)
        try:
            path = shell.host_path(base)
            if path.is_file():
                base, pattern = f"{base}\\..", path.name
                path = path.parent
            if not path.is_dir():
                raise WindowsPathError(FILE_NOT_FOUND)
            win = shell.windows_path(base)
        except WindowsPathError:
            inv.error("File Not Found")
            status = 1
            continue
        entries = sorted(
            (e for e in path.iterdir() if fnmatch.fnmatch(e.name.casefold(), pattern.casefold())),
            key=lambda e: e.name.casefold(),
        )
        if bare:
            for entry in entries:
                inv.print(entry.name)
            if not entries:
                inv.error("File Not Found")
                status = 1
            continue
        inv.print(f" Volume in drive {win[0]} has no label.")
        inv.print(" Volume Serial Number is 5A3C-1B2D")
        inv.print()
        inv.print(f" Directory of {win}")
        inv.print()
        if not entries and pattern != "*":
            inv.error("File Not Found")
            status = 1
            continue
        files = dirs = total = 0
        listing: list[tuple[str, Path]] = []
        if len(win) > 3 and pattern == "*":
            listing += [(".", path), ("..", path.parent)]
        listing += [(e.name, e) for e in entries]
        for name, item in listing:
            stat = item.stat()
            stamp = _format_time(stat.st_mtime)
            if item.is_dir():
                dirs += 1
                inv.print(f"{stamp}    <DIR>          {name}")
            else:
                files += 1
                total += stat.st_size
                inv.print(f"{stamp}    {stat.st_size:>14,} {name}")
        free = shutil.disk_usage(shell.context.disk_root).free
        inv.print(f"{files:>16} File(s) {total:>14,} bytes")
        inv.print(f"{dirs:>16} Dir(s) {free:>15,} bytes free")
    return status


def type_(inv: Invocation) -> int:
    shell = inv.shell
    operands = inv.args
    if not operands:
        inv.error(_SYNTAX)
        return 1
    status = 0
    for operand in operands:
        if operand.lower().rstrip(":") == "nul":
            continue
        try:
            path = shell.host_path(operand)
        except WindowsPathError as exc:
            inv.error(str(exc))
            status = 1
            continue
        if path.is_dir():
            inv.error("Access is denied.")
            status = 1
        elif not path.is_file():
            inv.error(FILE_NOT_FOUND)
            status = 1
        else:
            inv.out.write(path.read_bytes().decode("utf-8", "surrogateescape"))
    return status


def set_(inv: Invocation) -> int:
    env = inv.shell.env
    text = inv.raw[1:] if inv.raw[:1] in (" ", "\t", "=", ",", ";") else inv.raw
    text = text.lstrip(" \t")
    if not text.strip():
        for name in sorted(env, key=str.casefold):
            inv.print(f"{name}={env[name]}")
        return 0
    if text.startswith('"'):
        # set "NAME=value" keeps everything up to the last quote, dropping what follows.
        closing = text.rfind('"')
        text = text[1:closing] if closing > 0 else text[1:]
    if text[:2].lower() in ("/a", "/p"):
        inv.error(f"SET {text[:2].upper()} is not supported on this guest.")
        return 1
    if "=" not in text:
        prefix = text.strip().casefold()
        matches = sorted((n for n in env if n.casefold().startswith(prefix)), key=str.casefold)
        if not matches:
            inv.error(f"Environment variable {text.strip()} not defined")
            return 1
        for name in matches:
            inv.print(f"{name}={env[name]}")
        return 0
    name, value = text.split("=", 1)
    if not name:
        inv.error(_SYNTAX)
        return 1
    if value:
        env[name] = value
    elif name in env:
        del env[name]
    return 0


def exit_(inv: Invocation) -> int:
    # "/b" only matters inside batch files, which this dialect does not run: both forms end the line.
    numbers = [a for a in inv.args if a.lower() != "/b"]
    code = leading_int(numbers[0], 0) if numbers else inv.shell.errorlevel
    inv.shell.raise_exit(code)
    return code


def ver(inv: Invocation) -> int:
    inv.print()
    inv.print(f"Microsoft Windows [Version {inv.shell.context.os_version}]")
    return 0


def mkdir(inv: Invocation) -> int:
    operands = inv.args
    if not operands:
        inv.error(_SYNTAX)
        return 1
    status = 0
    for operand in operands:
        try:
            path = inv.shell.host_path(operand)
            if path.exists():
                inv.error(f"A subdirectory or file {operand} already exists.")
                status = 1
                continue
            path.mkdir(parents=True)
        except (WindowsPathError, OSError) as exc:
            inv.error(str(exc) if isinstance(exc, WindowsPathError) else PATH_NOT_FOUND)
            status = 1
    return status


def del_(inv: Invocation) -> int:
    _, operands = _flags_and_operands(inv.args)
    if not operands:
        inv.error(_SYNTAX)
        return 1
    for operand in operands:
        base, pattern = _split_wildcard(operand)
        try:
            path = inv.shell.host_path(base)
            shown = inv.shell.context.absolute(base, inv.shell.cwd)
        except WindowsPathError as exc:
            inv.error(str(exc))
            continue
        targets: list[Path] = []
        if any(ch in operand for ch in "*?") or path.is_dir():
            # "del DIR" means every file in it, as "del DIR\*" does.
            shown = shown.rstrip("\\") + "\\" + pattern
            if path.is_dir():
                folded = pattern.casefold()
                targets = [e for e in path.iterdir() if fnmatch.fnmatch(e.name.casefold(), folded)]
        elif path.exists():
            targets = [path]
        files = [t for t in targets if t.is_file()]
        if not files:
            inv.error(f"Could Not Find {shown}")
        for target in files:
            target.unlink()
    # del famously exits 0 even when nothing matched.
    return 0


def move(inv: Invocation) -> int:
    """``move [/y | /-y] source destination``: one file, renamed or moved (an existing destination
    is replaced, as with /y, which is what scripts pass; no prompt is ever shown)."""
    _, operands = _flags_and_operands(inv.args)
    if len(operands) != 2 or any(ch in operands[0] for ch in "*?"):
        inv.error(_SYNTAX)
        return 1
    try:
        source = inv.shell.host_path(operands[0])
        target = inv.shell.host_path(operands[1])
    except WindowsPathError as exc:
        inv.error(str(exc))
        return 1
    if not source.is_file():
        inv.error(FILE_NOT_FOUND)
        return 1
    if target.is_dir():
        target = target / source.name
    if not target.parent.is_dir():
        inv.error(PATH_NOT_FOUND)
        return 1
    source.replace(target)  # atomic on one file system: a reader sees the old name or the new
    inv.print("        1 file(s) moved.")
    return 0


def noop(inv: Invocation) -> int:
    return 0


INTERNAL: dict[str, Program] = {
    "echo": echo,
    "rem": rem,
    "cd": cd,
    "chdir": cd,
    "dir": dir_,
    "type": type_,
    "set": set_,
    "exit": exit_,
    "ver": ver,
    "md": mkdir,
    "mkdir": mkdir,
    "del": del_,
    "erase": del_,
    "move": move,
    "cls": noop,
    "title": noop,
}
