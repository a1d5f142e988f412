"""SOAP requests of one linked-clone lifecycle with active discovery, counted by the simulator.

Runs pytest sessions against a bundled simulator (real guests) and splits the count into the
run's fixed cost (session, inventory read, collector, custom field) and the clone's own
lifecycle (clone, power on, discovery through Guest Operations, power off, destroy). Beside it,
per method, the same lifecycle as a plain pyVmomi script (``naive_flow.py``: attribute reads,
polling). Both run on the ``seed`` profile, scaled by ``--time-scale``, so polling costs what
it would on real timings. Targets: <= 25 requests per lifecycle, <= 0.5x the naive script's.
Needs root (real guests); the seeds' own timings (what targets.py runs, about 3 minutes) and a
tenth of them (about 30 s):

    .venv/bin/python benchmarks/plugin_requests.py --time-scale 1
    .venv/bin/python benchmarks/plugin_requests.py --time-scale 0.1

The per-method table is the one to compare before and after a change: the discovery looks follow
the guest's random DHCP time, so the total moves by about a request between runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from naive_flow import POLL, connect, disconnect, run_lifecycle

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

TARGET = 25
#: The plugin's requests per lifecycle over the naive script's.
RATIO_TARGET = 0.5

TEST = "def test_one(vsphere_vm):\n    assert vsphere_vm.run('true').exit_status == 0\n"


def simulator(time_scale: float) -> Simulator:
    """The simulator both measurements use: real guests, the seeds' timings scaled."""
    return Simulator(SimulatorConfig(guests=True, profile="seed", time_scale=time_scale))


def count(clones: int, time_scale: float) -> Counter[str]:
    """Requests of a run whose test module makes ``clones`` function-scoped clones."""
    with simulator(time_scale) as sim, tempfile.TemporaryDirectory() as tmp:
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


def count_naive(lifecycles: int, time_scale: float) -> dict[str, float]:
    """The naive script's requests per lifecycle, by method, averaged over ``lifecycles`` runs.

    Login and logout are its fixed cost, as they are the plugin's: counting starts after the
    login and ends before the logout.
    """
    with simulator(time_scale) as sim:
        facts = sim.connection_facts()
        si, content = connect(facts)
        try:
            sim.reset_counters()
            for _ in range(lifecycles):
                run_lifecycle(content, facts, poll=POLL * time_scale)
            counts = sim.counters()
        finally:
            disconnect(si)
    return {method: n / lifecycles for method, n in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.1,
                        help="the seed profile's time scale (polls are 1 s x this)")
    parser.add_argument("--naive-runs", type=int, default=5, help="naive lifecycles to average")
    parser.add_argument("--clones", type=int, default=5,
                        help="clones in the longer run: the lifecycle is (its count - a 1-clone run's) / (clones - 1); "
                             "more clones average out the discovery polls' dependence on the guest's random DHCP time")
    args = parser.parse_args()
    if args.clones < 2:
        parser.error("--clones must be at least 2 (the lifecycle is the difference from a 1-clone run)")
    extra = args.clones - 1
    one, many = count(1, args.time_scale), count(args.clones, args.time_scale)
    naive = count_naive(args.naive_runs, args.time_scale)
    # The honest per-clone figure is the marginal one: what each extra clone adds to a run.
    per_clone = (sum(many.values()) - sum(one.values())) / extra
    fixed = sum(one.values()) - per_clone
    lifecycle = per_clone
    naive_total = sum(naive.values())
    ratio = lifecycle / naive_total
    print(f"SOAP requests (simulator counts), linked clone + active discovery + teardown, "
          f"seed profile x {args.time_scale:g} (polls every {POLL * args.time_scale:g} s)")
    print(f"  whole run with 1 clone            {sum(one.values()):>5}")
    print(f"  run's fixed cost (once per run)   {fixed:>7.1f}")
    print(f"  one clone's lifecycle ({args.clones} vs 1)    {lifecycle:>7.1f}   target <= {TARGET}   "
          f"{'OK' if lifecycle <= TARGET else 'MISSED'}")
    print(f"  naive script's lifecycle          {naive_total:>7.1f}   (average of {args.naive_runs})")
    print(f"  plugin / naive                    {ratio:>7.2f}   target <= {RATIO_TARGET:.2f}   "
          f"{'OK' if ratio <= RATIO_TARGET else 'MISSED'}")
    print("  by method                          plugin/lifecycle  plugin once/run  naive/lifecycle")
    methods = sorted(set(one) | set(many) | set(naive),
                     key=lambda m: (-max((many[m] - one[m]) / extra, naive.get(m, 0.0)), m))
    for method in methods:
        marginal = (many[method] - one[method]) / extra
        print(f"    {method:<32} {marginal:>16.1f} {one[method] - marginal:>16.1f} {naive.get(method, 0.0):>16.1f}")
    print(f"    {'total':<32} {lifecycle:>16.1f} {fixed:>16.1f} {naive_total:>16.1f}")
    print("  (once/run = the 1-clone run minus the lifecycle; a negative entry is per-clone variation, such as\n"
          f"   discovery polls, that the {args.clones}-clone run happened to have more of)")


if __name__ == "__main__":
    main()
