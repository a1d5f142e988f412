"""Finding a clone's IP address: actively through Guest Operations, or from VMware Tools' report.

:class:`ActiveDiscovery` runs a command in the guest (Linux ``ip -o address show scope
global``, Windows ``ipconfig``, or a custom one) and retries quickly until an address
passes the :class:`AddressFilter`; if Guest Operations fail it falls back to
:class:`ToolsDiscovery`, which waits on ``guest.net`` / ``guest.ipAddress`` through
WaitForUpdatesEx. Both fail loudly with every address they saw and why it was refused.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import faults
from .errors import (
    EsxiHostUnreachable,
    GuestLoginFailed,
    GuestOperationFailed,
    GuestOperationsUnsupported,
    NoUsableAddress,
    OutcomeUnknown,
    RetriesExhausted,
    VSphereCloneError,
    WaitTimeout,
)
from .guest_ops import GuestOperations
from .pacing import WAITING_BEAT, WaitingPace
from .result import CommandResult

if TYPE_CHECKING:
    from .session import VSphereConnection
    from .waiter import Waiter

log = logging.getLogger(__name__)

IP_FAMILIES = ("ipv4", "ipv6", "any")
DEFAULT_COMMANDS = {"linux": "ip -o address show scope global", "windows": "ipconfig"}
#: How long the default Linux command waits in the guest for an address before it answers: the
#: guest looks every 25 ms, so the address is known one look and one poll after it appears,
#: where a round per look would cost a whole Guest Operations round trip each time.
GUEST_WAIT_SECONDS = 3.0
#: How often the guests' waiting loops look for the address (Linux: ``ip``, cheap; Windows:
#: Get-NetIPAddress, a CIM query).
_GUEST_TICK = 0.025
_WINDOWS_GUEST_TICK = 0.05
#: The line :func:`linux_wait_command` leaves on stderr: the guest's uptime before and after its wait.
_WAITED_MARK = "pytest-vsphere-clone-waited"
_WAITED = re.compile(rf"^{_WAITED_MARK} (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$", re.MULTILINE)
#: Exit statuses of "command not found" (sh, cmd.exe): retrying cannot help.
_NOT_FOUND_STATUSES = (126, 127, 9009)
#: cmd.exe's "command not found", for output whose exit status is only success or failure.
_NOT_RECOGNIZED = "is not recognized as an internal or external command"

_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")
_IP_O_LINE = re.compile(r"^\d+:\s+(?P<iface>[^\s:]+)\s+(?P<family>inet6?)\s+(?P<addr>[0-9A-Fa-f.:]+)(?:/\d+)?"
                        r"(?P<rest>.*)$")
_IPCONFIG_ADAPTER = re.compile(r"^\S.*adapter (?P<name>.+?):\s*$")
_IPCONFIG_ADDRESS = re.compile(r"^\s+(?:(?:Temporary |Link-local )?IPv6 Address|(?:Autoconfiguration )?IPv4 "
                               r"Address|IP Address)[ .]*:\s*(?P<addr>[0-9A-Fa-f.:%]+)")
#: Interfaces of container and VM bridges inside the guest: their addresses are not reachable from outside.
_BRIDGE_INTERFACE = re.compile(r"^(docker|virbr|br-|cni|flannel|cali|lxdbr|podman)")
_TOKEN = re.compile(r"[0-9A-Fa-f:.%]+(?:/\d{1,3})?")


#: How long the default Windows command waits in the guest: long, since each round pays for
#: powershell.exe's start-up (about half a second), during which a new address would go unseen;
#: a Windows guest's DHCP takes many seconds, so one round usually covers it.
WINDOWS_GUEST_WAIT_SECONDS = 30.0


def windows_wait_command(family: str = "ipv4", wait: float = WINDOWS_GUEST_WAIT_SECONDS) -> str:
    """``ipconfig``, run once PowerShell sees an address of ``family`` the guest can use (from DHCP,
    set by hand or, for IPv6, from router advertisements; past duplicate address detection), or
    after ``wait`` seconds. cmd.exe has no sub-second sleep; without powershell.exe it runs at once."""
    selector = {"ipv4": " -AddressFamily IPv4", "ipv6": " -AddressFamily IPv6"}.get(family, "")
    origins = "Dhcp,Manual" if family == "ipv4" else "Dhcp,Manual,RouterAdvertisement"
    probe = (f"(Get-NetIPAddress{selector} -PrefixOrigin {origins} -AddressState Preferred "
             f"-ErrorAction SilentlyContinue)")
    script = (f"$w = [Diagnostics.Stopwatch]::StartNew(); "
              f"while ($w.ElapsedMilliseconds -lt {int(wait * 1000)} -and -not {probe}) "
              f"{{ Start-Sleep -Milliseconds {int(_WINDOWS_GUEST_TICK * 1000)} }}")
    # Quiet: a guest without powershell.exe must not look like one without the discovery command.
    return (f'powershell.exe -NoProfile -NonInteractive -Command "{script}" >nul 2>&1 & '
            f'{DEFAULT_COMMANDS["windows"]}')


def linux_wait_command(family: str = "ipv4", wait: float = GUEST_WAIT_SECONDS) -> str:
    """``ip -o address show scope global``, run once the guest has a global address of ``family``
    outside container bridges (or after ``wait`` seconds). Fractional sleep is GNU and busybox;
    elsewhere the loop sleeps whole seconds."""
    flag = {"ipv4": " -4", "ipv6": " -6"}.get(family, "")
    bridges = _BRIDGE_INTERFACE.pattern.lstrip("^")
    probe = (f"ip -o{flag} address show scope global 2>/dev/null | grep -vE 'tentative|^[0-9]+: {bridges}' "
             f"| grep -q inet")
    ticks = max(1, round(wait / _GUEST_TICK))
    # The guest's uptime before and after the wait, on stderr: how long it waited (WaitingPace).
    return (f"read t0 _ </proc/uptime 2>/dev/null; i=0; until {probe} || [ $i -ge {ticks} ]; "
            f"do sleep {_GUEST_TICK} 2>/dev/null || sleep 1; i=$((i+1)); done; "
            f"read t1 _ </proc/uptime 2>/dev/null; echo \"{_WAITED_MARK} $t0 $t1\" >&2; {DEFAULT_COMMANDS['linux']}")


def guest_wait_seconds(stderr: str) -> float | None:
    """How long :func:`linux_wait_command` waited in the guest, from its stderr (None if unknown)."""
    found = _WAITED.search(stderr)
    return float(found[2]) - float(found[1]) if found else None


@dataclass(frozen=True)
class Address:
    """One address a guest reported, with its interface when known."""

    address: str
    interface: str = ""
    note: str = ""  # e.g. "tentative": present but not usable yet

    def __str__(self) -> str:
        return f"{self.interface} {self.address}".strip()


@dataclass(frozen=True)
class AddressFilter:
    """Which addresses are usable: family ``ipv4``/``ipv6``/``any``, optional CIDR ``network``.

    Loopback, link-local (169.254/16, fe80::/10), unspecified and multicast addresses are
    never usable.
    """

    family: str = "ipv4"
    network: str | None = None

    def __post_init__(self) -> None:
        if self.family not in IP_FAMILIES:
            raise VSphereCloneError(f"ip family {self.family!r} is not one of {', '.join(IP_FAMILIES)}: check "
                                    f"--vsphere-ip-family")
        if self.network is not None:
            try:
                ipaddress.ip_network(self.network, strict=False)
            except ValueError:
                raise VSphereCloneError(f"ip network {self.network!r} is not a CIDR such as 10.0.0.0/8: check "
                                        f"--vsphere-ip-network") from None

    @property
    def wanted(self) -> str:
        """``IPv4``, ``IPv6 in 2001:db8::/32``, ... (for messages)."""
        kind = {"ipv4": "IPv4", "ipv6": "IPv6", "any": "IP"}[self.family]
        return f"{kind} in {self.network}" if self.network else kind

    def rejection(self, address: Address | str) -> str | None:
        """Why ``address`` is not usable, or None if it is."""
        entry = address if isinstance(address, Address) else Address(address)
        if entry.note:
            return entry.note
        try:
            ip = ipaddress.ip_address(entry.address.split("%", 1)[0])
        except ValueError:
            return "not an IP address"
        if ip.is_loopback:
            return "loopback"
        if ip in _LINK_LOCAL_V4 or ip in _LINK_LOCAL_V6:
            return "link-local"
        if ip.is_unspecified or ip.is_multicast:
            return "not a host address"
        if self.family == "ipv4" and ip.version != 4:
            return "not IPv4"
        if self.family == "ipv6" and ip.version != 6:
            return "not IPv6"
        if self.network is not None and ip not in ipaddress.ip_network(self.network, strict=False):
            return f"outside {self.network}"
        return None

    def usable(self, addresses: Iterable[Address]) -> list[Address]:
        """The usable addresses in reported order, but container/VM bridges last and (for ``any``) IPv4 first."""
        good = [a for a in addresses if self.rejection(a) is None]
        return sorted(good, key=lambda a: (bool(_BRIDGE_INTERFACE.match(a.interface)), ":" in a.address))

    def describe(self, addresses: Iterable[Address]) -> list[str]:
        """``eth0 169.254.3.4 (link-local)`` for each address, for error messages."""
        return [f"{a} ({self.rejection(a) or 'usable'})" for a in addresses]


# --- parsing ----------------------------------------------------------------------------------------


def parse_ip_o(text: str) -> list[Address]:
    """Addresses from ``ip -o address show`` output (``2: eth0    inet 10.0.0.5/24 ... scope global ...``)."""
    found = []
    for line in text.splitlines():
        match = _IP_O_LINE.match(line.strip())
        if match is None:
            continue
        rest = match.group("rest")
        note = "tentative" if "tentative" in rest else "duplicate (DAD failed)" if "dadfailed" in rest else ""
        found.append(Address(match.group("addr"), match.group("iface"), note))
    return found


def parse_ipconfig(text: str) -> list[Address]:
    """Addresses from Windows ``ipconfig`` output, with adapter names (``Ethernet0``)."""
    found = []
    adapter = ""
    for line in text.splitlines():
        head = _IPCONFIG_ADAPTER.match(line)
        if head is not None:
            adapter = head.group("name")
            continue
        match = _IPCONFIG_ADDRESS.match(line)
        if match is not None:
            found.append(Address(match.group("addr").split("%", 1)[0], adapter))
    return found


def ipconfig_adapters(text: str) -> list[str]:
    """Adapter names in ``ipconfig`` output, in order."""
    return [m.group("name") for m in (_IPCONFIG_ADAPTER.match(line) for line in text.splitlines()) if m]


def parse_any(text: str) -> list[Address]:
    """Every IP address in free text (custom discovery commands); netmask-like values are skipped."""
    found: list[Address] = []
    for token in _TOKEN.findall(text):
        candidate = token.split("/", 1)[0].split("%", 1)[0].strip(".:")
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if ip.version == 4 and candidate.startswith("255."):
            continue  # a netmask, not an address
        if all(a.address != candidate for a in found):
            found.append(Address(candidate))
    return found


def parse_addresses(text: str) -> list[Address]:
    """Addresses from ``ip -o``, ``ipconfig`` or free-form output, whichever it is."""
    if any(_IP_O_LINE.match(line.strip()) for line in text.splitlines()):
        return parse_ip_o(text)
    if "IP Configuration" in text or ipconfig_adapters(text):
        return parse_ipconfig(text)
    return parse_any(text)


# --- strategies -------------------------------------------------------------------------------------


@dataclass
class DiscoveryResult:
    """The chosen address, every usable one, how it was found and how many tries it took.

    ``output`` is the discovery command's stdout (active discovery), so a custom command
    can bring back more than addresses (e.g. SSH host keys) in the same guest round trip.
    """

    ip: str
    addresses: list[str]
    method: str
    attempts: int = 1
    seen: list[str] = field(default_factory=list)
    output: str = ""


class ToolsDiscovery:
    """Waits for VMware Tools to report a usable address in ``guest.net`` / ``guest.ipAddress``.

    Tools report on their own poll interval (30 s on real guests); prefer active discovery.
    """

    method = "tools"

    def __init__(self, conn: VSphereConnection, vm: Any, waiter: Waiter,
                 address_filter: AddressFilter | None = None, vm_name: str | None = None) -> None:
        self.conn = conn
        self.vm = vm
        self.waiter = waiter
        self.filter = address_filter or AddressFilter()
        self.vm_name = vm_name or str(getattr(vm, "_moId", vm))

    def discover(self, timeout: float, seen: Sequence[str] = (), *, deadline: float | None = None) -> DiscoveryResult:
        """The first usable address Tools report within ``timeout``; NoUsableAddress otherwise.

        ``deadline`` (monotonic) ends the wait earlier when ``timeout`` began before this call.
        """
        observed: list[Address] = []
        wait = timeout if deadline is None else max(0.0, deadline - time.monotonic())

        def ready(values: dict[str, Any]) -> bool:
            observed[:] = tools_addresses(values.get("guest.net"), values.get("guest.ipAddress"))
            return bool(self.filter.usable(observed))

        try:
            self.waiter.wait_for_properties(self.vm, ["guest.net", "guest.ipAddress"], ready, wait,
                                            f"VMware Tools' IP report of {self.vm_name}")
        except WaitTimeout:
            raise NoUsableAddress(self.vm_name, timeout, self.filter.wanted,
                                  [*seen, *(f"tools: {s}" for s in self.filter.describe(observed))]) from None
        usable = self.filter.usable(observed)
        return DiscoveryResult(usable[0].address, [a.address for a in usable], self.method, 1,
                               self.filter.describe(observed))


def tools_addresses(net: Any, ip_address: Any) -> list[Address]:
    """Addresses from GuestInfo ``net`` (per NIC) and ``ipAddress`` (the primary one)."""
    found: list[Address] = []
    for nic in net or ():
        label = str(nic.network or nic.macAddress or "")
        entries = [(a.ipAddress, a.state) for a in (nic.ipConfig.ipAddress or ())] if nic.ipConfig else \
            [(a, None) for a in nic.ipAddress or ()]
        for address, state in entries:
            note = f"state {state}" if state not in (None, "preferred", "deprecated", "unknown") else ""
            if all(f.address != address for f in found):
                found.append(Address(str(address), label, note))
    if ip_address and all(f.address != ip_address for f in found):
        found.append(Address(str(ip_address)))
    return found


class ActiveDiscovery:
    """Runs the discovery command through Guest Operations until a usable address appears.

    On Linux the default command waits in the guest until an address appears (see
    :func:`linux_wait_command`), so the address is known about one poll after the guest has it;
    other commands are repeated at most ``max_interval`` apart. ``command`` overrides the per-OS
    default; ``also_run`` is appended to the Linux default (one round for both, e.g. reading host
    keys); ``prelude`` runs once before the first round's command, in the same round (e.g. an
    instant clone's NIC refresh), and ``check_prelude`` judges it from that round's result;
    ``fallback`` (usually a ToolsDiscovery) takes over for the remaining time when Guest
    Operations fail (but not on wrong guest credentials, which no fallback can fix).
    """

    method = "active"

    def __init__(self, guest: GuestOperations, address_filter: AddressFilter | None = None, *,
                 command: str | None = None, fallback: ToolsDiscovery | None = None, interval: float = 0.1,
                 max_interval: float = 0.25, also_run: str | None = None, prelude: str | None = None,
                 check_prelude: Callable[[CommandResult], object] | None = None,
                 pace: WaitingPace | None = None, pace_kind: str = "") -> None:
        self.guest = guest
        self.filter = address_filter or AddressFilter()
        self.command = command
        self.also_run = also_run
        self.prelude = prelude
        self.check_prelude = check_prelude
        self.fallback = fallback
        self.interval = interval
        self.max_interval = max_interval
        self.pace = pace
        self.pace_kind = pace_kind

    def command_for(self, os_family: str, wait: float = GUEST_WAIT_SECONDS) -> str:
        """The command of one round; the defaults wait in the guest up to ``wait`` seconds."""
        if self.command:
            return self.command
        if os_family == "windows":
            return windows_wait_command(self.filter.family, wait)
        waiting = linux_wait_command(self.filter.family, wait)
        return f"{waiting}; {self.also_run}" if self.also_run else waiting

    def _label(self) -> str:
        """The command as errors name it: the default's waiting loop and extras are noise there."""
        return self.command or DEFAULT_COMMANDS.get(self.guest.os_family, DEFAULT_COMMANDS["linux"])

    def _poll_max(self) -> float | None:
        """The beat of looks for a round that waits in the guest: the default commands, and any
        round with a prelude (a NIC refresh), end when the address appears; others are looked at
        as any command is."""
        waits = self.prelude is not None or not self.command
        return WAITING_BEAT if waits else None

    def discover(self, timeout: float, *, deadline: float | None = None) -> DiscoveryResult:
        """A usable address within ``timeout``; NoUsableAddress with everything seen otherwise.

        ``deadline`` (monotonic) ends the wait earlier when ``timeout`` began before this call.
        """
        deadline = time.monotonic() + timeout if deadline is None else deadline
        seen: list[str] = []
        attempts = 0
        pause = self.interval
        command = ""
        if self.guest.conn.content.guestOperationsManager is None:
            seen.append("this vCenter offers no Guest Operations")
            if self.fallback is not None:
                return self._fall_back(deadline, timeout, seen, attempts)
            raise NoUsableAddress(self.guest.vm_name, timeout, self.filter.wanted, seen)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoUsableAddress(self.guest.vm_name, timeout, self.filter.wanted, seen[-12:])
            attempts += 1
            try:
                # The guest's wait ends well before the round's own deadline, so that the last
                # round still reports what the guest had.
                windows = self.guest.os_family == "windows"
                longest = WINDOWS_GUEST_WAIT_SECONDS if windows else GUEST_WAIT_SECONDS
                command = self.command_for(self.guest.os_family, min(longest, remaining / 2))
                prelude = self.prelude
                if prelude and windows and not self.command:
                    # "ipconfig /renew" has waited for the address already: PowerShell's start-up
                    # would only delay the answer.
                    command = DEFAULT_COMMANDS["windows"]
                # The result file is left for the guest's next command to delete: no request of its own.
                ops = self.guest.limited(remaining)
                # Windows: one output file that appears at the end (run_merged) makes a round two
                # guest operations instead of four; the address is all discovery needs.
                run = ops.run_merged if windows else ops.run
                # Only the default Linux command says how long it waited; only a clone's first round
                # waits for a boot's DHCP.
                paced = self.pace is not None and not windows and not self.command and attempts == 1
                first_look = self.pace.first_look(self.pace_kind) if paced and self.pace is not None else 0.0
                full = f"{prelude}{' & ' if windows else chr(10)}{command}" if prelude else command
                result = run(full, timeout=max(remaining, 1.0), poll_max=self._poll_max(), clean_up_later=True,
                             first_look=first_look)
                if prelude:  # it ran: later rounds are discovery alone
                    self.prelude = None
                    outcome = self.check_prelude(result) if self.check_prelude is not None else None
                    if getattr(outcome, "redone", False):
                        continue  # the refresh ran again after this round: its addresses are stale
            except GuestLoginFailed:
                raise
            except Exception as exc:
                if not _guest_op_failure(exc):
                    raise
                seen.append(f"guest operations failed: {faults.describe(exc)}")
                # A round that carried the NIC refresh (an instant clone's) and failed before it could
                # have run gives no reason to trust the Tools' report: it would name the source's
                # address until the refresh runs. Only a transfer that cannot reach the host (the
                # refresh ran; its output cannot be fetched) falls back with the refresh pending.
                refresh_pending = self.prelude is not None and not isinstance(exc, EsxiHostUnreachable)
                if self.fallback is not None and not refresh_pending and \
                        not isinstance(exc, GuestOperationsUnsupported | EsxiHostUnreachable) and attempts < 2:
                    # A passing hiccup on the first round: one more round before giving up on it.
                    time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                    continue
                if self.fallback is not None and not refresh_pending:
                    # A host the runner cannot reach stays so for every clone on it: say why discovery
                    # got slower, where a passing hiccup is only worth an info line.
                    level = logging.WARNING if isinstance(exc, EsxiHostUnreachable) else logging.INFO
                    log.log(level, "active discovery in %s failed (%s); waiting for VMware Tools' report instead",
                            self.guest.vm_name, exc if isinstance(exc, EsxiHostUnreachable) else faults.describe(exc))
                    return self._fall_back(deadline, timeout, seen, attempts)
                if isinstance(exc, GuestOperationsUnsupported):
                    raise NoUsableAddress(self.guest.vm_name, timeout, self.filter.wanted, seen) from None
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                pause = min(pause * 1.5, self.max_interval)
                continue
            addresses = parse_addresses(result.stdout)
            usable = self.filter.usable(addresses)
            waited = guest_wait_seconds(result.stderr) if paced else None
            if usable and waited is not None and self.pace is not None:
                self.pace.record(self.pace_kind, waited)
            if usable:
                return DiscoveryResult(usable[0].address, [a.address for a in usable], self.method, attempts,
                                       self.filter.describe(addresses), result.stdout)
            note = self.filter.describe(addresses) or ["no address"]
            detail = f" exit {result.exit_status}: {result.stderr.strip()[:200]}" if result.exit_status else ""
            entry = f"`{self._label()}`: {', '.join(note)}{detail}"
            if not seen or seen[-1] != entry:
                seen.append(entry)
            if result.exit_status in _NOT_FOUND_STATUSES or _NOT_RECOGNIZED in result.stderr:
                if self.fallback is not None:
                    return self._fall_back(deadline, timeout, seen, attempts)
                raise NoUsableAddress(self.guest.vm_name, timeout, self.filter.wanted, seen)
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 1.5, self.max_interval)

    def _fall_back(self, deadline: float, timeout: float, seen: list[str], attempts: int) -> DiscoveryResult:
        assert self.fallback is not None
        try:
            result = self.fallback.discover(max(0.0, deadline - time.monotonic()), seen)
        except NoUsableAddress as exc:
            raise NoUsableAddress(self.guest.vm_name, timeout, self.filter.wanted, exc.seen) from None
        result.attempts += attempts
        return result


def _guest_op_failure(exc: BaseException) -> bool:
    """A failure of the Guest Operations machinery (Tools not ready, transfer failed, retries out), or a
    guest program whose start was lost with its connection: discovery only reads, so another round is
    harmless (its result file, if any, is deleted by the guest's next command)."""
    return isinstance(exc, GuestOperationFailed | RetriesExhausted | WaitTimeout | OutcomeUnknown) \
        or faults.is_vsphere_fault(exc) or faults.is_transient(exc)
