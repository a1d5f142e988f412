"""Running the simulator's guests without root: inside a user namespace of the caller's own.

Real guests need what only root has: network namespaces, a bridge, mounts, sshd dropping to other
users. Linux gives an ordinary user all of that inside a user namespace it creates
(user_namespaces(7)), where it is root over namespaces it owns and nothing else. ``run_inside``
starts a program there, with:

- the caller as root plus 65535 subordinate ids (``/etc/subuid``, ``/etc/subgid``, mapped by
  newuidmap/newgidmap from outside before the program starts): the guests' users exist (sshd's
  privilege separation user, ``nobody``, the guest user) and sshd can drop to them. The caller's
  own uid alone cannot be enough: sshd calls setgroups(2), which a namespace mapped without
  newgidmap forbids, and guest files owned by other ids could not exist;
- a network namespace with ``lo`` up: the vCenter port, the ESXi hosts' 127.x addresses, the guest
  bridge, all private to the run;
- a mount namespace with its own ``/run`` (``/run/netns``, the simulator registry): nothing of the
  run is visible from the host;
- a PID namespace whose init is ``main`` below: when the run ends, or its init is killed, the kernel
  kills every process left (guests included), so nothing outlives the run.

The program (a pytest run, or ``vsphere-clone simulator``) runs as the namespace's root, and
everything it starts - xdist workers, the simulator, guests - inherits the namespaces, so clients in
the run reach the guests. Clients outside cannot: the run's network is its own.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: Set in the namespace's environment: the caller's user name (also a guard against nesting).
ENV_MARKER = "PVCS_USERNS"
#: The host pid of the namespace's init, for ``nsenter --target`` from outside.
ENV_INIT_PID = "PVCS_USERNS_INIT_PID"
#: Temp directories of the simulator (simulator.py) and of a pytest run (plugin/controller.py).
TEMP_PREFIXES = ("vsphere-clone-sim-", "vsphere-clone-run-")
#: Ids 1..65535 inside: every id a guest uses (system accounts, the guest user, nobody = 65534).
SUBORDINATE_IDS = 65535
_SI_KERNEL = 0x80  # siginfo si_code of a signal the kernel sent, as a terminal's ^C to its foreground group
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_WAITED = {*_FORWARDED, signal.SIGCHLD}
_PROBE_TIMEOUT = 20.0
#: The run's namespaces besides the user namespace; --kill-child ties the init to unshare.
_NAMESPACES = ("--net", "--mount", "--propagation=private", "--pid", "--fork", "--kill-child")
#: unshare's program: wait for the id maps (a line on fd 3), then become the program, fd 3 closed.
_WAIT_FOR_MAPS = 'read -r mapped <&3 && exec "$@" 3<&-'


class NamespaceRefused(Exception):
    """This machine does not let the caller make the namespaces; the message names the fix (one line)."""


def inside() -> bool:
    """True in a process started by ``run_inside`` (or its descendants)."""
    return bool(os.environ.get(ENV_MARKER))


def needed() -> bool:
    """True when real guests need a user namespace: not root, and not already inside one of ours."""
    return os.geteuid() != 0 and not inside()


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _subordinate_start(path: Path, name: str, own_id: int) -> int | None:
    """The start of the first range of at least SUBORDINATE_IDS ids that ``path`` gives the caller."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(own_id)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if count >= SUBORDINATE_IDS:
            return start
    return None


def _unshare() -> str:
    path = shutil.which("unshare") or shutil.which("unshare", path="/usr/bin:/bin")
    if path is None:
        raise NamespaceRefused("needs unshare from util-linux: install util-linux, or run as root")
    return path


def id_maps(subuid: Path = Path("/etc/subuid"), subgid: Path = Path("/etc/subgid")) -> list[list[str]]:
    """The newuidmap and newgidmap commands (less the pid) that make the caller root of a namespace and
    its subordinate ids 1..65535 there; NamespaceRefused (naming the fix) when a tool or the ids are missing.

    Run by this process rather than by ``unshare --map-users`` (util-linux 2.38+): Ubuntu 22.04 and
    RHEL 9 have older ones."""
    user = _user()
    newuidmap, newgidmap = shutil.which("newuidmap"), shutil.which("newgidmap")
    if not (newuidmap and newgidmap):
        raise NamespaceRefused("needs newuidmap and newgidmap: install the uidmap package (shadow-utils on "
                               "Fedora) as root, or run as root")
    uid_start = _subordinate_start(subuid, user, os.geteuid())
    gid_start = _subordinate_start(subgid, user, os.getegid())
    if uid_start is None or gid_start is None:
        raise NamespaceRefused(
            f"needs {SUBORDINATE_IDS} subordinate user and group ids for {user} in {subuid} and {subgid}: "
            f"as root, usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}; or run as root")
    return [[newuidmap, "0", str(os.geteuid()), "1", "1", str(uid_start), str(SUBORDINATE_IDS)],
            [newgidmap, "0", str(os.getegid()), "1", "1", str(gid_start), str(SUBORDINATE_IDS)]]


