"""``pytest --vsphere-simulator`` as an ordinary user: the run goes into a user namespace of its own.

Each test runs a small inner pytest as an unprivileged user through setpriv (the CI user that
.ci/setup makes, with subordinate ids; or ``nobody``, which has none), and checks the machine
afterwards: no process of that user, no network namespace or temp directory left. The refusals are
real: a user without subordinate ids, and a kernel limit of user namespaces set in a parent
namespace (``user.max_user_namespaces`` is per user namespace and binds its descendants).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_helpers import netns_names

pytestmark = pytest.mark.guests

#: The unprivileged user .ci/setup creates (with subordinate ids) for the main job.
CI_USER = "pvcs-ci"

TESTS = """
import os

def test_ssh_to_a_guest(vsphere_vm):
    result = vsphere_vm.run("id -u && readlink /proc/self/ns/net")
    assert result.exit_status == 0, result.stderr
    uid, guest_netns = result.stdout.split()
    assert uid == "0"
    assert vsphere_vm.ip.startswith("10.")
    # Where programs put their own files, guest root may write although the host's copies of these
    # directories belong to an id the namespace cannot map (docs/simulator.md#what-differs-from-a-root-run).
    for path in ("/usr/local/bin/tool", "/var/tmp/scratch", "/var/log/app.log", "/opt/app", "/etc/app.conf"):
        assert vsphere_vm.run("touch " + path).exit_status == 0, path
    assert vsphere_vm.run("stat -c %a /var/tmp").stdout.strip() == "1777"
    # The run's network namespace and the guest's, for the outer test to look for afterwards.
    run_netns = os.readlink("/proc/self/ns/net")
    with open("namespaces", "w") as f:
        f.write(run_netns + " " + guest_netns)
"""

SLOW_TESTS = """
import time

def test_slow(vsphere_vm):
    assert vsphere_vm.run("true").exit_status == 0
    open("started", "w").close()
    time.sleep(120)
"""


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.fail(f"user {name} is missing: run .ci/setup as root (it creates the CI user)")


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory the unprivileged users may use (pytest's tmp_path is root's alone).

    The tests take turns (a lock across xdist workers): each checks that the user has no process
    left, which another test's run of the same user would spoil."""
    with open(__file__) as lock:  # this very file: no lock file to leave behind
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = Path(tempfile.mkdtemp(prefix="pvcs-rootless-test-"))
        path.chmod(0o777)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def _suite(workdir: Path, owner: pwd.struct_passwd, tests: str = TESTS) -> Path:
    suite = workdir / "suite"
    suite.mkdir()
    (suite / "test_inner.py").write_text(tests)
    (suite / "pytest.ini").write_text("[pytest]\n")
    for path in (suite, *suite.iterdir()):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return suite


def _as_user(user: pwd.struct_passwd, argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "env", f"HOME={user.pw_dir}", f"USER={user.pw_name}", f"LOGNAME={user.pw_name}", *argv]


