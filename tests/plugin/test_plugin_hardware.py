"""Hardware settings (issue 15): CPUs, memory, NICs' port groups, extra disks and extraConfig of a clone.

One inner run through the real pieces (the bundled simulator started by ``--vsphere-simulator``, the
pyVmomi client, namespace guests reached over SSH) checks what the run's settings, a marker and the
factory give a clone: in its configuration (``vm.config`` through pyVmomi) and in its guest (``nproc``,
``/proc/meminfo``, ``lsblk``, ``ip link``, ``vmware-rpctool info-get``). The refusals are inner runs that
stop at the start (one line each, nothing created), and the settings' resolution is checked directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import Inner, netns_names

from pytest_vsphere_clone.plugin.settings import Settings, SettingsError, overrides_from, parse_named_fixtures, resolve
from pytest_vsphere_clone.simulator.guests.host.host_registry import DEFAULT_REGISTRY_DIR

RUN_ARGS = ("--vsphere-simulator", "--vsphere-cpus", "2", "--vsphere-memory-mb", "2048", "--vsphere-disks", "8",
            "--vsphere-extra-config", "guestinfo.role=web")

INNER_TESTS = r'''
import pytest
from pyVmomi import vim

GB_KB = 1024 * 1024


def disks(clone):
    return [d for d in clone.vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def nics(clone):
    return [d for d in clone.vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def guest(clone, command):
    result = clone.run(command)
    assert result.exit_status == 0, (command, result.stderr)
    return result.stdout.strip()


def mem_total_mb(clone):
    line = [l for l in guest(clone, "cat /proc/meminfo").splitlines() if l.startswith("MemTotal:")][0]
    return int(line.split()[1]) // 1024


def lsblk(clone):
    """name -> size in bytes, as the guest's lsblk lists its disks."""
    rows = [l.split() for l in guest(clone, "lsblk -b -d -n -o NAME,SIZE").splitlines()]
    return {name: int(size) for name, size in rows}


def test_the_runs_hardware(vsphere_vm):
    config = vsphere_vm.vm.config
    assert (config.hardware.numCPU, config.hardware.memoryMB) == (2, 2048)
    first, extra = disks(vsphere_vm)
    assert (extra.controllerKey, extra.unitNumber, extra.capacityInKB) == (first.controllerKey, 1, 8 * GB_KB)
    assert extra.backing.thinProvisioned is True and extra.backing.fileName.endswith(f"{vsphere_vm.name}_1.vmdk")
    assert {o.key: o.value for o in config.extraConfig}["guestinfo.role"] == "web"
    # The guest sees them.
    assert guest(vsphere_vm, "nproc") == "2"
    assert guest(vsphere_vm, "grep -c ^processor /proc/cpuinfo") == "2"
    assert mem_total_mb(vsphere_vm) == 2048
    assert lsblk(vsphere_vm) == {"sda": first.capacityInKB * 1024, "sdb": 8 * 1024 ** 3}
    assert guest(vsphere_vm, "vmware-rpctool 'info-get guestinfo.role'") == "web"


