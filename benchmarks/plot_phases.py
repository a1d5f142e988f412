"""The phase table as a picture: measured phases per row, stacked, beside the profile's limit.

Reads the JSON that ``phase_table.py --json`` writes and draws one horizontal bar per row
(average clone / power-on / boot / IP, then connect, hatched, as it is outside the limit) with
the limit marked, and the seeds' own figures for reference. Needs matplotlib
(``pip install -e '.[bench]'``):

    .venv/bin/python benchmarks/plot_phases.py phases.json docs/img/phases.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PHASES = ("clone", "power_on", "boot", "ip")
COLOURS = {"clone": "#4c72b0", "power_on": "#8172b2", "boot": "#dd8452", "ip": "#55a868", "connect": "#c0c0c0"}
#: The seeds' Windows rows (kitchen-vcenter): clone + boot + IP, in seconds.
SEEDS = {"windows linked + tools": 1.1 + 26.3 + 30.2, "windows linked + active": 1.0 + 35.0 + 11.2,
         "windows instant (frozen) + active": 4.3 + 0.0 + 13.7}


def plot(figures: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    rows = figures["rows"]
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(rows) + 1.6))
    labels = []
    seed_labelled = False
    for y, row in enumerate(rows):
        label = " ".join(row["row"].split())
        labels.append(f"{label}  ({row['ratio']:.2f} x limit)")
        left = 0.0
        for phase in (*PHASES, "connect"):
            width = row["phases"][phase]["avg"]
            ax.barh(y, width, left=left, color=COLOURS[phase], hatch="//" if phase == "connect" else None,
                    edgecolor="white", label=phase if y == 0 else None)
            left += width
        limit = row["phases"]["total"]["limit"]
        ax.plot([limit, limit], [y - 0.4, y + 0.4], color="black", linewidth=2, label="limit" if y == 0 else None)
        seed = SEEDS.get(label)
        if seed is not None:
            scaled = seed * figures["time_scale"]
            ax.plot([scaled], [y], marker="v", color="red", markersize=9,
                    label=None if seed_labelled else "seeds (kitchen-vcenter, clone + boot + IP)")
            seed_labelled = True
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"seconds (seed profile x {figures['time_scale']}, average of {figures['cycles']} cycles)")
    ax.set_title("Clone to ready, by phase, against the profile's own time (limit)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", type=Path, help="JSON written by phase_table.py --json")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    plot(json.loads(args.figures.read_text()), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
