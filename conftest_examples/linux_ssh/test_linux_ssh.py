"""A Linux suite over SSH: what an Ansible role or OS-image test looks like with vsphere_vm."""

from __future__ import annotations

from pytest_vsphere_clone.plugin.clone import Clone


def test_the_clone_answers_at_its_discovered_address(vsphere_vm: Clone) -> None:
    result = vsphere_vm.run("ip -4 -o address show scope global")
    assert result.exit_status == 0
    assert vsphere_vm.ip in result.stdout


def test_ssh_client_is_ready_and_pinned(vsphere_vm: Clone) -> None:
    client = vsphere_vm.ssh()
    _, stdout, _ = client.exec_command("uname -s")
    assert stdout.read().decode().strip() == "Linux"


def test_a_file_written_over_sftp_is_seen_by_guest_operations(vsphere_vm: Clone) -> None:
    with vsphere_vm.ssh().open_sftp() as sftp, sftp.open("/tmp/from-sftp.txt", "w") as handle:
        handle.write("written over sftp\n")
    assert vsphere_vm.guest_run("cat /tmp/from-sftp.txt").stdout == "written over sftp\n"


def test_instant_clones_are_fresh_per_test(fresh_linux_vm: Clone) -> None:
    assert fresh_linux_vm.clone_type == "instant"
    assert fresh_linux_vm.run("test ! -e /tmp/left-by-another-test").exit_status == 0
    fresh_linux_vm.run("touch /tmp/left-by-another-test")


def test_failures_show_the_command_output(vsphere_vm: Clone) -> None:
    result = vsphere_vm.run("echo to-stderr >&2; exit 3")
    assert (result.exit_status, result.stderr.strip()) == (3, "to-stderr")