def _pytest(suite: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(suite), "--vsphere-simulator", "-p", "no:cacheprovider",
            f"--basetemp={suite}/basetemp", "-q", *extra]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSPHERE_", "PVCS_", "PYTEST_"))}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def _owned_leftovers(uid: int) -> list[str]:
    """Processes of ``uid`` and its temp directories of the simulator and the run."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                found.append(f"process {pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()!r}")
        except OSError:
            continue
    for path in Path(tempfile.gettempdir()).glob("vsphere-clone-*"):
        try:
            if path.stat().st_uid == uid:
                found.append(f"directory {path}")
        except OSError:
            continue
    return found


_NS_GET_USERNS = 0xB701  # ioctl_ns(2): the user namespace that owns a namespace
_NS_GET_OWNER_UID = 0xB704  # ioctl_ns(2): the uid that created a user namespace


def _netns_of_users_namespaces(uid: int) -> list[str]:
    """Network namespaces on the machine (of a process, or named in /run/netns) owned by a user
    namespace that ``uid`` created."""
    paths = [f"/proc/{pid}/ns/net" for pid in os.listdir("/proc") if pid.isdigit()]
    paths += [f"/run/netns/{name}" for name in netns_names()]
    found = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile
        try:
            userns = fcntl.ioctl(fd, _NS_GET_USERNS)
            try:
                owner = struct.unpack("I", fcntl.ioctl(userns, _NS_GET_OWNER_UID, b"\0" * 4))[0]
            finally:
                os.close(userns)
        except OSError:
            continue  # the initial namespaces have no owner to ask for
        finally:
            os.close(fd)
        if owner == uid:
            found.append(path)
    return found


def _wait_clean(uid: int, timeout: float = 10.0, *, only_processes: bool = False) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = [item for item in _owned_leftovers(uid) if not only_processes or item.startswith("process")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def test_main_job_as_an_unprivileged_user(workdir: Path) -> None:
    user = _user(CI_USER)
    suite = _suite(workdir, user)
    proc = subprocess.run(_as_user(user, _pytest(suite)), cwd=suite, env=_env(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout
    assert "warning" not in proc.stdout.lower()
    assert proc.stderr == ""  # nothing of the namespace's own (unshare, newuidmap, the sweep) shows
    assert _wait_clean(user.pw_uid) == []
    run_netns, guest_netns = (suite / "namespaces").read_text().split()
    host_netns = os.readlink("/proc/self/ns/net")
    assert len({run_netns, guest_netns, host_netns}) == 3  # the run's network was its own
    # No network namespace of the run is left: none that a process is in or a name on the host holds
    # belongs to a user namespace the CI user made (inode numbers are reused, so not compared).
    assert _netns_of_users_namespaces(user.pw_uid) == []


def test_sigterm_tears_the_run_down(workdir: Path) -> None:
    user = _user(CI_USER)
    suite = _suite(workdir, user, SLOW_TESTS)
    proc = subprocess.Popen(_as_user(user, _pytest(suite)), cwd=suite, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (suite / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # to the outer pytest alone, as a CI runner's cancel does
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, out[-3000:]
    assert "[destroyed]" in out, out[-3000:]  # teardown ran inside before the run ended
    assert _wait_clean(user.pw_uid) == []


def test_temp_prefixes_are_the_simulators_and_the_runs() -> None:
    from pytest_vsphere_clone.plugin.controller import RUN_DIR_PREFIX
    from pytest_vsphere_clone.simulator import userns
    from pytest_vsphere_clone.simulator.simulator import STATE_DIR_PREFIX

    assert userns.TEMP_PREFIXES == (STATE_DIR_PREFIX, RUN_DIR_PREFIX)


def test_ctrl_c_interrupts_the_run_once(workdir: Path) -> None:
    """^C on the run's terminal: the kernel signals the whole foreground group (the outer pytest, unshare,
    the init and the run itself). Only the run acts on it, once: it tears down and reports, as a plain
    run does (a second SIGINT forwarded by the outer processes would cut its teardown short)."""
    user = _user(CI_USER)
    suite = _suite(workdir, user, SLOW_TESTS)
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(_as_user(user, _pytest(suite)), cwd=suite, env=_env(), stdin=slave, stdout=slave,
                            stderr=slave, preexec_fn=controlling_terminal)
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 120
        while not (suite / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, output[-3000:]
            output += _read_some(master)
        os.write(master, b"\x03")  # ^C: the terminal driver sends SIGINT to the foreground process group
        while chunk := _read_some(master, until_eof=True):
            output += chunk
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    text = output.decode(errors="replace")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text[-3000:]
    assert "KeyboardInterrupt" in text and "[destroyed]" in text, text[-3000:]
    assert _wait_clean(user.pw_uid) == []


def _read_some(fd: int, *, until_eof: bool = False) -> bytes:
    """What the terminal has for us within 0.1 s (b"" at end of output: EIO once the run closed it)."""
    ready, _, _ = select.select([fd], [], [], 0.1 if not until_eof else 60)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def test_user_without_subordinate_ids_gets_one_line(workdir: Path) -> None:
    user = _user("nobody")
    suite = _suite(workdir, user)
    proc = subprocess.run(_as_user(user, _pytest(suite)), cwd=suite, env=_env(), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["ERROR: --vsphere-simulator without root runs in a user namespace, which needs 65535 "
                     "subordinate user and group ids for nobody in /etc/subuid and /etc/subgid: as root, "
                     "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody; or run as root"]
    assert _wait_clean(user.pw_uid) == []


def test_kernel_refusal_gets_one_line(workdir: Path) -> None:
    """A parent user namespace whose user.max_user_namespaces allows only the next one: the run's own
    is refused by the kernel (ENOSPC), as on a machine where the limit is 0."""
    user = _user(CI_USER)
    suite = _suite(workdir, user)
    inner = " ".join(f"'{a}'" for a in _pytest(suite))
    script = (f"echo 1 > /proc/sys/user/max_user_namespaces && exec unshare --user --map-user={user.pw_uid} "
              f"--map-group={user.pw_gid} -- {inner}")
    proc = subprocess.run(_as_user(user, ["unshare", "--user", "--map-root-user", "--", "sh", "-c", script]),
                          cwd=suite, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ERROR: --vsphere-simulator without root runs in a user namespace, which this "
                               "machine allows no more user namespaces (unshare: unshare failed: No space left")
    assert lines[0].endswith("as root, sysctl -w user.max_user_namespaces=15000; or run as root")
    assert _wait_clean(user.pw_uid) == []


CLIENT = """
import ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[2])
print(urllib.request.urlopen(sys.argv[1] + "/vimServiceVersions.xml", context=context, timeout=30).status)
"""


def _start_standalone(user: pwd.struct_passwd, workdir: Path,
                      env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``vsphere-clone simulator`` as ``user`` (a session of its own), and the facts it printed."""
    cli = str(Path(sys.executable).with_name("vsphere-clone"))
    proc = subprocess.Popen(_as_user(user, [cli, "simulator", "--profile", "fast"]), cwd=workdir, env=env or _env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    facts: dict[str, str] = {}
    while "NSENTER" not in facts:
        line = proc.stdout.readline()
        if not line:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(proc.communicate(timeout=30)[1][-3000:])
        key, _, value = line.rstrip("\n").partition("=")
        facts[key] = value
    return proc, facts


def test_a_killed_runs_files_are_removed_by_the_next(workdir: Path) -> None:
    """SIGKILL to a whole rootless run: its namespace dies with it, and its temp directory, which holds
    files of the user's subordinate ids (the guests' disks), goes at the next run's start."""
    user = _user(CI_USER)
    # A temp dir of the test's own: the sweeps of root runs beside it (which may remove what is in
    # /tmp) must not take the killed run's directory before the next run can show it does.
    tmp = workdir / "tmp"
    tmp.mkdir()
    os.chown(tmp, user.pw_uid, user.pw_gid)
    env = {**_env(), "TMPDIR": str(tmp)}
    proc, facts = _start_standalone(user, workdir, env)
    state_dir = Path(facts["CA_FILE"]).parents[1]
    assert state_dir.parent == tmp
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert _wait_clean(user.pw_uid, only_processes=True) == []
    foreign = [p for p in state_dir.rglob("*") if p.lstat().st_uid != user.pw_uid]
    assert foreign  # what the user alone could not remove
    proc, _ = _start_standalone(user, workdir, env)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert not state_dir.exists()
    assert list(tmp.iterdir()) == []
    assert _wait_clean(user.pw_uid) == []


def test_standalone_simulator_as_an_unprivileged_user(workdir: Path) -> None:
    """``vsphere-clone simulator`` without root: its own namespace, reached through the NSENTER= prefix."""
    user = _user(CI_USER)
    proc, facts = _start_standalone(user, workdir)
    try:
        client = subprocess.run(_as_user(user, [*facts["NSENTER"].split(), sys.executable, "-c", CLIENT,
                                                facts["URL"], facts["CA_FILE"]]),
                                env=_env(), capture_output=True, text=True, timeout=60, check=False)
        assert client.stdout.strip() == "200", client.stderr
        # From outside the namespace the simulator's address is not the simulator.
        outside = subprocess.run(_as_user(user, [sys.executable, "-c", CLIENT, facts["URL"], facts["CA_FILE"]]),
                                 env=_env(), capture_output=True, text=True, timeout=60, check=False)
        assert outside.returncode != 0
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    assert _wait_clean(user.pw_uid) == []


def test_forbidding_kernel_gets_one_line(workdir: Path) -> None:
    """unshare(CLONE_NEWUSER) refused with EPERM (as AppArmor's restriction and container seccomp
    profiles refuse it): here because the caller is in a chroot, which user_namespaces(7) forbids.
    The chroot is an rbind of / in a mount namespace of its own, so every path is the same."""
    user = _user(CI_USER)
    suite = _suite(workdir, user)
    jail = Path(tempfile.mkdtemp(prefix="pvcs-rootless-chroot-"))
    try:
        inner = " ".join(f"'{a}'" for a in _as_user(user, _pytest(suite)))
        script = f"mount --rbind / '{jail}' && exec chroot '{jail}' sh -c \"cd '{suite}' && exec {inner}\""
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
                              env=_env(), capture_output=True, text=True, timeout=120, check=False)
    finally:
        assert not os.path.ismount(jail)  # the rbind lived in the child's mount namespace only
        jail.rmdir()  # never rmtree: an rbind of / below it would take the machine with it
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ERROR: --vsphere-simulator without root runs in a user namespace, which this "
                               "machine forbids unprivileged user namespaces here (unshare: unshare failed: "
                               "Operation not permitted): as root, sysctl -w kernel.apparmor_restrict_")
    assert _wait_clean(user.pw_uid) == []
