"""Who this process is in the run: the run's id and directory, and its worker id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunIdentity:
    """The run (id, directory shared by its processes) and this process's place in it."""

    run_id: str
    run_dir: Path
    #: The xdist worker id (``gw0``...), or ``master`` for the controller or a run without xdist.
    worker_id: str = "master"
    #: This process is an xdist worker (it makes clones; the controller owns the run).
    is_worker: bool = False
    #: This process controls xdist workers.
    controls_workers: bool = False
