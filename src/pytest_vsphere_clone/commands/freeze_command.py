"""``vsphere-clone freeze TEMPLATE``: make a VM a frozen instant-clone source.

Powers the VM on if needed, waits for VMware Tools, then starts ``vmtoolsd --cmd
"instantclone.freeze"`` through Guest Operations (on Windows guests the Tools' own
``C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe``, which takes the same ``--cmd``).
That call only returns when the VM runs again (in each instant clone, never in the frozen
source), so it is started, not awaited:
``runtime.instantCloneFrozen`` is awaited through the property collector instead, and the
process is checked in between so a freeze that fails is reported at once.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import TYPE_CHECKING, Any

from ._common import (
    CommandError,
    Console,
    GuestCredentials,
    add_guest_options,
    add_json_option,
    common_parent,
    connection_settings,
    describe_exception,
    first_line,
    guest_credentials,
    positive_float,
    run_command,
)

if TYPE_CHECKING:
    from ..client.guest_ops import GuestOperations
    from ..client.inventory import TemplateInfo
    from ..client.session import VSphereConnection
    from ..client.waiter import Waiter

FREEZE_RPC = "instantclone.freeze"
WINDOWS_VMTOOLSD = r"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe"
#: Name prefix of the guest file that catches the freeze command's stderr.
STDERR_PREFIX = "vsphere-clone-freeze-"
#: Seconds per wait for the frozen flag between checks of the freeze process.
_CHECK_EVERY = 1.0


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "freeze", parents=[common_parent()], help="power on a VM and freeze it as an instant-clone source",
        description="Power the VM on if needed, wait for VMware Tools, run `vmtoolsd --cmd \"instantclone.freeze\"` "
                    "in it through Guest Operations and verify that runtime.instantCloneFrozen became true. An "
                    "already frozen VM is left alone. Needs the guest credentials.")
    parser.add_argument("template", metavar="TEMPLATE", help="the VM to freeze: name or inventory path")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_float, default=300.0,
                        help="overall seconds for power-on, VMware Tools and the freeze (default 300)")
    add_guest_options(parser)
    add_json_option(parser, "the outcome (vm, outcome: frozen or already frozen, powered_on, command)")
    parser.set_defaults(run=lambda args: run_command(args, run), option_renames={"template": "TEMPLATE"})


def run(args: argparse.Namespace, console: Console) -> int:
    from ..client.inventory import find_template
    from ..client.waiter import Waiter

    credentials = guest_credentials(args, required=True)
    assert credentials is not None
    settings = connection_settings(args)
    say = (lambda text: None) if args.json else console.out  # under --json, stdout holds only the document
    with settings.connect() as conn, Waiter(conn) as waiter:
        info = find_template(conn, args.template)
        if info.frozen:
            if args.json:
                console.json(outcome(info.name, "already frozen"))
                return 0
            console.out(f"{info.name} is already frozen (runtime.instantCloneFrozen is true): nothing to do")
            return 0
        if info.is_template:
            raise CommandError(f"{info.name} is a vSphere template, which cannot be powered on: convert it to a "
                               f"virtual machine (Convert to Virtual Machine in the vSphere Client, or `govc "
                               f"vm.markasvm {info.name}`), then run `vsphere-clone freeze {info.name}`")
        deadline = time.monotonic() + args.timeout
        powered_on = False
        try:
            if info.power_state != "poweredOn":
                say(f"powering on {info.name} ({info.power_state}) ...")
                _power_on(conn, waiter, info, _remaining(deadline, args.timeout, f"the power-on of {info.name}"))
                powered_on = True
            say(f"waiting for VMware Tools in {info.name} ...")
            _wait_for_tools(waiter, info, deadline, args.timeout)
            command = freeze_command_text(info.os_family)
            say(f"running `{command}` in {info.name} through Guest Operations ...")
            _freeze(conn, waiter, info, credentials, deadline, args.timeout)
        except Exception as exc:
            if not powered_on:
                raise
            raise CommandError(f"{describe_exception(exc)} ({info.name} was powered on by this command and left "
                               f"running)") from exc
    if args.json:
        console.json(outcome(info.name, "frozen", powered_on=powered_on, command=command))
        return 0
    console.out(f"{info.name} is frozen (runtime.instantCloneFrozen is true): instant clones of it start running, "
                f"e.g. `pytest --vsphere-template={info.name} --vsphere-clone-type=instant`")
    return 0


def outcome(name: str, what: str, *, powered_on: bool = False, command: str | None = None) -> dict[str, Any]:
    """The --json document of a freeze that succeeded (``what``: frozen, or already frozen)."""
    return {"vm": name, "outcome": what, "frozen": True, "powered_on": powered_on, "command": command}


def freeze_command_text(os_family: str) -> str:
    """The freeze command as the guest runs it, for messages."""
    if os_family == "windows":
        return f'"{WINDOWS_VMTOOLSD}" --cmd "{FREEZE_RPC}"'
    return f'vmtoolsd --cmd "{FREEZE_RPC}"'


def _remaining(deadline: float, timeout: float, what: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CommandError(f"timed out after {timeout:g} s before {what}: raise --timeout")
    return remaining


def _power_on(conn: VSphereConnection, waiter: Waiter, info: TemplateInfo, timeout: float) -> None:
    from ..client.errors import WaitTimeout

    task = conn.call(info.ref.PowerOnVM_Task, idempotent=False, what=f"PowerOnVM_Task of {info.name}")
    try:
        waiter.wait_for_task(task, timeout, f"the power-on of {info.name}")
    except WaitTimeout as exc:
        raise CommandError(f"timed out after {exc.timeout:g} s waiting for the power-on of {info.name} "
                           f"(last seen: {exc.last_seen}): raise --timeout") from None


def _wait_for_tools(waiter: Waiter, info: TemplateInfo, deadline: float, timeout: float) -> None:
    from ..client.errors import WaitTimeout

    remaining = _remaining(deadline, timeout, f"VMware Tools ran in {info.name}")
    try:
        waiter.wait_for_property(info.ref, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning", remaining,
                                 f"VMware Tools to run in {info.name}")
    except WaitTimeout as exc:
        raise CommandError(f"timed out after {timeout:g} s waiting for VMware Tools to run in {info.name} (last "
                           f"seen: {exc.last_seen}): install VMware Tools (open-vm-tools on Linux) in the guest and "
                           f"make them start at boot, or raise --timeout") from None


def _freeze(conn: VSphereConnection, waiter: Waiter, info: TemplateInfo, credentials: GuestCredentials,
            deadline: float, timeout: float) -> None:
    from ..client import props
    from ..client.errors import GuestOperationFailed, WaitTimeout
    from ..client.guest_ops import GuestOperations

    ops = GuestOperations(conn, info.ref, credentials.user, credentials.password, os_family=info.os_family,
                          vm_name=info.name)
    command = freeze_command_text(ops.os_family)
    try:
        # stderr goes to a file read if the freeze fails; each clone deletes it when its vmtoolsd returns.
        stderr_path = ops.temp_file(prefix=STDERR_PREFIX, suffix=".err")
        pid = ops.start_command(command, stderr_path=stderr_path)
    except GuestOperationFailed as exc:
        where = WINDOWS_VMTOOLSD if ops.os_family == "windows" else "vmtoolsd on the PATH"
        raise CommandError(f"{exc}: check that VMware Tools are installed in the guest ({where})") from None

    def frozen(seconds: float) -> bool:
        try:
            waiter.wait_for_property(info.ref, "runtime.instantCloneFrozen", bool, seconds, f"{info.name} to freeze")
            return True
        except WaitTimeout:
            return False

    try:
        status = ops.wait_exit_or(pid, frozen, deadline - time.monotonic(), check_every=_CHECK_EVERY)
    except WaitTimeout:
        raise CommandError(f"timed out after {timeout:g} s waiting for {info.name} to freeze (runtime."
                           f"instantCloneFrozen stayed false, `{command}` is still "
                           f"running as pid {pid}): check the VM's events in the vSphere Client, or raise "
                           f"--timeout") from None
    if status is not None:
        detail = _read_and_delete(ops, stderr_path)
        tools = f"VMware Tools ({WINDOWS_VMTOOLSD})" if ops.os_family == "windows" else "VMware Tools (open-vm-tools)"
        raise CommandError(f"`{command}` exited with status {status} in {info.name} "
                           f"before the VM froze{' (' + detail + ')' if detail else ''}: check that {tools} "
                           f"are installed and running in the guest and that guest user "
                           f"{credentials.user!r} may run vmtoolsd")
    values = props.read(conn, info.ref, ["runtime.instantCloneFrozen", "runtime.powerState"])
    if not values.get("runtime.instantCloneFrozen"):
        raise CommandError(f"{info.name} did not stay frozen (power state {values.get('runtime.powerState')}): "
                           f"run `vsphere-clone freeze {info.name}` again and check the VM's events")


def _read_and_delete(ops: GuestOperations, path: str) -> str:
    """The first line of the guest file ``path`` (deleted afterwards); empty if unreadable."""
    try:
        text = ops.read_file(path).decode("utf-8", "replace")
    except Exception:
        text = ""
    with contextlib.suppress(Exception):  # best effort: the command's own failure is what matters
        ops.delete_file(path)
    return first_line(text)
