"""Real guests behind simulated VMs: network namespaces with sshd, DHCP, WinRM.

A ``GuestHost`` (one per simulator) owns a bridge with a DHCP server (dnsmasq);
each powered-on VM is a ``Guest`` on it. Layout:

- this package: ``guest_host`` (GuestHost), ``guest`` (Guest: power, NIC, freeze), the VM disk
  (``disk``, ``os_image``, ``accounts``), the guest's view of paths (``paths``), ``models``, ``errors``;
- ``host/``: the Linux host plumbing that makes a guest (namespaces, init, veth NIC, link
  watching, DHCP server, /proc, guest services, ownership registry and sweeping);
- ``ops/``: Guest Operations inside a guest (``Guest``'s logins, programs, file operations);
- ``vmtools/``: the simulated VMware Tools (guest shims and the host side of their backdoor);
- ``windows/``: what a Windows-family guest runs instead of Linux programs (cmd.exe dialect,
  PowerShell, WinRM server), started in the guest with ``python -m``.

Design, in brief:

- **Isolation.** A guest is a named network namespace whose eth0 (a veth, with the
  VM's MAC) is plugged into the bridge, plus its own PID, IPC, mount and UTS
  namespaces, held by an init that is pid 1 of the PID namespace. Processes are
  host processes the guest knows by other pids (its own namespace's, which Guest
  Operations report); membership is by PID namespace, which is how they are
  listed, frozen and killed. A guest sees and signals only its own processes.
  See host/namespace.py and paths.py for the file view, docs/simulator.md for what a
  guest can and cannot touch.
- **File system.** A guest's / is a copy-on-write overlay of the host's /, its
  upper layer on the VM disk (``rootfs/``): package installs, /usr/local, /opt,
  /var, new top-level directories land on the disk - persisting across power
  cycles and copied with it for clones (``copy_disk``) - never on the host.
  /tmp, /run and /dev/shm are private tmpfs; /home and /root come from the disk.
- **Accounts and hostname.** The VM disk's ``etc/`` is the upper layer of the
  guest's /etc over the host's: own passwd/shadow/group (host system accounts,
  locked, plus the guest user), hostname, hosts, sshd_config and ssh host keys.
  sshd authenticates against them; the host's files are never written.
- **Addresses.** dhclient runs inside the guest's view, so its default script
  only touches the guest's /etc, /run and /var/lib/dhcp. Leases are keyed by MAC.
- **Port security.** Bridge ports are locked with a static FDB entry for the
  NIC's hardware MAC: frames with any other source MAC are dropped in the kernel.
- **Instant clones** (``create_guest(spec, resume_from=source)``) resume the
  source's hostname, addresses, routes and eth0 MAC; only the hardware MAC is
  new, so nothing gets through. A NIC reset - what a driver reload does - adopts
  the hardware MAC and drops the stale addresses; it happens when the guest runs
  dhclient (a PREINIT hook asks the virtual hardware over the backdoor) or sets
  eth0 down (seen through rtnetlink). DHCP then yields a new address.
- **Backdoor.** Each guest has a unix socket at /run/vmware-tools/backdoor.sock;
  ``vmtoolsd --cmd`` and ``vmware-rpctool`` (in the guest's /usr/bin) send RPCs
  the simulator answers through ``GuestHost.backdoor``. ``instantclone.freeze``
  SIGSTOPs every guest process and drops the NIC's carrier; the call returns
  when ``Guest.unfreeze()`` is called, like vmtoolsd's.
- **Ownership.** Every name carries the host's tag (``pvcs`` + index); a registry
  in /run/pytest-vsphere-clone-sim maps tags to owner pids, so a start sweeps what
  dead simulators left and never touches a live one's resources.
"""

from .disk import copy_disk
from .errors import (
    GuestError,
    GuestFileAccessDenied,
    GuestFileError,
    GuestFileExists,
    GuestFileNotFound,
    GuestHostError,
    GuestInvalidArgument,
    GuestLoginError,
    GuestNotAFile,
    GuestNotRunning,
    GuestOperationsUnavailable,
    GuestProcessNotFound,
    GuestProgramNotFound,
)
from .guest import FREEZE_RPC, Guest
from .guest_host import BackdoorHandler, GuestHost, guest_support_problem, missing_prerequisites
from .models import GuestFamily, GuestIpAddress, GuestNic, GuestProcessInfo, GuestSpec

__all__ = [
    "FREEZE_RPC",
    "BackdoorHandler",
    "Guest",
    "GuestError",
    "GuestFamily",
    "GuestFileAccessDenied",
    "GuestFileError",
    "GuestFileExists",
    "GuestFileNotFound",
    "GuestHost",
    "GuestHostError",
    "GuestInvalidArgument",
    "GuestIpAddress",
    "GuestLoginError",
    "GuestNic",
    "GuestNotAFile",
    "GuestNotRunning",
    "GuestOperationsUnavailable",
    "GuestProcessInfo",
    "GuestProcessNotFound",
    "GuestProgramNotFound",
    "GuestSpec",
    "copy_disk",
    "guest_support_problem",
    "missing_prerequisites",
]
