"""Make one ready clone: clone task, power on, NIC refresh, IP discovery, SSH/WinRM check.

If any step after the clone task fails, the half-made clone is destroyed
before the error is raised: a failed set-up never leaves a VM behind.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..client.discovery import Address, AddressFilter
from ..client.errors import VSphereCloneError
from .clone import PHASES, Clone
from .options import OPTIONS
from .privilege_checks import PrivilegeChecks
from .shared_address import check_unique_address

if TYPE_CHECKING:
    from ..client.hardware import ResolvedHardware
    from ..client.inventory import TemplateInfo
    from .connection_holder import ConnectionHolder
    from .janitor import Janitor
    from .ledger import Ledger
    from .reporter import Reporter
    from .settings import Settings
    from .templates import TemplateCatalog

log = logging.getLogger(__name__)

#: Reads the guest's SSH host keys in the same guest call that finds its address (one round of
#: Guest Operations instead of two); key lines carry no addresses, so discovery ignores them.
HOST_KEYS_COMMAND = "cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null"
_KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-")


class ProvisionError(VSphereCloneError):
    """Setting up a clone failed; the message names the step and the fix."""


@dataclass(frozen=True)
class NotTheSourceFilter(AddressFilter):
    """The usual address filter, also rejecting what Tools reported before an instant clone's NIC refresh."""

    stale: frozenset[str] = frozenset()

    def rejection(self, address: Address | str) -> str | None:
        text = address.address if isinstance(address, Address) else address
        if text in self.stale:
            # Still there after the refresh, it is the lease of the source's DHCP client identity (see
            # shared_address.py): an instant clone shares its source's /etc/machine-id with its memory.
            return ("the source's address, which the clone keeps until its NIC refresh gets a lease of its own; "
                    "kept after the refresh, the clone asks DHCP with its source's client identity (systemd-networkd "
                    "derives it from /etc/machine-id, which an instant clone shares: set ClientIdentifier=mac in the "
                    "source's [DHCPv4] section)")
        return super().rejection(address)


