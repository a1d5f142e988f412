"""A tiny PowerShell for the simulated Windows guest: enough for ``pywinrm``'s ``run_ps``.

``powershell -EncodedCommand <base64 UTF-16LE>`` (what ``run_ps`` sends), ``-Command`` and ``-File``
run scripts made of statements separated by ``;`` or new lines.  Supported: string literals and
``$env:X`` / ``$variables`` (with interpolation in double quotes), assignments, ``$i++``/``$i--``,
``exit N``, ``while (...) { ... }``, ``if (...) { ... } else { ... }``, ``break``, conditions made of
``-not``, ``-and``, ``-or`` and the comparisons ``-eq -ne -lt -le -gt -ge -like -notlike``,
``Write-Output``/``echo``/``Write-Host``/``Write-Error``, ``Get-NetIPAddress`` (real interfaces;
``-AddressFamily``, ``-PrefixOrigin``, ``-AddressState``, ``-InterfaceAlias``, ``-InterfaceIndex``),
``-ErrorAction SilentlyContinue``, ``[Diagnostics.Stopwatch]::StartNew()``, ``Get-Content``,
``Test-Path``, ``Start-Sleep``,
``(...).Property``, pipes into ``Out-Null``, ``Out-String`` and ``Select-Object
-ExpandProperty/-First``, and native programs (``hostname``, ``ipconfig``, ``cmd /c ...``).
Anything else fails as PowerShell does, with exit code 1. Starting powershell.exe takes the
guest's ``powershell_start`` time (the latency profile's), as the real one's start-up does.

This module is ``powershell.exe`` itself: its command line, start-up and exit code. The script runs
in interpreter.py, over language.py's tokens and values; ``Get-NetIPAddress`` is net_ip_address.py's.
"""

from __future__ import annotations

import base64
import binascii
import random

from ..cmd.base import CTRL_C_EXIT, Invocation, split_args
from ..context import WindowsPathError
from .interpreter import ScriptRunner
from .language import Break, ExitScript, clixml, statements

__all__ = ["powershell"]

#: powershell.exe parameters: (full name, accepted short forms).
_PARAMETERS = {
    "command": ("c",),
    "encodedcommand": ("e", "ec", "enc"),
    "executionpolicy": ("ex", "ep"),
    "file": ("f",),
    "noprofile": ("nop",),
    "noninteractive": ("noni",),
    "nologo": ("nol",),
    "noexit": ("noe",),
    "inputformat": ("if", "inp"),
    "outputformat": ("of", "o"),
    "windowstyle": ("w",),
    "version": ("v",),
    "sta": (),
    "mta": (),
}
_TAKES_VALUE = frozenset({"executionpolicy", "inputformat", "outputformat", "windowstyle", "version"})


def _parameter(word: str) -> str | None:
    name = word[1:].lower()
    for full, aliases in _PARAMETERS.items():
        if name == full or name in aliases or (len(name) >= 3 and full.startswith(name)):
            return full
    return None


def powershell(inv: Invocation) -> int:
    """``powershell.exe``: parse its command line, then run the script."""
    tokens = split_args(inv.raw)
    script: str | None = None
    encoded = False
    index = 0
    while index < len(tokens):
        word = tokens[index]
        parameter = _parameter(word) if word.startswith(("-", "/")) else None
        if word == "-":
            script = inv.stdin or ""
            break
        if parameter is None:
            script = " ".join(tokens[index:])
            break
        if parameter == "encodedcommand":
            try:
                script = base64.b64decode(tokens[index + 1], validate=True).decode("utf-16-le")
            except (IndexError, binascii.Error, UnicodeDecodeError):
                inv.error(
                    "Cannot process the command because the value specified with -EncodedCommand is not "
                    "properly encoded. The value must be Base64 encoded."
                )
                return 1
            encoded = True
            index += 2
            continue
        if parameter == "command":
            script = " ".join(tokens[index + 1 :])
            if script == "-":
                script = inv.stdin or ""
            break
        if parameter == "file":
            if index + 1 >= len(tokens):
                inv.error("Missing the argument to -File.")
                return 1
            path = tokens[index + 1]
            try:
                script = inv.shell.host_path(path).read_text(encoding="utf-8-sig", errors="replace")
            except (WindowsPathError, OSError):
                inv.error(
                    f"The argument '{path}' to the -File parameter does not exist. Provide the path to an "
                    "existing '.ps1' file as an argument to the -File parameter."
                )
                return 1
            break
        index += 2 if parameter in _TAKES_VALUE else 1
    if script is None:
        inv.print("Windows PowerShell")
        inv.print("Copyright (C) Microsoft Corporation. All rights reserved.")
        return 0

    low, high = inv.shell.context.powershell_start
    if high > 0 and not inv.shell.sleep(random.uniform(low, high)):  # powershell.exe's own start-up
        return CTRL_C_EXIT
    runner = ScriptRunner(inv)
    code: int | None = None
    try:
        runner.run_block(statements(script), inv.out)
    except ExitScript as exc:
        code = exc.code
    except Break:
        pass  # outside any loop, break ends the script
    if runner.errors.value:
        inv.err.write(clixml(runner.errors.value) if encoded else runner.errors.value)
    if code is not None:
        return code
    return 1 if runner.failed else 0
