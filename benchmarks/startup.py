"""pytest start-up with the plugin installed but unused, against the same run with it disabled.

Both runs collect one trivial test file (``--collect-only``), alternating to share the
machine's noise; prints medians and the difference. Target: < 30 ms more.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 15
TARGET_MS = 30.0


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", *args],
                   cwd=cwd, check=True, capture_output=True)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "test_trivial.py").write_text("def test_nothing():\n    pass\n")
        timed([], cwd)  # warm the file cache
        with_plugin: list[float] = []
        without: list[float] = []
        for _ in range(RUNS):
            with_plugin.append(timed([], cwd))
            without.append(timed(["-p", "no:vsphere_clone"], cwd))
    median_with, median_without = statistics.median(with_plugin), statistics.median(without)
    delta = median_with - median_without
    print(f"pytest --collect-only, median of {RUNS} runs each (ms)")
    print(f"  plugin installed, unused   {median_with:8.1f}")
    print(f"  plugin disabled            {median_without:8.1f}")
    print(f"  difference                 {delta:8.1f}   target < {TARGET_MS:.0f}   "
          f"{'OK' if delta < TARGET_MS else 'MISSED'}")
    print(f"  ratio                      {median_with / median_without:8.3f}")


if __name__ == "__main__":
    main()