def _refusal(stderr: str) -> str:
    """The one line for an unshare(1) that failed: what the kernel said, and the fix."""
    detail = " ".join(stderr.split()) or "no message"
    if "No space left on device" in detail:  # ENOSPC: user.max_user_namespaces exhausted or 0
        return (f"this machine allows no more user namespaces ({detail}): as root, sysctl -w "
                "user.max_user_namespaces=15000; or run as root")
    if "newuidmap" in detail or "newgidmap" in detail:
        return f"the subordinate id mapping failed ({detail}): check /etc/subuid and /etc/subgid; or run as root"
    if "Operation not permitted" in detail or "Permission denied" in detail:
        # EPERM: AppArmor's restriction (Ubuntu 23.10+), Debian's old switch, a container's seccomp
        # profile (Docker's default blocks unshare(CLONE_NEWUSER)), or a chroot (user_namespaces(7)).
        return (f"this machine forbids unprivileged user namespaces here ({detail}): as root, sysctl -w "
                "kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu) or kernel.unprivileged_userns_clone=1 "
                "(older Debian); in a container, allow unshare (docker run --security-opt seccomp=unconfined); "
                "not in a chroot; or run as root")
    return f"cannot create a user namespace ({detail}): run as root"


def check() -> None:
    """Raise NamespaceRefused unless the kernel lets the caller make the run's namespaces and mount in
    them: a dry run of unshare(1) (mapping only the caller, as it can by itself)."""
    probe = [_unshare(), "--user", "--map-root-user", *_NAMESPACES, "--mount-proc", "--", "true"]
    with tempfile.TemporaryFile("w+") as err:
        try:
            proc = subprocess.Popen(probe, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    text=True, start_new_session=True)
        except OSError as exc:
            raise NamespaceRefused(f"cannot create a user namespace ({exc}): run as root") from None
        try:
            returncode = proc.wait(_PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # a session of its own: nothing of it may stay
            proc.wait()
        err.seek(0)
        stderr = err.read()
    if returncode is None:
        raise NamespaceRefused(f"cannot create a user namespace (unshare hung for {_PROBE_TIMEOUT:g} s): "
                               "run as root")
    if returncode != 0:
        raise NamespaceRefused(_refusal(stderr))


def run_inside(program: Sequence[str]) -> int:
    """Run ``program`` in a user namespace of its own (see the module's docstring); its exit status.

    This process waits, forwarding SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to it alone (a
    terminal's signals reach the whole foreground group, the run included, and are not sent twice).
    Before and after, it removes what killed runs left in the temp directory (``sweep_orphans``):
    inside, the run cannot tell another PID namespace's dead processes from live ones.
    """
    maps = id_maps()
    check()
    env = {**os.environ, ENV_MARKER: _user(), "USER": _user(), "LOGNAME": _user()}
    sweep_orphans(TEMP_PREFIXES)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)
    try:
        pid = spawn_mapped(maps, [*_NAMESPACES, "--", sys.executable, "-m", __name__, *program], env, old_mask)
        return _wait(pid, init=False)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        sweep_orphans(TEMP_PREFIXES)


def spawn_mapped(maps: list[list[str]], unshare_args: Sequence[str], env: dict[str, str],
                 sigmask: Iterable[int] = (), *, quiet: bool = False) -> int:
    """Start ``unshare --user UNSHARE_ARGS`` whose program waits until this process has mapped the
    ids (``maps``, from id_maps) and then execs as the namespace's root; its pid.

    The program execs only after the mapping, so it starts as uid 0 with the namespace's
    capabilities (an exec before would drop them: execve(2) gives capabilities to uid 0 only).
    """
    args = list(unshare_args)
    split = args.index("--")
    program = args[split + 1:]
    argv = [_unshare(), "--user", *args[:split], "--", "/bin/sh", "-c", _WAIT_FOR_MAPS, "userns", *program]
    read_end, write_end = os.pipe()
    try:
        os.set_inheritable(read_end, True)
        actions: list[tuple[Any, ...]] = [(os.POSIX_SPAWN_DUP2, read_end, 3)]
        if quiet:
            actions += [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsigmask=sigmask,
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, *_FORWARDED))
    finally:
        os.close(read_end)
    try:
        _await_new_user_namespace(pid)
        for cmd in maps:
            done = subprocess.run([cmd[0], str(pid), *cmd[1:]], capture_output=True, text=True, timeout=30,
                                  check=False)
            if done.returncode != 0:
                raise NamespaceRefused(_refusal(f"{os.path.basename(cmd[0])}: {done.stderr or done.stdout}"))
        os.write(write_end, b"mapped\n")
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # --kill-child takes its child along
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(write_end)
    return pid


