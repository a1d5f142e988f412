"""Every one-line error the project can print has a row on the troubleshooting page.

How (details in ``error_messages.py``): the source of ``src/pytest_vsphere_clone`` is parsed, not
run or grepped. Each place that raises or prints a user-facing error - a class derived from one of
the error roots (``VSphereCloneError``, ``CommandError``, ``SettingsError``, the SSH/WinRM errors,
...), ``pytest.fail``/``pytest.exit``/``pytest.UsageError``, the CLI's failure line, the doctor's FAIL
lines, ``print(..., file=sys.stderr)`` - yields a message *template*, the message with its run-time
values as placeholders (f-strings, local variables and helper functions are followed). Each template
must be described by a row of a table whose header starts with ``message`` in
docs/troubleshooting.md: the row's backticked first cell is how the message starts, ``...`` and
upper-case words such as ``HOST`` standing for values (the matching rules are in
``error_messages.matches``). A new error without a row fails here with the
template to add; a row whose message no longer exists fails too.

Templates that only forward a message made elsewhere (``f"{vm}: {exc}"``, ``str(exc)``) are checked
where that message is made.
"""

from __future__ import annotations

import error_messages as em


def test_the_walk_finds_the_errors_it_must() -> None:
    """The collection itself works: known messages from each kind of place are found."""
    texts = [t.text for t in em.code_messages()]

    def found(start: str) -> bool:
        return any(t.startswith(start) for t in texts)

    assert len(texts) > 100
    assert found("cannot reach vCenter ")                # an error class's own __init__ (client)
    assert found("the vCenter host is empty")            # a call site of the base class
    assert found("vSphere fixtures need a template")     # pytest.fail
    assert found("--vsphere-insecure and --vsphere-ca-bundle exclude each other")  # SettingsError
    assert found("no vCenter host given")                # the commands' UsageError
    assert found("interrupted")                          # the CLI's _fail(..., "interrupted", 130)
    assert found("unexpected ")                          # a local variable assigned in a branch
    assert any("has no snapshot, which a linked clone needs" in t for t in texts)  # f"{what}: ..."


def test_every_error_has_a_row() -> None:
    missing = list(em.undocumented(em.code_messages(), em.page_patterns()))
    assert not missing, (
        f"{len(missing)} error message(s) have no row in docs/troubleshooting.md (a table whose header starts "
        f"with 'message'; first cell: how the message starts, in backticks, ... for values):\n"
        + "\n".join(f"  {t.where}: `{t.shown[:160]}`" for t in missing))


def test_every_row_is_a_message_the_code_prints() -> None:
    templates = em.code_messages()
    stale = [p for p in em.page_patterns() if not em.is_live(p, templates)]
    assert not stale, "rows of docs/troubleshooting.md that match no message of the code:\n" + "\n".join(
        f"  line {p.line}: `{p.text}`" for p in stale)


def test_rows_are_specific() -> None:
    """A row must say enough to pick out its message: at least 6 letters that are not wildcards."""
    vague = [p for p in em.page_patterns() if p.literal_length < 6]
    assert not vague, [f"line {p.line}: {p.text}" for p in vague]


def test_matching() -> None:
    """Placeholders, example values and prefixes as the page uses them."""
    def t(text: str) -> em.Template:
        return em.Template(text.replace("{}", em.STAR), "here")

    def p(text: str) -> em.Pattern:
        return em.Pattern(text, 0)

    assert em.matches(p("template '...' not found"), t("template {} not found in the inventory"))
    assert em.matches(p("no usable ipv4 address for VM"), t("no usable {} address for VM {}"))
    assert em.matches(p("HOST is an ESXi host"), t("{} is an ESXi host reached directly"))
    assert em.matches(p("@pytest.mark.vsphere(...) needs the plugin"), t("{} needs the plugin switched on"))
    assert not em.matches(p("cannot reach vCenter ..."), t("{} is an ESXi host reached directly"))
    assert not em.matches(p("no usable IPv4 address at all"), t("no usable {} address for VM {}"))
    assert not em.matches(p("FILE::TEST: @pytest.mark.vsphere: ..."), t("collapse of {} failed: {}: check"))
    assert em.matches(p("put of PATH to VM ... failed"), t("{} of {} to VM {} over {} failed: {}"))
    assert not em.matches(p("put of PATH to VM ... failed"), t("{} of {} from VM {} over {} failed: {}"))
    assert not em.matches(p("interrupted"), t("{} is an ESXi host reached directly"))  # short rows stand in nothing
    assert not em.matches(p("... of ... to ... failed: ..."), t("{} is an ESXi host ({}), and ESXi offers no {}"))
