"""The hardware settings against govmomi's vcsim: port groups found by name on a server nobody here wrote
(standard and distributed ones), and a clone spec carrying CPUs, memory, NICs, a disk and extraConfig
that a foreign server accepts.

vcsim (0.24) applies the spec's extraConfig and device changes (a NIC on its distributed port group,
a disk) but not ``numCPUs``/``memoryMB`` of a clone's ConfigSpec (VirtualMachineCloneSpec.config:
"Specifies the virtual machine configuration for the clone ... changes to the configuration"): its
clone keeps the source's 1 CPU and 32 MB. The tier checks what vcsim applies; the simulator's tests
(tests/plugin/test_plugin_hardware.py) check the rest.
"""

from __future__ import annotations

from test_plugin_vcsim import assert_suite_passed, assert_usage_error, write_suite
from vcsim_fixtures import VcsimTier

#: One test that records what its clone's configuration says.
INNER_HARDWARE = '''
import json
import os

from pyVmomi import vim


def test_hardware(vsphere_vm, request):
    config = vsphere_vm.vm.config
    line = {"test": request.node.nodeid, "vm": vsphere_vm.name, "ip": vsphere_vm.ip,
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "master"),
            "echo": vsphere_vm.run("echo conformance").stdout.strip(),
            "cpus": config.hardware.numCPU, "memory_mb": config.hardware.memoryMB,
            "extra": {o.key: o.value for o in config.extraConfig or () if o.key.startswith("guestinfo.")},
            "nics": [type(d.backing).__name__ for d in config.hardware.device
                     if isinstance(d, vim.vm.device.VirtualEthernetCard)],
            "disks": len([d for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)])}
    with open(os.environ["CONFORMANCE_RECORDS"], "a") as out:
        out.write(json.dumps(line) + "\\n")
'''


def test_hardware_settings_reach_a_clone_on_vcsim(vcsim_tier: VcsimTier) -> None:
    (vcsim_tier.shell.workdir / "test_hw.py").write_text(INNER_HARDWARE)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args("linked"), "--vsphere-cpus=2",
                                      "--vsphere-memory-mb=1024", "--vsphere-disks=1",
                                      "--vsphere-extra-config=guestinfo.role=web", "--vsphere-networks=VM Network",
                                      "--vsphere-networks=DC0_DVPG0")
    [record] = assert_suite_passed(vcsim_tier, outcome, tests=1)
    assert record["extra"] == {"guestinfo.role": "web"}, record
    # NIC 1 stays on its standard port group; NIC 2 is added on the distributed one (port connection backing).
    assert [name.rsplit(".", 1)[-1] for name in record["nics"]] == ["NetworkBackingInfo",
                                                                    "DistributedVirtualPortBackingInfo"], record
    assert record["disks"] == 2, record  # the template's disk and the new thin one


def test_an_unknown_port_group_lists_the_servers(vcsim_tier: VcsimTier) -> None:
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args(), "--vsphere-networks=Backend")
    line = assert_usage_error(vcsim_tier, outcome, "port group 'Backend' of --vsphere-networks not found")
    # vcsim's standard port group and its distributed one are both named.
    assert "'VM Network'" in line and "'DC0_DVPG0'" in line, line
