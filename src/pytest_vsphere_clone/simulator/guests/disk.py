"""A VM's persistent disk directory, and preparing it for a boot.

Layout of ``disk_dir`` (everything a real guest keeps on disk):

- ``rootfs/``: the upper layer of the overlay that is the guest's / (its lower layer
  is the host's /): every file the guest creates or changes outside the places below,
  e.g. in /usr, /var, /opt or / itself, lands here - never on the host. The
  simulated VMware Tools are installed here (usr/bin/vmtoolsd, usr/bin/vmware-rpctool).
- ``etc/``: the upper layer of the guest's /etc (lower: the host's /etc) - passwd, shadow,
  group, gshadow, hostname, hosts, resolv.conf, ssh/ (sshd_config, host keys), the
  dhclient hook of the simulated tools, plus whatever the guest changes in /etc
- ``mounts/<mount point, %-quoted>/``: the upper layer for a file system the host has
  mounted below / (a separate /var, /boot, ...), which the overlay of / cannot show
- ``home/``, ``root/``: the guest's /home and /root (Linux)
- ``var/lib/dhcp/``: the guest's DHCP leases
- ``drives/C/``: drive C: (Windows)
- ``.work/``: overlayfs scratch directories (must be on the same file system as the uppers)

Upper layers hold overlayfs metadata - whiteouts (0/0 character devices) for deleted
files, trusted.* xattrs - so copy a disk with :func:`copy_disk`.

Host keys are generated once; accounts, hostname and configs are rewritten at each
boot from the spec, as guest customization would.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from . import accounts, os_image
from .accounts import Account
from .models import GuestSpec
from .paths import BACKDOOR_SOCKET, DRIVES_ROOT, TOOLS_DIR

_SSHD_CONFIG = """\
# Written by the simulated guest at every boot; the host's sshd_config is not used.
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PidFile /run/sshd.pid
PermitRootLogin yes
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
# Without PAM sshd checks /etc/shadow itself and needs no logind or loginuid.
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 100:30:200
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""

# Sourced by dhclient-script. dhclient runs PREINIT before it reads the interface's
# MAC address, so this is where a driver reload can adopt the virtual NIC's new MAC.
_DHCLIENT_HOOK = f"""\
# Installed by the simulated VMware Tools. An instant clone resumes with its
# source's MAC address although its virtual NIC has a new one: ask the virtual
# hardware to reset the NIC (as a driver reload would) before DHCP starts.
if [ "$reason" = PREINIT ] && [ -S {BACKDOOR_SOCKET} ]; then
    {TOOLS_DIR}/bin/vmware-rpctool "pvcs.nic.reset $interface" >/dev/null 2>&1 || :
fi
"""

# Programs the Windows command shell emulates; real files so existence checks are honest.
_WINDOWS_PROGRAMS = (
    "Windows/System32/cmd.exe",
    "Windows/System32/ipconfig.exe",
    "Windows/System32/netsh.exe",
    "Windows/System32/hostname.exe",
    "Windows/System32/whoami.exe",
    "Windows/System32/WindowsPowerShell/v1.0/powershell.exe",
)


