"""The xdist worker's side of the run (the analogue of xdist's remote): joining the controller's run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .embedded import Facts
from .identity import RunIdentity


def join_run(workerinput: dict[str, Any]) -> tuple[RunIdentity, Facts]:
    """This worker's identity and the simulator's facts, from what the controller sent
    (see :meth:`.controller.Controller.worker_input`)."""
    identity = RunIdentity(run_id=str(workerinput["vsphere_run_id"]), run_dir=Path(workerinput["vsphere_run_dir"]),
                           worker_id=os.environ.get("PYTEST_XDIST_WORKER", "gw?"), is_worker=True)
    return identity, json.loads(workerinput.get("vsphere_facts", "{}"))
