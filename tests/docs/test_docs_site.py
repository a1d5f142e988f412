"""The documentation site: it builds cleanly, works offline, and its generated pages are current.

The build runs without ``-q``: ``mkdocs build --strict -q`` exits 0 even when a warning (a nav entry
to a missing page, a broken link) would abort a strict build, because ``-q`` filters warnings out
before MkDocs counts them (MkDocs 1.6).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: An asset the browser would fetch from elsewhere: a script, stylesheet, font, image or frame whose
#: address is absolute (http, https or protocol-relative), in HTML attributes or CSS ``url()``/``@import``.
_EXTERNAL_ASSET = [
    re.compile(r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=[\"']?(?:https?:)?//", re.I),
    re.compile(r"<link\b(?=[^>]*\brel=[\"']?(?:stylesheet|preload|prefetch|preconnect|dns-prefetch|icon|"
               r"modulepreload|manifest))[^>]*\bhref=[\"']?(?:https?:)?//", re.I),
    re.compile(r"""url\(\s*["']?(?:https?:)?//""", re.I),
    re.compile(r"""@import\s+(?:url\()?\s*["']?(?:https?:)?//""", re.I),
    re.compile(r"fonts\.(?:googleapis|gstatic)\.com|cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com", re.I),
]

#: Loads in the Material theme's script bundle that never happen here, each for its stated reason.
_CONDITIONAL_JS_LOADS = (
    "unpkg.com/resize-observer-polyfill",  # only where window.ResizeObserver is missing (no browser since 2020)
    "unpkg.com/mermaid@",  # only on a page with a mermaid diagram: checked below that none has one
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly into a temporary directory (a warning fails the build)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    warnings = [line for line in done.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert done.returncode == 0 and not warnings, done.stderr[-4000:]
    return out


def test_site_builds_every_page(site: Path) -> None:
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    built = {p.parent.name for p in site.glob("*/index.html")} | {"index"}
    assert pages <= built, f"pages not built: {sorted(pages - built)}"


def test_site_loads_nothing_from_the_network(site: Path) -> None:
    """No script, stylesheet, font or image from a CDN: the site works on an air-gapped runner.

    Links to other sites (``<a href="https://...">``) are fine: they are followed, not loaded.
    """
    found = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css", ".js") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for pattern in _EXTERNAL_ASSET:
            for match in pattern.finditer(text):
                excerpt = text[match.start():match.start() + 120]
                if path.suffix == ".js" and any(load in excerpt for load in _CONDITIONAL_JS_LOADS):
                    continue
                found.append(f"{path.relative_to(site)}: {excerpt!r}")
    assert not found, "external assets:\n" + "\n".join(found[:20])
    # The theme's conditional mermaid load must stay unreached: no page has a mermaid diagram.
    mermaid = [p.relative_to(site) for p in site.rglob("*.html") if 'class="mermaid"' in p.read_text()]
    assert not mermaid, f"mermaid diagrams load mermaid.js from unpkg.com: {mermaid}"


def test_code_is_highlighted_at_build_time(site: Path) -> None:
    """Pygments colours the code blocks in the HTML itself (no highlighting script from a CDN)."""
    quickstart = (site / "quickstart" / "index.html").read_text()
    assert 'class="highlight"' in quickstart and '<span class="k">def</span>' in quickstart


def test_api_page_documents_the_public_names(site: Path) -> None:
    """mkdocstrings rendered the fixtures, Clone, CommandResult and the hooks from their docstrings."""
    api = (site / "api" / "index.html").read_text()
    for name in ("plugin.fixtures.vsphere_vm", "plugin.fixtures.vsphere_vm_factory",
                 "plugin.fixtures.vsphere_service_instance", "plugin.clone.Clone.run", "plugin.clone.Clone.guest_run",
                 "results.CommandResult", "plugin.hookspecs.pytest_vsphere_clone_spec",
                 "plugin.hookspecs.pytest_vsphere_clone_ready", "plugin.hookspecs.pytest_vsphere_clone_before_destroy"):
        assert f'id="pytest_vsphere_clone.{name}"' in api, name
    assert "A disposable VM made for this run" in api
    assert "exit_status" in api and "clone_type" in api  # the dataclasses' fields, from Attributes sections


@pytest.mark.parametrize("generator", ["gen_settings.py", "gen_cli.py"])
def test_generated_pages_are_current(generator: str) -> None:
    """docs/settings.md and docs/cli.md match the option table and the argument parser."""
    done = subprocess.run([sys.executable, str(ROOT / "docs" / generator), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_cli_page_covers_every_command() -> None:
    from pytest_vsphere_clone.cli import COMMANDS

    page = (ROOT / "docs" / "cli.md").read_text()
    names = [module.__name__.rsplit(".", 1)[-1].removesuffix("_command") for module in COMMANDS]
    assert len(names) >= 6
    for name in names:
        assert f"\n## {name}\n" in page, name