class GuestDisk:
    """The persistent disk directory of one VM."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.etc = self.root / "etc"
        self.home = self.root / "home"
        self.root_home = self.root / "root"
        self.dhcp = self.root / "var" / "lib" / "dhcp"
        self.drives = self.root / "drives"
        self.drive_c = self.drives / "C"
        self.rootfs = self.root / "rootfs"
        self.mounts = self.root / "mounts"
        self.work = self.root / ".work"

    def overlay_dirs(self, mount_point: str) -> tuple[Path, Path]:
        """(upper, work) directories of the guest's overlay at ``mount_point`` (a host mount point)."""
        if mount_point == "/":
            return self.rootfs, self.work / "rootfs"
        if mount_point == "/etc":
            return self.etc, self.work / "etc"
        name = quote(mount_point, safe="")
        return self.mounts / name, self.work / "mounts" / name

    def ensure_overlay_dirs(self, mount_point: str) -> tuple[Path, Path]:
        """Create the overlay's directories; a new upper root takes the mode and owner of ``mount_point``.

        (The upper's root directory is what the guest sees at the mount point: /var/tmp must stay 1777.)
        """
        upper, work = self.overlay_dirs(mount_point)
        if not upper.is_dir():
            upper.mkdir(parents=True)
            st = os.stat(mount_point)
            os.chown(upper, st.st_uid, st.st_gid)
            os.chmod(upper, stat.S_IMODE(st.st_mode))
        work.mkdir(parents=True, exist_ok=True)
        return upper, work

    def view_home(self, spec: GuestSpec) -> str:
        """The user's home directory inside the guest's mount namespace."""
        if spec.family == "windows":
            return f"{DRIVES_ROOT}/C/Users/{spec.user}"
        return "/root" if spec.user == "root" else f"/home/{spec.user}"

    def host_path(self, view_path: str) -> Path:
        """Where a guest-view path under one of the disk's mounts lives on the host."""
        for view, host in (
            (DRIVES_ROOT, self.drives),
            ("/home", self.home),
            ("/root", self.root_home),
        ):
            if view_path == view or view_path.startswith(view + "/"):
                return host / view_path[len(view) :].lstrip("/")
        raise ValueError(f"{view_path} is not on the VM disk")

    def prepare(self, spec: GuestSpec) -> Account:
        """Create or refresh everything the guest needs from its disk; return the guest user's account."""
        for path, mode in (
            (self.root, 0o755),
            (self.etc / "ssh", 0o755),
            (self.etc / "dhcp" / "dhclient-enter-hooks.d", 0o755),
            (self.dhcp, 0o755),
            (self.home, 0o755),
            (self.root_home, 0o700),
        ):
            path.mkdir(mode=mode, parents=True, exist_ok=True)
        self.ensure_overlay_dirs("/")
        self.ensure_overlay_dirs("/etc")
        account = self._write_accounts(spec)
        self._write_etc(spec)
        if spec.family == "windows":
            self._prepare_drive_c(spec)
        else:
            os_image.ensure_machine_id(self.etc)  # the guest OS's first boot commits one
            os_image.write_dhcp_identity(self.etc, spec.mac)
            self._ensure_host_keys(spec.hostname)
            self._prepare_home(account, spec.authorized_keys)
        return account

    def seed_os_image(self, machine_id: str | None, networkd: bool) -> None:
        """What a template's image holds before its first boot: a machine-id, networkd (see os_image.py)."""
        os_image.seed(self.etc, machine_id, networkd)

    def install_programs(self, programs: dict[str, Path]) -> None:
        """Install host files into the guest's /usr/bin, as a package would (on the disk: the rootfs layer)."""
        bin_dir = self.rootfs / "usr" / "bin"
        if not bin_dir.is_dir():
            for view in ("/usr", "/usr/bin"):
                upper = self.rootfs / view.lstrip("/")
                upper.mkdir(exist_ok=True)
                st = os.stat(view)  # a directory of the upper layer hides the lower one's attributes
                os.chown(upper, st.st_uid, st.st_gid)
                os.chmod(upper, stat.S_IMODE(st.st_mode))
        for name, source in programs.items():
            target = bin_dir / name
            if os.path.lexists(target):
                target.unlink()  # may be a whiteout: the guest deleted the program
            shutil.copy2(source, target)

    def _write_accounts(self, spec: GuestSpec) -> Account:
        shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
        # A Windows guest also has a second administrator, who is not the built-in one (see accounts.py).
        extra = ((accounts.WINDOWS_LOCAL_ADMIN, f"{DRIVES_ROOT}/C/Users/{accounts.WINDOWS_LOCAL_ADMIN}"),) \
            if spec.family == "windows" and spec.user != accounts.WINDOWS_LOCAL_ADMIN else ()
        files = accounts.build_account_files(
            Path("/etc/passwd").read_text(),
            Path("/etc/group").read_text(),
            spec.user,
            spec.password,
            self.view_home(spec),
            shell,
            extra_users=extra,
        )
        shadow_gid = next((int(g.split(":")[2]) for g in files.group.splitlines() if g.startswith("shadow:")), 0)
        _write(self.etc / "passwd", files.passwd, 0o644)
        _write(self.etc / "group", files.group, 0o644)
        _write(self.etc / "shadow", files.shadow, 0o640, gid=shadow_gid)
        _write(self.etc / "gshadow", files.gshadow, 0o640, gid=shadow_gid)
        return accounts.parse_passwd(files.passwd)[spec.user]

    def _write_etc(self, spec: GuestSpec) -> None:
        short = spec.hostname.split(".")[0]
        names = spec.hostname if short == spec.hostname else f"{spec.hostname} {short}"
        _write(self.etc / "hostname", spec.hostname + "\n", 0o644)
        _write(
            self.etc / "hosts",
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{names}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
            0o644,
        )
        # The guest network has no DNS server, and the host's resolvers are out of the guest's
        # reach: without this, every lookup would wait for a timeout instead of failing at once.
        _write(self.etc / "resolv.conf", "# no DNS server on the simulated guest network\n", 0o644)
        _write(self.etc / "ssh" / "sshd_config", _SSHD_CONFIG, 0o644)
        _write(self.etc / "dhcp" / "dhclient-enter-hooks.d" / "vmware-nic-reset", _DHCLIENT_HOOK, 0o644)

    def _ensure_host_keys(self, hostname: str) -> None:
        # Generated in-process (no ssh-keygen fork): boot latency matters, and
        # ed25519/ECDSA keys take microseconds where RSA would take a second.
        for name, generate in (
            ("ed25519", ed25519.Ed25519PrivateKey.generate),
            ("ecdsa", lambda: ec.generate_private_key(ec.SECP256R1())),
        ):
            key_path = self.etc / "ssh" / f"ssh_host_{name}_key"
            if key_path.exists():
                continue
            key = generate()
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            _write(key_path.with_suffix(".pub"), public.decode() + f" root@{hostname}\n", 0o644)
            _write(key_path, private.decode(), 0o600)

    def _prepare_home(self, account: Account, authorized_keys: list[str]) -> None:
        home = self.host_path(account.home)
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys_file = ssh_dir / "authorized_keys"
        existing = keys_file.read_text().splitlines() if keys_file.exists() else []
        wanted = existing + [k.strip() for k in authorized_keys if k.strip() and k.strip() not in existing]
        _write(keys_file, "".join(k + "\n" for k in wanted), 0o600, uid=account.uid, gid=account.gid)
        for path, mode in ((home, 0o700 if account.uid == 0 else 0o750), (ssh_dir, 0o700)):
            os.chown(path, account.uid, account.gid)
            os.chmod(path, mode)

    def _prepare_drive_c(self, spec: GuestSpec) -> None:
        profiles = (f"Users/{user}/AppData/Local/Temp" for user in (spec.user, accounts.WINDOWS_LOCAL_ADMIN))
        for rel in (*profiles, "Windows/Temp", "ProgramData"):
            (self.drive_c / rel).mkdir(parents=True, exist_ok=True)
        for rel in _WINDOWS_PROGRAMS:
            program = self.drive_c / rel
            if not program.exists():
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("emulated by pytest_vsphere_clone.simulator.guests.windows.cmd.cli\n")


