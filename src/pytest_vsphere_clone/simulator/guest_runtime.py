"""Real guests behind simulated VMs: power, disks and Guest Operations.

The VirtualMachine objects call in here (power on/off, clone, instant clone,
NIC connection, destroy); Guest Operations calls land here too. Each VM's
"disk" is a directory, copied for clones, so clones share their template's
SSH host keys as real clones do. VMware Tools' reports are ``tools_reports``'s,
guest errors become vSphere faults in ``guest_faults``.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .file_transfers import FileTransfers
from .guest_faults import faults_of
from .guests import copy_disk
from .guests import errors as guest_errors
from .guests.accounts import WINDOWS_LOCAL_ADMIN
from .guests.disk import GuestDisk
from .guests.guest_host import GuestHost
from .guests.models import GuestSpec
from .objects.guest_operations import GuestFileManager, GuestOperationsManager, GuestProcessManager
from .objects.virtual_machine import VirtualMachine
from .tools_reports import ToolsReports

if TYPE_CHECKING:
    from collections.abc import Callable

    from .guests.guest import Guest
    from .guests.models import GuestProcessInfo
    from .vcenter import VCenter

log = logging.getLogger(__name__)

#: Root, as in most test templates: NIC refreshes (dhclient, ip link) need it.
LINUX_USER = "root"
WINDOWS_USER = "Administrator"
FREEZE_COMMAND = "instantclone.freeze"


class GuestRuntime:
    """Runs one guest per powered-on VM and models VMware Tools for each."""

    def __init__(self, vc: VCenter, state_dir: Path, password: str | None = None,
                 transfer_endpoint: Callable[[Any], tuple[str, int] | None] | None = None) -> None:
        self.vc = vc
        self.state_dir = state_dir
        #: (address, port) of a host's /guestFile service (see host_transfers); None: ESXi's "*".
        self.transfer_endpoint = transfer_endpoint
        self.password = password or secrets.token_urlsafe(12)
        self.host = GuestHost(state_dir / "host", secrets.token_hex(3), backdoor=self._backdoor)
        self.file_transfers = FileTransfers(self)
        self.key_file = state_dir / "guest_id_ed25519"
        self.public_key = ""
        self.tools_reports = ToolsReports(vc, self.host)
        self._boots: dict[str, threading.Thread] = {}
        self._boots_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the guest network, add Guest Operations to the vCenter, boot the initially running VMs."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._make_key()
        self.host.start()
        vc = self.vc
        with vc.lock:
            managers = [GuestOperationsManager(vc, "guestOperationsManager"),
                        GuestProcessManager(vc, "guestOperationsProcessManager"),
                        GuestFileManager(vc, "guestOperationsFileManager")]
            for manager in managers:
                vc.add(manager)
            vc.service_instance.content_value.guestOperationsManager = managers[0].ref
            vms = vc.of_type(VirtualMachine)
        for vm in vms:
            self.disk_dir(vm).mkdir(parents=True, exist_ok=True)
            GuestDisk(self.disk_dir(vm)).seed_os_image(vm.initial_machine_id, vm.networkd)  # the inventory's image
            if vm.initial_power == "poweredOn":
                with vc.lock:
                    vm.power_state = "poweredOn"
                    vm.boot_time = time.time()
                self._boot(vm, wait_for_tools=True)
                if vm.initial_frozen:
                    self.freeze(vm)
        self.tools_reports.start()

    def stop(self) -> None:
        """Stop every guest and remove everything of theirs."""
        self.tools_reports.stop()
        with self._boots_lock:
            boots = list(self._boots.values())
            self._boots.clear()
        for thread in boots:
            thread.join(timeout=60)
        self.host.stop()
        self.file_transfers.clear()

    def _make_key(self) -> None:
        """An SSH key pair whose public half every Linux guest authorizes (GUEST_KEY)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        private = ed25519.Ed25519PrivateKey.generate()
        self.key_file.touch(mode=0o600)
        self.key_file.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                        serialization.NoEncryption()))
        public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        self.public_key = public.decode() + " pytest-vsphere-clone-simulator"

    def connection_facts(self) -> dict[str, str]:
        """Guest credentials the simulator prints and the plugin uses."""
        return {"GUEST_USER": LINUX_USER, "GUEST_PASSWORD": self.password, "GUEST_KEY": str(self.key_file),
                "WINDOWS_GUEST_USER": WINDOWS_USER, "WINDOWS_GUEST_PASSWORD": self.password,
                # A second member of Administrators: Guest Operations give it a filtered token (accounts.py).
                "WINDOWS_LOCAL_ADMIN_USER": WINDOWS_LOCAL_ADMIN}

    # --- disks -------------------------------------------------------------------------

    def disk_dir(self, vm: VirtualMachine) -> Path:
        return self.state_dir / "disks" / vm.mo_id

    def clone_disk(self, source: VirtualMachine, clone: VirtualMachine) -> None:
        """A clone starts from a copy of its source's disk (host keys, homes, files)."""
        source_dir = self.disk_dir(source)
        target = self.disk_dir(clone)
        if source_dir.exists():
            # Not shutil.copytree: the disk holds overlay whiteouts (deleted host files) and owners.
            copy_disk(source_dir, target)
        else:
            target.mkdir(parents=True, exist_ok=True)

    def destroy(self, vm: VirtualMachine) -> None:
        self._settle_boot(vm)
        self.file_transfers.invalidate_vm(vm.mo_id)
        self.host.remove_guest(vm.mo_id)
        shutil.rmtree(self.disk_dir(vm), ignore_errors=True)

    # --- power -------------------------------------------------------------------------

    def _spec(self, vm: VirtualMachine, network_delay: float = 0.0, network_at: float | None = None) -> GuestSpec:
        windows = vm.family == "windows"
        return GuestSpec(vm_id=vm.mo_id, hostname=_hostname(vm.name), mac=vm.nics[0].mac,
                         family="windows" if windows else "linux", disk_dir=self.disk_dir(vm),
                         user=WINDOWS_USER if windows else LINUX_USER, password=self.password,
                         authorized_keys=[] if windows or not self.public_key else [self.public_key],
                         network_delay=network_delay, network_at=network_at,
                         powershell_start=self.vc.profile.range("powershell.start") if windows else (0.0, 0.0))

    def power_on(self, vm: VirtualMachine) -> None:
        """Start booting the VM's guest and return: as on vSphere, PowerOnVM_Task does not wait for
        the guest OS. Tools come up after the profile's boot time."""
        started = time.time()

        def boot() -> None:
            try:
                self._boot(vm, wait_for_tools=False, started=started)
            except Exception:  # the VM stays on without a guest, as a VM whose OS fails to boot
                log.exception("guest of %s failed to boot", vm.name)

        thread = threading.Thread(target=boot, name=f"sim-boot-{vm.mo_id}", daemon=True)
        with self._boots_lock:
            self._boots[vm.mo_id] = thread
        thread.start()

    def _settle_boot(self, vm: VirtualMachine) -> None:
        """Wait for a boot in progress (power off, destroy and NIC changes act on the booted guest)."""
        with self._boots_lock:
            thread = self._boots.pop(vm.mo_id, None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)

    def _boot(self, vm: VirtualMachine, wait_for_tools: bool, started: float | None = None) -> None:
        # The guest OS boots (Tools start after boot_time), then brings its network up: the Tools'
        # first report comes before the address, the next one a poll interval later, as on vSphere.
        boot_time = 0.0 if wait_for_tools else self.vc.profile.duration(f"boot.{vm.family}")
        network = 0.0 if wait_for_tools else self.vc.profile.duration(f"network.{vm.family}")
        vm.drawn.update(boot=boot_time, network=network)
        network_delay = boot_time + network
        # Counted from the power-on, like the Tools' start: the real time the simulator spends
        # setting the guest up is part of the boot, not added after it.
        network_at = None if wait_for_tools else (started or time.time()) + network_delay
        guest = self.host.create_guest(self._spec(vm, network_delay, network_at))
        guest.set_nic_connected(all(n.connected for n in vm.nics[:1]))
        guest.boot()
        self._present_hardware(vm, guest, mount=True)
        if wait_for_tools:
            guest.wait_for_ip(timeout=30.0)
            self.tools_reports.up(vm, time.time())
        else:
            self.tools_reports.schedule(vm, (started or time.time()) + boot_time)

    def power_off(self, vm: VirtualMachine) -> None:
        self._settle_boot(vm)
        self.tools_reports.cancel(vm)
        # A powered-off VM's transfer URLs are void, as on ESXi (whose service hands them to the VM's
        # VMX process, gone with the power-off).
        self.file_transfers.invalidate_vm(vm.mo_id)
        self.host.remove_guest(vm.mo_id)

    def nic_connected(self, vm: VirtualMachine, nic: Any, connected: bool) -> None:
        self._settle_boot(vm)
        guest = self.host.guest(vm.mo_id)
        if guest is not None and nic is vm.nics[0]:
            guest.set_nic_connected(connected)

    def hardware_changed(self, vm: VirtualMachine) -> None:
        """A reconfigured VM's guest sees its new CPUs, memory, disks and NICs."""
        self._settle_boot(vm)
        guest = self.host.guest(vm.mo_id)
        if guest is not None and guest.running and not guest.frozen:
            self._present_hardware(vm, guest, mount=False)

    def _present_hardware(self, vm: VirtualMachine, guest: Guest, *, mount: bool) -> None:
        """Show a Linux guest its VM's CPUs, memory, disks and extra NICs (guests/host/hardware_view.py)."""
        from .guests.host.hardware_view import HardwareView, present
        from .objects.devices import FIRST_DISK_KB

        if vm.family == "linux":
            with self.vc.lock:
                view = HardwareView(vm.num_cpu, vm.memory_mb, (FIRST_DISK_KB, *(d.capacity_kb for d in vm.extra_disks)),
                                    tuple(n.mac for n in vm.nics[1:]))
            present(guest, view, mount=mount)

    def instant_clone(self, source: VirtualMachine, clone: VirtualMachine) -> None:
        """The clone resumes where its source is: same guest state, new MAC (stale until refreshed).

        On failure nothing of the clone's guest is left (namespaces, disk directory) and the
        error is raised for the caller to unregister the clone.
        """
        try:
            source_guest = self.host.guest(source.mo_id)
            if source_guest is None or not source_guest.running:
                # A VM whose guest never booted: there is no running state to resume from.
                raise guest_errors.GuestNotRunning(f"the guest of instant clone source {source.name} is not running")
            self.clone_disk(source, clone)
            refresh = self.vc.profile.duration(f"refresh.{clone.family}")
            clone.drawn["refresh"] = refresh
            spec = dataclasses.replace(self._spec(clone), refresh_delay=refresh)
            guest = self.host.create_guest(spec, resume_from=source_guest)
            guest.set_nic_connected(all(n.connected for n in clone.nics[:1]))
            guest.boot()
            self._present_hardware(clone, guest, mount=True)
        except BaseException:
            self.tools_reports.cancel(clone)
            self.destroy(clone)
            raise
        # Tools were running in the source: they keep running in the clone.
        self.tools_reports.up(clone, time.time())

    def reboot(self, vm: VirtualMachine) -> None:
        """RebootGuest: the guest OS shuts down and boots again; returns at once, as on vSphere.

        Tools stop reporting now and come back after the profile's boot time; the new boot runs
        the guest's DHCP client again, so its address may be renewed or change.
        """
        self._settle_boot(vm)  # a boot still in progress finishes first
        self.tools_reports.cancel(vm)
        started = time.time()

        def reboot() -> None:
            try:
                self.host.remove_guest(vm.mo_id)  # the guest OS goes down; the VM stays powered on
                with self.vc.lock:
                    if vm.power_state != "poweredOn" or not vm.alive:
                        return
                self._boot(vm, wait_for_tools=False, started=started)
            except Exception:  # as a guest OS that fails to come back: the VM stays on without Tools
                log.exception("guest of %s failed to reboot", vm.name)

        thread = threading.Thread(target=reboot, name=f"sim-boot-{vm.mo_id}", daemon=True)
        with self._boots_lock:
            self._boots[vm.mo_id] = thread
        thread.start()

    def freeze(self, vm: VirtualMachine) -> None:
        """Freeze a running VM from outside (initial inventory state)."""
        guest = self.host.guest(vm.mo_id)
        with self.vc.lock:
            vm.frozen = True
            vm.changed()
        if guest is not None:
            guest.freeze()

    def _backdoor(self, vm_id: str, command: str) -> str:
        """Answer the guest tools' RPCs: freeze, guestinfo reads."""
        with self.vc.lock:
            vm = self.vc.objects.get(vm_id)
            if not isinstance(vm, VirtualMachine):
                raise guest_errors.GuestError("Unknown VM")
            text = command.strip()
            if text == FREEZE_COMMAND:
                vm.frozen = True
                vm.changed()
                return ""
            if text.startswith("info-get "):
                key = text[len("info-get "):].strip()
                if key in vm.extra_config:
                    return vm.extra_config[key]
                raise guest_errors.GuestError("No value found")
        raise guest_errors.GuestError("Unknown command")

    # --- guest operations ---------------------------------------------------------------------

    def guest_for(self, vm: VirtualMachine) -> Guest | None:
        guest = self.host.guest(vm.mo_id)
        return guest if guest is not None and guest.running else None

    def check_login(self, guest: Guest, user: str, password: str) -> bool:
        return guest.check_login(user, password)

    def start_program(self, guest: Guest, user: str, path: str, arguments: str, cwd: str | None,
                      env: list[str]) -> int:
        with faults_of(path):
            return guest.start_program(user, path, arguments, cwd, env or None)

    def list_processes(self, guest: Guest, pids: list[int] | None) -> list[GuestProcessInfo]:
        with faults_of(""):
            return guest.list_processes(pids)

    def terminate_process(self, guest: Guest, pid: int) -> None:
        with faults_of(""):
            guest.terminate_process(pid)

    def environment(self, guest: Guest, user: str, names: list[str]) -> list[str]:
        """``NAME=value`` for each of ``names`` that is set (all variables when ``names`` is empty).

        ReadEnvironmentVariableInGuest: "names: The names of the variables to be read. If not set,
        then all the environment variables are returned." Without an interactive session it is the
        environment programs started for the user get. A name that is not set is left out, as
        VMware Tools does; on Windows names match whatever their case.
        """
        with faults_of(""):
            env = guest.environment(user)
        if not names:
            return [f"{name}={value}" for name, value in env.items()]
        if guest.spec.family == "windows":
            folded = {name.upper(): value for name, value in env.items()}
            return [f"{name}={folded[name.upper()]}" for name in names if name.upper() in folded]
        return [f"{name}={env[name]}" for name in names if name in env]

    def offer_download(self, vm: VirtualMachine, guest: Guest, user: str, path: str) -> tuple[str, int]:
        """InitiateFileTransferFromGuest: (URL, file size)."""
        token, size = self.file_transfers.offer_download(guest, user, path, vm.mo_id, _host_id(vm))
        return self.transfer_url(vm, token), size

    def offer_upload(self, vm: VirtualMachine, guest: Guest, user: str, path: str, size: int,
                     overwrite: bool, mode: int | None = None) -> str:
        """InitiateFileTransferToGuest: the URL to PUT the file's ``size`` bytes to."""
        token = self.file_transfers.offer_upload(guest, user, path, size, overwrite, vm.mo_id, _host_id(vm), mode)
        return self.transfer_url(vm, token)

    def transfer_url(self, vm: VirtualMachine, token: str) -> str:
        """The URL of a transfer ticket.

        Through vCenter it names the ESXi host that runs the VM, on that host's HTTPS port (443):
        the client transfers with the host, not the vCenter. Through ESXi (a runtime without host
        services) the host part is ``*``, "the host you are talking to", on 443: a client puts in
        the endpoint it is connected to.
        """
        endpoint = self.transfer_endpoint(vm.host) if self.transfer_endpoint is not None else None
        if endpoint is None:
            return f"https://*:443/guestFile?id={token}"
        address, port = endpoint
        return f"https://{address}:{port}/guestFile?id={token}"

    def delete_file(self, guest: Guest, user: str, path: str) -> None:
        with faults_of(path):
            guest.delete_file(user, path)

    def create_temp_file(self, guest: Guest, user: str, prefix: str, suffix: str, directory: str | None) -> str:
        with faults_of(directory or ""):
            return guest.create_temp_file(user, prefix, suffix, directory)

    def create_temp_directory(self, guest: Guest, user: str, prefix: str, suffix: str,
                              directory: str | None) -> str:
        with faults_of(directory or ""):
            return guest.create_temp_directory(user, prefix, suffix, directory)

    def make_directory(self, guest: Guest, user: str, path: str, create_parents: bool) -> None:
        with faults_of(path):
            guest.make_directory(user, path, create_parents)

    def delete_directory(self, guest: Guest, user: str, path: str, recursive: bool) -> None:
        with faults_of(path):
            guest.delete_directory(user, path, recursive)

    def list_files(self, guest: Guest, user: str, path: str) -> list[dict[str, Any]]:
        with faults_of(path):
            return guest.list_files(user, path)


def _host_id(vm: VirtualMachine) -> str:
    host = getattr(vm, "host", None)
    return str(getattr(host, "mo_id", ""))


def _hostname(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")
    return (cleaned or "vm")[:63]
