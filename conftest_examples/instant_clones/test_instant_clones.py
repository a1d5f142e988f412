"""Function scope with instant clones: a fresh VM per test, forked from a running (frozen) source.

``fresh_linux_vm`` is a named fixture from pytest.ini:
``template=linux-frozen clone_type=instant scope=function``.
"""

from __future__ import annotations

import pytest

from pytest_vsphere_clone.plugin.clone import Clone


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_gets_its_own_pristine_clone(fresh_linux_vm: Clone, attempt: int) -> None:
    assert fresh_linux_vm.clone_type == "instant"
    # Whatever an earlier test did to its clone, this one starts clean.
    assert fresh_linux_vm.run("test ! -e /etc/dirtied-by-a-test").exit_status == 0
    assert fresh_linux_vm.run(f"echo {attempt} > /etc/dirtied-by-a-test").exit_status == 0