def _write(path: Path, text: str, mode: int, uid: int = 0, gid: int = 0) -> None:
    """Replace a file atomically with the given content, mode and owner."""
    tmp = path.with_name(f".{path.name}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(text.encode())
        os.fchown(f.fileno(), uid, gid)
        os.fchmod(f.fileno(), mode)
    os.replace(tmp, path)


def copy_disk(source: Path, destination: Path) -> None:
    """Copy a VM disk (a full clone's disk), including the overlay layers' whiteouts and xattrs.

    ``shutil.copytree`` alone fails on whiteouts (character devices 0/0, left where the
    guest deleted a host file); they are recreated with mknod here. Sockets are skipped.
    """

    def copy(src: str, dst: str) -> object:
        st = os.lstat(src)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            os.mknod(dst, st.st_mode, st.st_rdev)
            shutil.copystat(src, dst, follow_symlinks=False)
            os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
            return dst
        if stat.S_ISSOCK(st.st_mode):
            return dst
        result = shutil.copy2(src, dst, follow_symlinks=False)
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
        return result

    shutil.copytree(source, destination, symlinks=True, copy_function=copy, dirs_exist_ok=True)
    for dirpath, dirnames, _ in os.walk(source):  # copytree keeps directories' modes and xattrs, not owners
        for src in (dirpath, *(os.path.join(dirpath, name) for name in dirnames)):
            st = os.lstat(src)
            dst = os.path.join(destination, os.path.relpath(src, source))
            os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