class Provisioner:
    """Creates clones for one process of the run.

    Its dependencies are passed in: the process's connection holder, the run's ledger (written before
    each clone task starts), the reporter, the janitor (which destroys a half-made clone), the template
    catalog, pytest's hook caller, the run's identity, and ``for_os``, which gives a clone's settings
    for its guest family (the bundled simulator's Windows guests have an account of their own).
    """

    def __init__(self, holder: ConnectionHolder, ledger: Ledger, reporter: Reporter, janitor: Janitor,
                 templates: TemplateCatalog, hook: Any, *, run_id: str, worker_id: str,
                 for_os: Callable[[Settings, str], Settings] = lambda settings, _os: settings) -> None:
        self.holder = holder
        self.ledger = ledger
        self.reporter = reporter
        self.janitor = janitor
        self.templates = templates
        self.hook = hook
        self.run_id = run_id
        self.worker_id = worker_id
        self.for_os = for_os
        self.privilege_checks = PrivilegeChecks(holder, templates, reporter)
        self._privileges_checked: set[str] = set()
        #: Each instant-clone source's devices, read once (the NICs an instant clone may only move).
        self._source_devices: dict[str, list[Any]] = {}
        self._counter = 0

    def check_source(self, name: str, settings: Settings) -> None:
        """Raise now what every clone of ``name`` with ``settings`` would fail with.

        A powered-off instant-clone source, a linked-clone template without the snapshot or a
        user who may not clone it is one usage error at the start, not the same error in every
        test. The clone privilege is checked on the source and the hardware settings' privileges where
        the clones are made (privilege_checks.py); the others may be granted on folders, pools or
        datastores the clone only reaches later. Lacking the console screenshots' privileges is a warning.
        """
        from ..client.clone import LinkedClone
        from ..client.clone_request import require_vcenter
        from ..client.clone_types import clone_type
        from ..client.errors import InvalidInstantSource

        require_vcenter(self.holder.connection(), settings.clone_type)  # a direct ESXi connection cannot clone
        template = self.templates.template(name)
        kind = clone_type(settings.clone_type)
        if kind.needs_running_source and template.power_state != "poweredOn":
            raise InvalidInstantSource(template.name, template.power_state, template.is_template)
        if kind.uses_snapshot(settings.snapshot):
            LinkedClone().snapshot(template, settings.snapshot)
        self.check_host_key_policy(name, settings)
        if name not in self._privileges_checked:
            self.privilege_checks.source(name, settings)  # with the screenshots' (a warning), one call
            self._check_tools_installed(template)
            self._privileges_checked.add(name)
        self.check_hardware(name, settings)  # the settings' privileges too: after the clone privilege

    def _check_tools_installed(self, template: TemplateInfo) -> None:
        """Refuse a source without VMware Tools: both discoveries need them (active runs its command
        through Guest Operations, tools waits for their report), so every clone would wait out the
        IP timeout.

        ``GuestInfo.toolsVersionStatus2`` (vSphere API 5.0): "guestToolsNotInstalled: VMware Tools
        has never been installed". It is the VM's configuration, known while it is powered off.
        """
        from ..client import props

        status = props.read(self.holder.connection(), template.ref, ["guest.toolsVersionStatus2"]) \
            .get("guest.toolsVersionStatus2")
        if status == "guestToolsNotInstalled":
            raise ProvisionError(
                f"template {template.name!r} has no VMware Tools (guest.toolsVersionStatus2 is "
                f"guestToolsNotInstalled), and finding a clone's address needs them (--vsphere-discovery=active runs "
                f"its command through them, tools waits for their report): install open-vm-tools (Linux) or VMware "
                f"Tools (Windows) in {template.name}, then take a new snapshot for linked clones")

    def hardware(self, name: str, settings: Settings) -> ResolvedHardware | None:
        """``settings``' hardware for clones of ``name``, port groups found (None: the source's own).

        Raises HardwareError naming the fix: a port group that does not exist (listing those that
        do), or NICs an instant clone cannot add.
        """
        from ..client.hardware import HardwareRequest, resolve_hardware

        request = HardwareRequest(cpus=settings.cpus, memory_mb=settings.memory_mb, networks=settings.networks,
                                  disks_gb=settings.disks, extra_config=settings.extra_config)
        if request.empty:
            return None
        return resolve_hardware(self.templates.inventory(), self.templates.template(name), request)

    def check_hardware(self, name: str, settings: Settings) -> ResolvedHardware | None:
        """``settings``' hardware for clones of ``name`` (see :meth:`hardware`); raises now what the clones
        would fail with because of it: what the clone type cannot take, privileges the user lacks."""
        from ..client.clone_types import clone_type
        from ..client.hardware import HardwareError, instant_problem, source_devices

        resolved = self.hardware(name, settings)
        if resolved is None:
            return resolved
        template = self.templates.template(name)
        if not clone_type(settings.clone_type).configurable_hardware:
            devices: list[Any] = []
            if resolved.request.networks:
                if name not in self._source_devices:
                    self._source_devices[name] = source_devices(self.holder.connection(), template.ref)
                devices = self._source_devices[name]
            problem = instant_problem(resolved, devices, name)
            if problem:
                raise HardwareError(problem)
        self.privilege_checks.hardware(name, settings, resolved)
        return resolved

    def check_host_key_policy(self, name: str, settings: Settings) -> None:
        """Raise now when the SSH host-key policy cannot work for clones of ``name`` (Linux guests only)."""
        from ..connection.ssh import OTHER_POLICIES, known_hosts_path, read_known_hosts

        template = self.templates.template(name)
        if (settings.os if settings.os != "auto" else template.os_family) != "linux":
            return  # no SSH: Windows clones are reached over WinRM
        policy = settings.ssh_host_key_policy
        if policy == "guest":
            why = None
            if not settings.guest_user:
                why = "no --vsphere-guest-user is set"
            elif not settings.guest_password:
                why = (f"guest user {settings.guest_user!r} has no --vsphere-guest-password, and Guest Operations "
                       f"log in with one")
            elif self.holder.connection().content.guestOperationsManager is None:
                # ServiceContent.guestOperationsManager is optional: unset where the server offers none.
                why = "this vCenter offers no Guest Operations (its guestOperationsManager is unset)"
            if why:
                raise ProvisionError(
                    f"--vsphere-ssh-host-key-policy=guest reads the SSH host keys of each clone of {name} through "
                    f"Guest Operations, which cannot work here ({why}): pass {OTHER_POLICIES}")
        elif policy == "known-hosts":
            path = known_hosts_path(settings.known_hosts)
            try:
                known = read_known_hosts(settings.known_hosts)
            except OSError as exc:
                raise ProvisionError(f"--vsphere-ssh-host-key-policy=known-hosts: cannot read {path} "
                                     f"({exc.strerror or exc}): point --vsphere-known-hosts at the OpenSSH "
                                     f"known_hosts file holding {name}'s host keys") from None
            if not known.trusted:
                raise ProvisionError(f"--vsphere-ssh-host-key-policy=known-hosts: {path} lists no host key: add "
                                     f"{name}'s host keys to it (e.g. `ssh-keyscan` of a clone you trust)")

    def next_name(self, settings: Settings) -> str:
        self._counter += 1
        return f"{settings.name_prefix}-{self.run_id}-{self.worker_id}-{self._counter}"

    def create(self, settings: Settings, template_name: str, scope: str, request: Any = None) -> Clone:
        """A ready clone of ``template_name``; raises VSphereCloneError with a one-line reason.

        A clone started but not made ready has that reason in the ledger (the run report's failed clone).
        """
        attempt = _Attempt()
        try:
            with _one_line_faults(template_name):
                return self._create(settings, template_name, scope, request, attempt)
        except Exception as exc:
            if attempt.name:
                self.ledger.failed(attempt.name, str(exc), attempt.phase(),
                                   secrets=[getattr(settings, o.attr) for o in OPTIONS if o.secret])
            raise

    def _create(self, settings: Settings, template_name: str, scope: str, request: Any, attempt: _Attempt) -> Clone:
        from ..client.clone import clone_vm
        from ..client.clone_request import CloneRequest
        from ..client.inventory import PlacementSettings
        from ..client.marker import Marker

        conn = self.holder.connection()
        template = self.templates.template(template_name)
        # A factory's or named fixture's own policy: refused before a clone exists, as at the start.
        self.check_host_key_policy(template_name, settings)
        # A factory's or named fixture's hardware: refused before the ledger records anything.
        hardware = self.check_hardware(template_name, settings)
        placement = self.templates.inventory().resolve_placement(template, PlacementSettings(
            **{o.attr: getattr(settings, o.attr) for o in OPTIONS if o.group == "placement"}))
        name = self.next_name(settings)
        marker = Marker.new(self.run_id, self.worker_id, settings.ttl, template.name)

        def customize(spec: Any) -> None:
            self.hook.pytest_vsphere_clone_spec(request=request, template=template_name, spec=spec)

        self.ledger.creating(name, self.worker_id, template_name, scope, settings.clone_type,
                                 settings.collapse)
        attempt.name = name
        self.reporter.progress(f"{name}: cloning {template_name} ({settings.clone_type})")
        # If this fails, whether the task made the VM is not always known (its wait may have failed):
        # the ledger entry stays "creating" with the clone task's key, and the end of the run polls that
        # task to its end, then looks for the name, with our marker, to destroy it.

        def started(task: Any) -> None:
            self.ledger.task(name, str(task._moId))

        result = clone_vm(conn, CloneRequest(template=template, name=name, clone_type=settings.clone_type,
                                             snapshot=settings.snapshot, placement=placement, marker=marker,
                                             hardware=hardware,
                                             timeout=settings.clone_timeout, customize=customize, on_task=started,
                                             # One task instead of two: a task round trip saved per clone.
                                             power_on_in_clone_task=True),
                          waiter=self.holder.waiter())
        self.ledger.created(name, result.moref)
        for warning in result.warnings:
            self.reporter.warn(warning)
        os_family = settings.os if settings.os != "auto" else template.os_family
        settings = self.for_os(settings, os_family)
        clone = Clone(name=name, moref=result.moref, ip="", os=os_family, template=template_name,
                      clone_type=settings.clone_type, timings=dict(result.timings), marker=marker, _conn=conn,
                      _settings=settings)
        attempt.clone = clone
        try:
            # One filter on the clone for its whole life: its Tools, power-off and destroy waits share it.
            self.holder.waiter().watch(result.vm)
            self._ensure_running(clone, result.vm, settings)
            self._discover(clone, settings, result.vm, template.ref)
            # Never connect to an address two VMs answer.
            check_unique_address(self.ledger, self.holder.connection(), clone, template.ref,
                                 source_may_run=template.power_state == "poweredOn")
            self._connect(clone)
        except BaseException:
            self.janitor.destroy(clone, reason="set-up failed")
            raise
        self.ledger.ready(clone)
        self.reporter.progress(f"{name}: ready at {clone.ip} ({_timings(clone)})")
        self.hook.pytest_vsphere_clone_ready(clone=clone)
        return clone

    def _ensure_running(self, clone: Clone, vm: Any, settings: Settings) -> None:
        """Power the clone on if its clone task left it off.

        The plugin asks for power-on inside the clone task (CloneSpec.powerOn); a server that does
        not honour it would leave the clone off and the wait for its Tools would run out. The
        watch reports the power state with its first update, which the Tools wait needs anyway.
        """
        from ..client.clone_request import power_on

        waiter = self.holder.waiter()
        if waiter.watched_power_state(vm, settings.clone_timeout) != "poweredOff":
            return
        self.reporter.warn(f"{clone.name}: still powered off after its clone task (CloneSpec.powerOn not honoured); "
                      f"powered it on")
        started = time.monotonic()
        power_on(self.holder.connection(), waiter, vm, f"power-on of {clone.name}", settings.clone_timeout)
        clone.timings["power_on"] = time.monotonic() - started

    def _discover(self, clone: Clone, settings: Settings, vm: Any, source: Any) -> None:
        from ..client.clone_types import clone_type
        from ..client.discovery import ActiveDiscovery, ToolsDiscovery
        from ..client.nic_refresh import (
            check_linux_prelude,
            check_windows_prelude,
            linux_prelude,
            refresh_nics,
            windows_prelude,
        )

        conn = self.holder.connection()
        started = time.monotonic()
        kind = clone_type(settings.clone_type)
        address_filter = AddressFilter(settings.ip_family, settings.ip_network)
        if kind.resumes_running:
            # An instant clone resumes with its source's network state, so VMware Tools first report
            # the source's address; taking it would send SSH/WinRM to the source and hang until
            # connect-timeout. Addresses reported before the NIC refresh are never the clone's own.
            address_filter = NotTheSourceFilter(settings.ip_family, settings.ip_network,
                                                 stale=_tools_reported(conn, [vm, source]))
        tools = ToolsDiscovery(conn, vm, self.holder.waiter(), address_filter, vm_name=clone.name)
        guest = clone.guest_operations() if settings.guest_user else None
        if guest is not None and not kind.resumes_running:
            # Guest Operations answer GuestOperationsUnavailable until the Tools run: waiting for them
            # through the property collector costs two requests however long the boot, where retrying
            # guest calls would cost more the longer it is. (A clone that resumes its source's running
            # guest has them running already.)
            self.holder.waiter().wait_for_property(vm, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning",
                                                settings.ip_timeout, f"VMware Tools in {clone.name} to run")

        # The Tools wait, the NIC refresh and discovery share one ip-timeout.
        deadline = started + settings.ip_timeout

        def remaining() -> float:
            return max(1.0, deadline - time.monotonic())

        # An instant clone's default refresh rides in discovery's first round: one Guest Operations
        # round trip instead of two (on Windows a plain "ipconfig /renew", with the full refresh as
        # its fallback).
        prelude: str | None = None
        check: Any = None
        defaults = settings.discovery == "active" and not settings.network_refresh_command \
            and not settings.discovery_command
        if kind.needs_nic_refresh and guest is not None:
            self.reporter.progress(f"{clone.name}: refreshing the guest NIC")
            if defaults and clone.os == "linux":
                prelude, check = linux_prelude(), functools.partial(check_linux_prelude, guest)
            elif defaults and clone.os == "windows":
                prelude = windows_prelude()
                check = functools.partial(check_windows_prelude, guest, timeout=settings.ip_timeout)
            else:
                refresh_nics(guest, settings.network_refresh_command, timeout=remaining())
        output = ""
        # Only the guest policy reads the host keys; the others need no Guest Operations for SSH.
        read_keys = clone.os == "linux" and guest is not None and settings.ssh_host_key_policy == "guest"
        if settings.discovery == "active" and guest is not None:
            discovery = ActiveDiscovery(guest, address_filter, command=settings.discovery_command, fallback=tools,
                                        also_run=HOST_KEYS_COMMAND if read_keys else None,
                                        prelude=prelude, check_prelude=check, pace=self.holder.discovery_pace(),
                                        pace_kind=f"{clone.template}/{kind.name}")
            found = discovery.discover(settings.ip_timeout, deadline=deadline)
            output = found.output
        else:
            found = tools.discover(settings.ip_timeout, deadline=deadline)
        clone.ip = found.ip
        clone.timings["ip"] = time.monotonic() - started
        if read_keys and guest is not None:
            if not any(line.startswith(_KEY_PREFIXES) for line in output.splitlines()):
                output = guest.run(HOST_KEYS_COMMAND, timeout=settings.connect_timeout).stdout
            clone.host_keys = tuple(line.strip() for line in output.splitlines() if line.startswith(_KEY_PREFIXES))

    def _connect(self, clone: Clone) -> None:
        from ..connection.ssh import SshConnectError, server_key
        from ..connection.winrm_session import WinRMConnectError

        started = time.monotonic()
        try:
            if clone.os == "windows":
                clone.winrm()
            else:
                client = clone.ssh()
                if not clone.host_keys:
                    # known-hosts or accept-new: the key the policy let through is pinned for every later
                    # connection (reconnects, other workers of a shared clone, testinfra).
                    clone.host_keys = (server_key(client),)
        except (SshConnectError, WinRMConnectError) as exc:
            raise ProvisionError(f"{clone.name} ({clone.ip}): {exc}") from None
        clone.timings["connect"] = time.monotonic() - started


