"""The quickstart's code passes on the bundled simulator, as the page says it does.

Every ``python`` block of docs/quickstart.md must start with a comment naming its file
(``# test_quickstart.py``); blocks naming the same file are joined in page order. The files are
written to a temporary directory and run there by a separate ``pytest --vsphere-simulator`` (the
command the page tells readers to type), with no ``VSPHERE_*`` variable of this environment. The
run must pass every test the page shows: a block that stops working fails here, and a block
without a file name fails too, so no code on the page escapes the check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "quickstart.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)
_FILE_COMMENT = re.compile(r"#\s*([\w./-]+\.py)\s*$")


def quickstart_files() -> dict[str, str]:
    """File name -> source, from the page's python blocks."""
    files: dict[str, str] = {}
    for number, match in enumerate(_BLOCK.finditer(PAGE.read_text()), 1):
        first, _, body = match.group(1).partition("\n")
        named = _FILE_COMMENT.fullmatch(first.strip())
        assert named, f"python block {number} of {PAGE.name} must start with '# FILE.py', not {first!r}"
        files[named.group(1)] = files.get(named.group(1), "") + body + "\n"
    return files


def _test_names(source: str) -> list[str]:
    return re.findall(r"^def (test_\w+)", source, re.M)


def test_quickstart_blocks_name_their_files() -> None:
    files = quickstart_files()
    assert "test_quickstart.py" in files
    assert len(_test_names(files["test_quickstart.py"])) >= 3


def test_quickstart_passes_on_the_simulator(tmp_path: Path) -> None:
    files = quickstart_files()
    for name, source in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        # Imports may follow code when blocks are joined: hoist nothing, just compile-check the whole.
        compile(source, str(target), "exec")
        target.write_text(source)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # this directory is the inner run's rootdir
    env = {key: value for key, value in os.environ.items() if not key.startswith("VSPHERE_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "--vsphere-simulator", "-p", "no:cacheprovider",
                           "-rA", *files], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    expected = [name for source in files.values() for name in _test_names(source)]
    for name in expected:
        assert re.search(rf"^PASSED \S*::{name}\b", output, re.M), f"{name} did not pass:\n{output[-6000:]}"
