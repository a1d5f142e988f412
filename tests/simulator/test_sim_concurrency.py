"""Eight clients, each with its own session, cloning at once leave a consistent inventory."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any

from pyVmomi import vim, vmodl
from sim_helpers import close, connect, disk_chain, linked_clone_spec, macs, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator

THREADS = 8
LINKED_PER_THREAD = 3
TEMPLATE_DISK = "[datastore1] linux-template/linux-template.vmdk"
FROZEN_DISK = "[datastore1] linux-frozen/linux-frozen.vmdk"
PC = vmodl.query.PropertyCollector


def test_eight_clients_cloning_at_once(sim: Simulator, si: Any) -> None:
    runner = wait(vm_by_name(si, "linux-template").CloneVM_Task(
        folder=vm_by_name(si, "linux-template").parent, name="runner",
        spec=linked_clone_spec(vm_by_name(si, "linux-template").snapshot.currentSnapshot, powerOn=True)))
    runner_chain = disk_chain(runner)
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def client(index: int) -> None:
        try:
            own = connect(sim)
            try:
                template = vm_by_name(own, "linux-template")
                frozen = vm_by_name(own, "linux-frozen")
                running = vm_by_name(own, "runner")
                snapshot = template.snapshot.currentSnapshot
                barrier.wait(10)
                tasks = [template.CloneVM_Task(folder=template.parent, name=f"t{index}-linked-{n}",
                                               spec=linked_clone_spec(snapshot))
                         for n in range(LINKED_PER_THREAD)]
                tasks.append(frozen.InstantClone_Task(spec=vim.vm.InstantCloneSpec(
                    name=f"t{index}-frozen", location=vim.vm.RelocateSpec())))
                tasks.append(running.InstantClone_Task(spec=vim.vm.InstantCloneSpec(
                    name=f"t{index}-running", location=vim.vm.RelocateSpec())))
                # Everyone also tries the same name: exactly one of the eight may win it.
                tasks.append(template.CloneVM_Task(folder=template.parent, name="contested",
                                                   spec=linked_clone_spec(snapshot)))
                for task in tasks[:-1]:
                    wait(task)
                with contextlib.suppress(vim.fault.DuplicateName):
                    wait(tasks[-1])
            finally:
                close(own)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,), name=f"clone-client-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors

    # The inventory as the client sees it, in one retrieval.
    content = si.content
    view = content.viewManager.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine],
                                                   recursive=True)
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "config.uuid", "runtime.powerState"])])
    result = content.propertyCollector.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions())
    view.DestroyView()
    rows = {o.obj: {p.name: p.val for p in o.propSet} for o in result.objects}
    names = [r["name"] for r in rows.values()]
    assert len(names) == len(set(names)), Counter(names).most_common(3)
    expected = {f"t{i}-linked-{n}" for i in range(THREADS) for n in range(LINKED_PER_THREAD)}
    expected |= {f"t{i}-frozen" for i in range(THREADS)} | {f"t{i}-running" for i in range(THREADS)}
    expected |= {"contested", "runner", "linux-template", "linux-frozen", "windows-template", "windows-frozen"}
    assert set(names) == expected
    assert sorted(names) == sim.vm_names()
    uuids = [r["config.uuid"] for r in rows.values()]
    assert len(uuids) == len(set(uuids))
    all_macs = [mac for vm in rows for mac in macs(vm)]
    assert len(all_macs) == len(set(all_macs)) == len(rows)

    by_name = {r["name"]: vm for vm, r in rows.items()}
    for i in range(THREADS):
        for n in range(LINKED_PER_THREAD):
            name = f"t{i}-linked-{n}"
            assert disk_chain(by_name[name]) == [TEMPLATE_DISK, f"[datastore1] {name}/{name}-000001.vmdk"]
        assert disk_chain(by_name[f"t{i}-frozen"]) == [FROZEN_DISK,
                                                       f"[datastore1] t{i}-frozen/t{i}-frozen-000001.vmdk"]
        assert rows[by_name[f"t{i}-frozen"]]["runtime.powerState"] == "poweredOn"
    # The frozen source got exactly one delta however many clients cloned it at once.
    frozen = by_name["linux-frozen"]
    assert len(disk_chain(frozen)) == 2 and frozen.runtime.instantCloneFrozen is True
    # The running source gained exactly one delta per clone; each clone branches from a distinct layer.
    source_chain = disk_chain(by_name["runner"])
    assert source_chain[:len(runner_chain)] == runner_chain
    assert len(source_chain) == len(runner_chain) + THREADS
    branch_points = []
    for i in range(THREADS):
        chain = disk_chain(by_name[f"t{i}-running"])
        assert chain[:-1] == source_chain[:len(chain) - 1]
        assert chain[-1] == f"[datastore1] t{i}-running/t{i}-running-000001.vmdk"
        branch_points.append(len(chain) - 1)
    assert sorted(branch_points) == list(range(len(runner_chain), len(runner_chain) + THREADS))