def _await_new_user_namespace(pid: int, timeout: float = 10.0) -> None:
    """Wait until unshare(1) ``pid`` has made its user namespace (then its maps may be written)."""
    own = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.readlink(f"/proc/{pid}/ns/user") != own:
                return
        except OSError:
            pass
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            raise NamespaceRefused(f"cannot create a user namespace (unshare exited with status "
                                   f"{os.waitstatus_to_exitcode(status)}): run as root")
        if time.monotonic() > deadline:
            raise NamespaceRefused(f"cannot create a user namespace (unshare hung for {timeout:g} s): run as root")
        time.sleep(0.001)


def sweep_orphans(prefixes: Sequence[str]) -> None:
    """Remove the temp directories of killed runs (see tempdirs.py), as root of a user namespace with
    the caller's ids: the files a run's guests made belong to subordinate ids, which the caller
    itself may not remove. Best effort: what cannot be removed stays for the next run."""
    from ..tempdirs import find_orphans

    orphans = [str(path) for prefix in prefixes for path in find_orphans(prefix) if _owned(path)]
    if not orphans:
        return
    with contextlib.suppress(NamespaceRefused, OSError, ChildProcessError):
        pid = spawn_mapped(id_maps(), ["--", "rm", "-rf", "--", *orphans], dict(os.environ), quiet=True)
        os.waitpid(pid, 0)
        return
    subprocess.run(["rm", "-rf", "--", *orphans], stdin=subprocess.DEVNULL, capture_output=True, check=False)


def _owned(path: Path) -> bool:
    """True for the caller's own directory (others' are theirs to remove)."""
    try:
        return path.lstat().st_uid == os.geteuid()
    except OSError:
        return False


def _wait(pid: int, *, init: bool) -> int:
    """Wait for ``pid`` (signals in _WAITED blocked), forwarding signals; its exit status as a shell reports it.

    As the namespace's ``init`` it reaps every child (orphans included) and signals the program
    itself; outside, it signals the init (unshare --fork ignores SIGINT and SIGTERM).
    """
    while True:
        info = signal.sigwaitinfo(_WAITED)
        if info.si_signo == signal.SIGCHLD:
            while True:
                try:
                    reaped, status = os.waitpid(-1 if init else pid, os.WNOHANG)
                except ChildProcessError:
                    return 1
                if reaped == 0:
                    break
                if reaped == pid:
                    code = os.waitstatus_to_exitcode(status)
                    return code if code >= 0 else 128 - code
            continue
        if info.si_code == _SI_KERNEL:
            continue  # a terminal's signal: the run, in the same foreground group, has it already
        target = pid if init else _child_of(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(target or pid, info.si_signo)


def _child_of(pid: int) -> int | None:
    """The one child of ``pid`` (unshare --fork's: the namespace's init), by its host pid."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def main(program: Sequence[str]) -> int:
    """The namespace's init (pid 1): private /proc and /run, ``lo`` up, then ``program`` as its child.

    It reaps orphans, forwards signals to the program and ends with the program's status; the
    kernel then kills whatever is left in the namespace.
    """
    host_pid = os.readlink("/proc/self")  # still the host's /proc: this process's pid out there
    for cmd in (["mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", "/proc"],
                ["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", "/run"],
                ["ip", "link", "set", "lo", "up"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"user namespace set-up failed: {' '.join(cmd)}: {proc.stderr.strip()}", file=sys.stderr)
            return 1
    env = {**os.environ, ENV_INIT_PID: host_pid}
    path = shutil.which(program[0], path=env.get("PATH")) if "/" not in program[0] else program[0]
    if path is None:
        print(f"{program[0]}: not found", file=sys.stderr)
        return 127
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)
    try:
        pid = os.posix_spawn(path, [path, *program[1:]], env, setsigmask=old_mask,
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, *_FORWARDED))
        return _wait(pid, init=True)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def enter_command() -> str | None:
    """A command prefix that runs a client in this run's network namespace from outside (None outside one)."""
    pid = os.environ.get(ENV_INIT_PID)
    if not inside() or not pid:
        return None
    return f"nsenter --target {pid} --user --net --preserve-credentials --"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
