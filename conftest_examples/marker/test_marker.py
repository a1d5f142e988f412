"""``@pytest.mark.vsphere(**settings)``: a test's, class's or module's own settings for ``vsphere_vm``.

The run's template is ``linux-template`` (pytest.ini); the markers below change what ``vsphere_vm``
is for their tests only. Tests with equal settings share a clone within its scope.
"""

from __future__ import annotations

import pytest

from pytest_vsphere_clone.plugin.clone import Clone


@pytest.mark.vsphere(template="linux-frozen", clone_type="instant", scope="function")
@pytest.mark.parametrize("attempt", [1, 2])
def test_a_destructive_test_gets_a_fresh_instant_clone(vsphere_vm: Clone, attempt: int) -> None:
    assert (vsphere_vm.template, vsphere_vm.clone_type) == ("linux-frozen", "instant")
    assert vsphere_vm.run("test ! -e /etc/broken-by-a-test").exit_status == 0
    assert vsphere_vm.run(f"echo {attempt} > /etc/broken-by-a-test").exit_status == 0


@pytest.mark.vsphere(name_prefix="web")
class TestWebTier:
    """The class's marker applies to each of its tests; they share one clone (worker scope)."""

    def test_first(self, vsphere_vm: Clone) -> None:
        assert vsphere_vm.name.startswith("web-")
        assert vsphere_vm.run("hostname").exit_status == 0

    def test_second(self, vsphere_vm: Clone) -> None:
        # The closest marker wins key by key: the run's settings fill in the rest.
        assert (vsphere_vm.name.split("-")[0], vsphere_vm.template) == ("web", "linux-template")
