"""The one table of settings: every setting exists as CLI option, ini key and environment variable.

``--vsphere-NAME`` / ``vsphere_NAME`` / ``VSPHERE_NAME``; docs and validation are
generated from this table so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clone_types import CLONE_TYPES, COLLAPSE_MODES

#: Groups in the order the help and the docs show them.
GROUPS = ("connection", "placement", "clone", "guest", "hardware", "discovery", "time", "teardown", "reporting",
          "embedded")


@dataclass(frozen=True)
class Option:
    """One setting: its name (dashes), group, kind, default and help."""

    name: str
    group: str
    help: str
    kind: str = "str"  # str | int | port | float | bool | choice | duration | cidr | path | keyvalue
    default: object = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    repeatable: bool = False
    metavar: str | None = None
    #: Smallest allowed value (seconds for durations).
    minimum: float | None = None
    #: Whole numbers only: the value must be a multiple of this (memory in MB: 4).
    step: int | None = None
    #: How an environment variable's (or a marker's string) value splits into items (repeatable options).
    separator: str = r"[,\s]+"

    @property
    def cli(self) -> str:
        return f"--vsphere-{self.name}"

    @property
    def ini(self) -> str:
        return f"vsphere_{self.name.replace('-', '_')}"

    @property
    def env(self) -> str:
        return f"VSPHERE_{self.name.replace('-', '_').upper()}"

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    # connection
    Option("host", "connection", "vCenter or ESXi host: name, host:port or https URL."),
    Option("user", "connection", "User to log in with, e.g. administrator@vsphere.local."),
    Option("password", "connection", "Password of the user (prefer the VSPHERE_PASSWORD environment variable).",
           secret=True),
    Option("insecure", "connection", "Do not verify the server's TLS certificate.", kind="bool", default=False),
    Option("ca-bundle", "connection", "PEM file of CA certificates to verify the server with.", kind="path"),
    # placement
    Option("datacenter", "placement", "Datacenter to work in (default: the template's)."),
    Option("cluster", "placement", "Cluster for the clones (default: the template's)."),
    Option("resource-pool", "placement", "Resource pool for the clones (default: the template's)."),
    Option("esxi-host", "placement", "ESXi host for the clones (default: the template's; instant clones always "
           "stay on the source's host)."),
    Option("folder", "placement", "VM folder for the clones (default: the template's)."),
    Option("datastore", "placement", "Datastore for the clones (default: the template's)."),
    Option("network", "placement", "Port group for the clones' first NIC (default: the template's)."),
    # clone
    Option("template", "clone", "Source VM or template, by name or inventory path; repeat to run the tests "
           "once per template.", repeatable=True),
    Option("clone-type", "clone", "How to clone.", kind="choice", default="linked",
           choices=CLONE_TYPES),
    Option("snapshot", "clone", "Snapshot to branch linked clones from (default: the current one)."),
    Option("scope", "clone", "One clone per xdist worker, per run, per module or per test.", kind="choice",
           default="worker", choices=("worker", "session", "module", "function")),
    Option("name-prefix", "clone", "Prefix of clone names: PREFIX-RUNID-WORKER-N.", default="pytest"),
    # guest
    Option("os", "guest", "Guest OS family (auto: from VMware Tools' guestFamily).", kind="choice",
           default="auto", choices=("auto", "linux", "windows")),
    Option("guest-user", "guest", "Guest OS user for Guest Operations, SSH and WinRM."),
    Option("guest-password", "guest", "Password of the guest user.", secret=True),
    Option("ssh-key", "guest", "Private key file for SSH to the guest.", kind="path"),
    Option("ssh-port", "guest", "SSH port of the guest (1-65535).", kind="port", default=22),
    Option("ssh-host-key-policy", "guest", "How the guest's SSH host key is checked: guest = the keys read "
           "through Guest Operations; known-hosts = a key in the --vsphere-known-hosts file, whatever host name "
           "it is listed under (clones of one template share its keys); accept-new = trusted on first use.",
           kind="choice", default="guest", choices=("guest", "known-hosts", "accept-new")),
    Option("known-hosts", "guest", "OpenSSH known_hosts file for --vsphere-ssh-host-key-policy=known-hosts.",
           kind="path", default="~/.ssh/known_hosts"),
    Option("winrm-port", "guest", "WinRM port of the guest (1-65535).", kind="port", default=5985),
    Option("winrm-transport", "guest", "WinRM authentication transport.", kind="choice", default="ntlm",
           choices=("ntlm", "basic", "kerberos", "credssp")),
    Option("winrm-ssl", "guest", "Use HTTPS for WinRM.", kind="bool", default=False),
    # hardware (see docs/hardware.md; what each clone type can take is checked at the start)
    Option("cpus", "hardware", "Virtual CPUs of each clone (default: the template's; linked and full clones).",
           kind="int", minimum=1),
    Option("memory-mb", "hardware", "Memory of each clone in MB, a multiple of 4 (default: the template's; linked "
           "and full clones).", kind="int", minimum=4, step=4, metavar="MB"),
    Option("networks", "hardware", "Port group of NIC 1, 2, ... by name: NICs on another port group are moved, "
           "missing ones added as vmxnet3 (instant clones: existing NICs only). Env: comma-separated.",
           repeatable=True, separator=r"[,\n]+", metavar="PORTGROUP"),
    Option("disks", "hardware", "Size in GB of an extra thin-provisioned disk on a free SCSI unit; repeat for more "
           "(linked and full clones).", kind="int", repeatable=True, minimum=1, metavar="GB"),
    Option("extra-config", "hardware", "KEY=VALUE for the clone's extraConfig (advanced settings); guestinfo.* "
           "keys reach the guest (vmware-rpctool \"info-get guestinfo.KEY\"), for instant clones too. Env: "
           "whitespace-separated.", kind="keyvalue", repeatable=True, separator=r"\s+", metavar="KEY=VALUE"),
    # discovery
    Option("discovery", "discovery", "Find the clone's IP through Guest Operations (active) or wait for "
           "VMware Tools' report (tools).", kind="choice", default="active", choices=("active", "tools")),
    Option("discovery-command", "discovery", "Command run in the guest to print its addresses (active "
           "discovery)."),
    Option("ip-family", "discovery", "Address family to accept.", kind="choice", default="ipv4",
           choices=("ipv4", "ipv6", "any")),
    Option("ip-network", "discovery", "Accept only addresses in this CIDR network.", kind="cidr"),
    Option("network-refresh-command", "discovery", "Command that makes an instant clone's guest pick up its "
           "new MAC (default: chosen per OS and network stack)."),
    # time
    Option("clone-timeout", "time", "Seconds to wait for a clone task.", kind="float", default=300.0),
    Option("ip-timeout", "time", "Seconds to wait for a usable IP address.", kind="float", default=300.0),
    Option("connect-timeout", "time", "Seconds to wait for SSH/WinRM (and for vCenter to answer).", kind="float",
           default=120.0),
    Option("guest-op-retries", "time", "Retries of a Guest Operation that failed transiently.", kind="int",
           default=5),
    # teardown
    Option("keep", "teardown", "Keep clones after the run.", kind="choice", default="never",
           choices=("never", "on-failure", "always")),
    Option("collapse", "teardown", "Collapse the source's delta disks at the end of the run (after every clone "
           "of it is gone).", kind="choice", default="none", choices=COLLAPSE_MODES),
    Option("ttl", "teardown", "How long a clone may live before `vsphere-clone reap` destroys it (e.g. 2h, "
           "90m; at least 1 minute).", kind="duration", default="2h", minimum=60),
    # reporting
    Option("report", "reporting", "Write a JSON run report here at the end of the run (clones, phases, tests, "
           "outcomes; see docs/reports.md).", kind="path"),
    Option("artifacts", "reporting", "Directory for failure evidence such as a failed test's console screenshots "
           "(default: vsphere-artifacts under pytest's basetemp).", kind="path"),
    # embedded
    Option("simulator", "embedded", "Start the bundled vCenter simulator and point everything at it.",
           kind="bool", default=False),
)

BY_NAME = {option.name: option for option in OPTIONS}
#: pytest's scope for each --vsphere-scope (worker scope is a session fixture in each worker).
PYTEST_SCOPES = {"worker": "session", "session": "session", "module": "module", "function": "function"}
SECRET_NAMES = frozenset(o.name for o in OPTIONS if o.secret)
