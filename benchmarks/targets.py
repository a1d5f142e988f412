"""Every benchmark of the project in one run, then their targets side by side.

Runs startup.py, plugin_requests.py, scaling.py and phase_table.py (each prints its own
tables), and ends with one summary: every line where a script set a figure against its target
(``... target ... OK`` / ``MISSED``). Needs root (real guests). The phase table at time scale 1
(the seeds' own timings) takes about 12 minutes with its rows side by side:

    .venv/bin/python benchmarks/targets.py                  # everything, phase table at scale 1
    .venv/bin/python benchmarks/targets.py --quick          # scale 0.1, 3 cycles: a few minutes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> list[str]:
    """Run one benchmark script, echoing its output; its lines that state a target's outcome."""
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    started = time.monotonic()
    process = subprocess.run([sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, check=False)
    print(process.stdout, end="", flush=True)
    verdicts = [f"{script}: {' '.join(line.split())}" for line in process.stdout.splitlines()
                if line.rstrip().endswith(("OK", "MISSED")) or "OK)" in line or "MISSED)" in line]
    if process.returncode != 0:
        verdicts.append(f"{script}: FAILED (exit {process.returncode})")
    print(f"=== {script}: {time.monotonic() - started:.0f} s", flush=True)
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="phase table at time scale 0.1, 3 cycles")
    parser.add_argument("--json", type=Path, help="where the phase table writes its figures (for plot_phases.py)")
    args = parser.parse_args()
    phase_args = ["--cycles", "3", "--time-scale", "0.1"] if args.quick else ["--cycles", "10", "--time-scale", "1"]
    if args.json:
        phase_args += ["--json", str(args.json)]
    verdicts = [
        *run("startup.py"),
        *run("plugin_requests.py", "--time-scale", "0.1" if args.quick else "1"),
        *run("scaling.py"),
        *run("phase_table.py", *phase_args, "--parallel"),
    ]
    print("\n=== targets, side by side")
    for verdict in verdicts:
        print(f"  {verdict}")
    missed = sum("MISSED" in v or "FAILED" in v for v in verdicts)
    print(f"  {len(verdicts) - missed} of {len(verdicts)} held")


if __name__ == "__main__":
    main()
