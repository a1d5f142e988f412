"""SOAP requests of one linked-clone lifecycle with active discovery, counted by the simulator.

Runs a one-test pytest session against a bundled simulator (real guest) and splits the count
into the run's fixed cost (session, inventory read, collector, custom field) and the clone's own
lifecycle (clone, power on, discovery through Guest Operations, power off, destroy).
Target: <= 25 requests per lifecycle. Needs root (real guests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

TARGET = 25
#: Requests a run makes once, however many clones it creates.
RUN_FIXED = ("RetrieveServiceContent", "Login", "Logout", "CreateContainerView", "DestroyView",
             "RetrievePropertiesEx", "CreatePropertyCollector", "DestroyPropertyCollector", "AddCustomFieldDef",
             "Fetch", "HasPrivilegeOnEntities")

TEST = "def test_one(vsphere_vm):\n    assert vsphere_vm.run('true').exit_status == 0\n"


def count(clones: int) -> Counter[str]:
    """Requests of a run whose test module makes ``clones`` function-scoped clones."""
    with Simulator(SimulatorConfig(guests=True)) as sim, tempfile.TemporaryDirectory() as tmp:
        facts = sim.connection_facts()
        test_file = Path(tmp) / "test_lifecycle.py"
        test_file.write_text(f"import pytest\n\n@pytest.mark.parametrize('n', range({clones}))\n"
                             + TEST.replace("(vsphere_vm)", "(vsphere_vm, n)"))
        env = dict(os.environ, VSPHERE_PASSWORD=facts["PASSWORD"], VSPHERE_GUEST_PASSWORD=facts["GUEST_PASSWORD"])
        sim.reset_counters()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file),
             f"--vsphere-host={facts['HOST']}", f"--vsphere-user={facts['USER']}",
             f"--vsphere-ca-bundle={facts['CA_FILE']}", "--vsphere-template=linux-template",
             f"--vsphere-guest-user={facts['GUEST_USER']}", "--vsphere-scope=function"],
            env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"the measured run failed:\n{result.stdout[-2000:]}")
        return sim.counters()


def main() -> None:
    one, three = count(1), count(3)
    # The honest per-clone figure is the marginal one: what each extra clone adds to a run.
    per_clone = (sum(three.values()) - sum(one.values())) / 2
    fixed = sum(one.values()) - per_clone
    lifecycle = per_clone
    print("SOAP requests (simulator counts), linked clone + active discovery + teardown")
    print(f"  whole run with 1 clone            {sum(one.values()):>5}")
    print(f"  run's fixed cost (once per run)   {fixed:>7.1f}")
    print(f"  one clone's lifecycle (3 vs 1)    {lifecycle:>7.1f}   target <= {TARGET}   "
          f"{'OK' if lifecycle <= TARGET else 'MISSED'}")
    print("  by method (1 clone):")
    for method, n in sorted(one.items(), key=lambda item: (-item[1], item[0])):
        print(f"    {method:<32} {n:>3}{'  (mostly once per run)' if method in RUN_FIXED else ''}")


if __name__ == "__main__":
    main()