@dataclass
class _Attempt:
    """The clone :meth:`Provisioner.create` is making, once the ledger records it."""

    name: str = ""
    clone: Clone | None = None

    def phase(self) -> str:
        """The phase it failed in: the first one it has no time for."""
        done = self.clone.timings if self.clone is not None else {}
        return next((p for p in PHASES if p not in done), PHASES[-1])


@contextlib.contextmanager
def _one_line_faults(template: str) -> Iterator[None]:
    """Turn a vSphere fault no step translated into a one-line ProvisionError.

    The steps destroy what they made before re-raising, so only the message changes: a raw
    pyVmomi fault would otherwise reach the test report as a multi-line traceback.
    """
    from pyVmomi import vmodl

    from ..client import faults

    try:
        yield
    except vmodl.MethodFault as fault:
        raise ProvisionError(f"setting up a clone of {template}: {faults.describe(fault)}") from None


def _timings(clone: Clone) -> str:
    return ", ".join(f"{phase} {seconds:.2f}s" for phase, seconds in clone.timings.items())


def _tools_reported(conn: Any, vms: list[Any]) -> frozenset[str]:
    """Every address VMware Tools currently report for ``vms`` (one property read)."""
    from ..client import props
    from ..client.discovery import tools_addresses

    found = props.retrieve(conn, vms, ["guest.net", "guest.ipAddress"])
    return frozenset(a.address for values in found.values()
                     for a in tools_addresses(values.get("guest.net"), values.get("guest.ipAddress")))