@pytest.mark.vsphere(cpus=1, memory_mb=1024, disks=[4, 2], networks=["VM Network", "VM Network 2"])
def test_a_markers_hardware(vsphere_vm):
    config = vsphere_vm.vm.config
    assert (config.hardware.numCPU, config.hardware.memoryMB) == (1, 1024)
    assert [(d.unitNumber, d.capacityInKB // GB_KB) for d in disks(vsphere_vm)][1:] == [(1, 4), (2, 2)]
    first, second = nics(vsphere_vm)
    assert isinstance(second, vim.vm.device.VirtualVmxnet3) and second.unitNumber == first.unitNumber + 1
    assert [n.backing.deviceName for n in (first, second)] == ["VM Network", "VM Network 2"]
    assert [n.name for n in vsphere_vm.vm.network] == ["VM Network", "VM Network 2"]
    assert guest(vsphere_vm, "nproc") == "1"
    assert vsphere_vm.guest_run("nproc").stdout.strip() == "1"  # through Guest Operations too
    assert mem_total_mb(vsphere_vm) == 1024
    assert sorted(lsblk(vsphere_vm)) == ["sda", "sdb", "sdc"]
    # NIC 2 is the guest's eth1, with the MAC vSphere gave it.
    assert guest(vsphere_vm, "cat /sys/class/net/eth1/address") == second.macAddress
    # The run's extraConfig still applies: the marker left it alone.
    assert guest(vsphere_vm, "vmware-rpctool 'info-get guestinfo.role'") == "web"


def test_factory_overrides(vsphere_vm_factory):
    # An override replaces the run's value: no extra disk, and only the factory's extraConfig.
    clone = vsphere_vm_factory(cpus=1, disks=[], extra_config={"guestinfo.tier": "db"})
    assert clone.vm.config.hardware.numCPU == 1 and len(disks(clone)) == 1
    assert list(lsblk(clone)) == ["sda"]
    assert guest(clone, "vmware-rpctool 'info-get guestinfo.tier'") == "db"
    assert clone.run("vmware-rpctool 'info-get guestinfo.role'").exit_status != 0


def test_instant_clone_takes_extra_config_and_nic_moves(vsphere_vm_factory):
    # cpus=None etc.: the source's own hardware (an instant clone cannot change it).
    clone = vsphere_vm_factory(template="linux-frozen", clone_type="instant", cpus=None, memory_mb=None, disks=[],
                               networks=["VM Network 2"], extra_config=["guestinfo.role=cache"])
    assert clone.clone_type == "instant"
    assert [n.backing.deviceName for n in nics(clone)] == ["VM Network 2"]
    assert {o.key: o.value for o in clone.vm.config.extraConfig}["guestinfo.role"] == "cache"
    assert guest(clone, "vmware-rpctool 'info-get guestinfo.role'") == "cache"


def test_a_named_fixtures_hardware(big):
    assert (big.vm.config.hardware.numCPU, big.vm.config.hardware.memoryMB) == (1, 4096)
    assert [n.name for n in big.vm.network] == ["VM Network", "VM Network 2"]
    assert mem_total_mb(big) == 4096 and sorted(lsblk(big)) == ["sda", "sdb", "sdc"]
    assert guest(big, "vmware-rpctool 'info-get guestinfo.size'") == "big"


def test_factory_refusals_name_the_fix_and_create_nothing(vsphere_vm_factory):
    with pytest.raises(pytest.fail.Exception, match="port group 'Nope' of --vsphere-networks not found"):
        vsphere_vm_factory(networks=["Nope"])
    with pytest.raises(pytest.fail.Exception, match="an instant clone cannot add NICs .*: use --vsphere-clone-type "
                                                    "linked or full"):
        vsphere_vm_factory(template="linux-frozen", clone_type="instant", cpus=None, memory_mb=None, disks=[],
                           networks=["VM Network", "VM Network 2"])
'''


def orphans(before: set[str]) -> set[str]:
    """Namespaces that appeared since ``before`` and belong to no live simulator (others run beside us)."""
    return {name for name in netns_names() - before
            if not (Path(DEFAULT_REGISTRY_DIR) / f"{name.split('-')[0]}.json").exists()}


#: A named fixture with hardware of its own (quotes keep the port group names' spaces).
NAMED_FIXTURE_INI = ("[pytest]\nvsphere_fixtures =\n"
                     "    big: template=linux-template cpus=1 memory_mb=4096 disks=4 disks=2 "
                     'networks="VM Network,VM Network 2" extra_config=guestinfo.size=big\n')


@pytest.mark.guests
def test_run_marker_and_factory_hardware_reach_the_clone_and_its_guest(inner: Inner) -> None:
    before = netns_names()
    inner.pytester.makepyfile(test_hw=INNER_TESTS)
    inner.pytester.makeini(NAMED_FIXTURE_INI)
    outcome = inner.run(*RUN_ARGS, timeout=240)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=6)
    # The header says where each came from.
    assert outcome.lines_with("cpus=2 (cli), memory-mb=2048 (cli), disks=8 (cli), extra-config=guestinfo.role=*** "
                              "(cli)"), outcome.out  # extraConfig values may be tokens: never shown
    assert "guestinfo.role=web" not in outcome.out
    # Five clones (the run's, the marker's, the named fixture's, two from the factory): the refused ones
    # were never started.
    assert list(outcome.summary_states().values()) == ["destroyed"] * 5, outcome.out
    assert outcome.run_dirs() == [], outcome.out
    assert orphans(before) == set()


# --- refusals at the start: one line naming the fix, nothing created ------------------------------------------

@pytest.mark.parametrize(("args", "line"), [
    (("--vsphere-cpus", "0"), "invalid value '0' for --vsphere-cpus: must be at least 1"),
    (("--vsphere-memory-mb", "1001"), "invalid value '1001' for --vsphere-memory-mb: must be a multiple of 4, "
                                      "e.g. 1000 or 1004"),
    (("--vsphere-extra-config", "role"), "'role' is not KEY=VALUE with KEY made of letters, digits and . _ - : "
                                         "(e.g. guestinfo.role=web)"),
    (("--vsphere-clone-type", "instant", "--vsphere-template", "linux-frozen", "--vsphere-cpus", "2",
      "--vsphere-disks", "8"),
     "--vsphere-cpus and --vsphere-disks cannot apply to instant clones (an instant clone resumes its source's "
     "running hardware; InstantCloneSpec takes only extraConfig and NIC port groups): use --vsphere-clone-type "
     "linked or full, or drop --vsphere-cpus, --vsphere-disks"),
    (("--vsphere-networks", "Lab"), "port group 'Lab' of --vsphere-networks not found: this datacenter has "
                                    "'VM Network', 'VM Network 2'; name one of these"),
    (("--vsphere-clone-type", "instant", "--vsphere-template", "linux-frozen", "--vsphere-networks", "VM Network",
      "--vsphere-networks", "VM Network 2"),
     "--vsphere-networks names 2 NICs but linux-frozen has 1, and an instant clone cannot add NICs "
     "(InstantCloneSpec allows only edits of existing ones): use --vsphere-clone-type linked or full, or add the "
     "NICs to linux-frozen"),
], ids=["cpus-0", "memory-not-multiple-of-4", "extra-config-not-key-value", "instant-cpus-disks",
        "unknown-port-group", "instant-adds-nic"])
@pytest.mark.guests
def test_bad_hardware_fails_at_the_start_with_one_line(inner: Inner, args: tuple[str, ...], line: str) -> None:
    before = netns_names()
    inner.pytester.makepyfile(test_never="def test_never(vsphere_vm):\n    raise AssertionError('ran')\n")
    outcome = inner.run("--vsphere-simulator", *args, timeout=120)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    assert outcome.lines_with(f"ERROR: {line}") or outcome.lines_with(line), outcome.out
    assert "Traceback" not in outcome.out and "ran" not in outcome.out
    assert outcome.run_dirs() == [] and orphans(before) == set()


@pytest.mark.guests
def test_a_marker_asking_an_instant_clone_for_memory_is_a_collection_error(inner: Inner) -> None:
    inner.pytester.makepyfile(test_marked="""
import pytest

@pytest.mark.vsphere(template="linux-frozen", clone_type="instant", memory_mb=4096)
def test_marked(vsphere_vm):
    pass
""")
    outcome = inner.run("--vsphere-simulator", "--collect-only", "-q", timeout=120)
    assert outcome.ret == pytest.ExitCode.INTERRUPTED, outcome.out
    assert outcome.lines_with("test_marked.py::test_marked: @pytest.mark.vsphere: --vsphere-memory-mb cannot apply "
                              "to instant clones"), outcome.out
    assert outcome.lines_with("use --vsphere-clone-type linked or full"), outcome.out


# --- resolution: CLI, environment, ini, overrides, named fixtures ------------------------------------------------

def test_each_source_and_its_items() -> None:
    settings = resolve({"cpus": "4", "networks": ["VM Network", "Lab Net"], "disks": ["8", "16"]},
                       {"extra-config": ["guestinfo.a=1", "guestinfo.b=x y"]},
                       {"VSPHERE_MEMORY_MB": "4096", "VSPHERE_NETWORKS": "ignored"})
    assert (settings.cpus, settings.memory_mb, settings.networks, settings.disks) == \
        (4, 4096, ("VM Network", "Lab Net"), (8, 16))
    assert settings.extra_config == ("guestinfo.a=1", "guestinfo.b=x y")
    assert settings.sources["memory-mb"] == "env" and settings.sources["extra-config"] == "ini"
    # Port group names keep their spaces; an environment variable separates them with commas.
    env = resolve({}, {}, {"VSPHERE_NETWORKS": "VM Network,VM Network 2", "VSPHERE_EXTRA_CONFIG": "a=1 b=2,3"})
    assert env.networks == ("VM Network", "VM Network 2") and env.extra_config == ("a=1", "b=2,3")


def test_overrides_and_named_fixtures() -> None:
    assert overrides_from({"extra_config": {"guestinfo.role": "web"}, "disks": [8, 16], "cpus": 2,
                           "networks": "VM Network", "memory_mb": None}, "f") == \
        {"extra_config": ("guestinfo.role=web",), "disks": (8, 16), "cpus": 2, "networks": ("VM Network",),
         "memory_mb": None}
    [web] = parse_named_fixtures(['web: template=t networks="VM Network,VM Network 2" extra_config=a=1 '
                                  'extra_config=b=2 disks=8 cpus=2'], Settings()).values()
    assert (web.networks, web.extra_config, web.disks, web.cpus) == \
        (("VM Network", "VM Network 2"), ("a=1", "b=2"), (8,), 2)
    with pytest.raises(SettingsError, match=r"^vsphere_fixtures: db: --vsphere-cpus cannot apply to instant "):
        parse_named_fixtures(["db: template=t clone_type=instant cpus=2"], Settings())
    with pytest.raises(SettingsError, match=r"--vsphere-network=A and --vsphere-networks \(NIC 1 on B\) disagree"):
        resolve({"network": "A", "networks": ["B"]}, {}, {})
