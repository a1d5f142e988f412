"""EventManager: events of tasks, logins, creation, cloning, power and removal; QueryEvents and collectors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator

EF = vim.event.EventFilterSpec


def _about(si: Any, entity: Any, recursion: str = "self", **fields: Any) -> list[Any]:
    return list(si.content.eventManager.QueryEvents(filter=EF(
        entity=EF.ByEntity(entity=entity, recursion=recursion), **fields)))


def _types(events: list[Any]) -> list[str]:
    return [type(e).__name__.rsplit(".", 1)[-1] for e in events]


def test_power_events_share_the_tasks_chain(sim: Simulator, si: Any) -> None:
    vm = vm_by_name(si, "linux-template")
    task = vm.PowerOnVM_Task()
    wait(task)
    chain = task.info.eventChainId
    events = si.content.eventManager.QueryEvents(filter=EF(eventChainId=chain))
    # Newest first; the TaskEvent opened the chain, its key is the chain's id.
    assert _types(events) == ["VmPoweredOnEvent", "VmStartingEvent", "TaskEvent"]
    task_event = events[-1]
    assert task_event.key == chain and task_event.info.task == task
    assert [e.key for e in events] == sorted((e.key for e in events), reverse=True)
    powered_on = events[0]
    assert powered_on.userName == sim.user
    assert powered_on.vm.vm == vm and powered_on.vm.name == "linux-template"
    assert powered_on.host.name == vm.runtime.host.name and powered_on.datacenter.name == "dc1"
    assert powered_on.computeResource.name == "cluster1"
    assert powered_on.fullFormattedMessage == f"linux-template on {vm.runtime.host.name} in dc1 is powered on"
    assert powered_on.createdTime >= task_event.createdTime

    off = vm.PowerOffVM_Task()
    wait(off)
    assert _types(si.content.eventManager.QueryEvents(filter=EF(eventChainId=off.info.eventChainId))) == \
        ["VmPoweredOffEvent", "VmStoppingEvent", "TaskEvent"]


def test_inventory_vms_were_created_by_the_system(sim: Simulator, si: Any) -> None:
    vm = vm_by_name(si, "windows-template")
    [created] = _about(si, vm, eventTypeId=["VmCreatedEvent"])
    assert created.userName == "" and created.fullFormattedMessage.startswith("Created virtual machine "
                                                                              "windows-template on esx")
    system_only = si.content.eventManager.QueryEvents(filter=EF(userName=EF.ByUsername(systemUser=True,
                                                                                         userList=[])))
    assert set(_types(system_only)) == {"VmCreatedEvent"}
    by_user = si.content.eventManager.QueryEvents(filter=EF(userName=EF.ByUsername(systemUser=False,
                                                                                     userList=[sim.user])))
    assert "VmCreatedEvent" not in _types(by_user) and "UserLoginSessionEvent" in _types(by_user)


def test_clone_and_destroy_events(sim: Simulator, si: Any) -> None:
    source = vm_by_name(si, "linux-template")
    task = source.CloneVM_Task(folder=source.parent, name="ev-clone",
                               spec=linked_clone_spec(source.snapshot.currentSnapshot))
    clone = wait(task)
    being = _about(si, source, eventTypeId=["VmBeingClonedEvent"])
    assert [(e.destName, e.destHost.name, e.chainId) for e in being] == \
        [("ev-clone", source.runtime.host.name, task.info.eventChainId)]
    [cloned] = _about(si, clone, eventTypeId=["VmClonedEvent"])
    assert cloned.sourceVm.vm == source and cloned.fullFormattedMessage == "Clone of linux-template completed"
    assert cloned.chainId == task.info.eventChainId

    folder = clone.parent
    destroy = clone.Destroy_Task()
    wait(destroy)
    [removed] = [e for e in _about(si, folder, "children", eventTypeId=["VmRemovedEvent"])]
    assert removed.vm.name == "ev-clone" and removed.chainId == destroy.info.eventChainId
    # The whole inventory, from the root folder down, holds the clone's story.
    story = _about(si, si.content.rootFolder, "all", eventTypeId=["VmBeingClonedEvent", "VmClonedEvent",
                                                                  "VmRemovedEvent"])
    assert _types(story) == ["VmRemovedEvent", "VmClonedEvent", "VmBeingClonedEvent"]
    # A host's events include its VMs' (recursion "all"), not with "self".
    host = source.runtime.host
    assert "VmClonedEvent" in _types(_about(si, host, "all"))
    assert "VmClonedEvent" not in _types(_about(si, host, "self"))


def test_instant_clone_posts_the_clone_events(sim: Simulator, si: Any) -> None:
    source = vm_by_name(si, "linux-frozen")
    clone = wait(source.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name="ev-instant",
                                                                              location=vim.vm.RelocateSpec())))
    [cloned] = _about(si, clone, eventTypeId=["VmClonedEvent"])
    assert cloned.sourceVm.name == "linux-frozen"


def test_time_type_and_count_filters(sim: Simulator, si: Any) -> None:
    manager = si.content.eventManager
    vm = vm_by_name(si, "linux-template")
    wait(vm.PowerOnVM_Task())
    latest = manager.latestEvent
    later = EF(time=EF.ByTime(beginTime=latest.createdTime + timedelta(seconds=1)))
    assert manager.QueryEvents(filter=later) == []
    window = EF(time=EF.ByTime(endTime=latest.createdTime))
    assert manager.QueryEvents(filter=window)[0].key == latest.key
    assert len(manager.QueryEvents(filter=EF(maxCount=2))) == 2
    typed = manager.QueryEvents(filter=EF(type=[vim.event.VmPoweredOnEvent]))
    assert _types(typed) == ["VmPoweredOnEvent"]
    quiet = manager.QueryEvents(filter=EF(eventTypeId=["VmPoweredOnEvent"], disableFullMessage=True))
    assert quiet[0].fullFormattedMessage is None
    with pytest.raises(vmodl.fault.InvalidArgument):
        manager.QueryEvents(filter=EF(eventTypeId=["VmPoweredOnEvent"], type=[vim.event.VmPoweredOnEvent]))
    with pytest.raises(vmodl.fault.InvalidArgument):
        manager.QueryEvents(filter=EF(maxCount=5000))


def test_login_logout_and_user_events(sim: Simulator, si: Any, client_factory: Callable[..., Any]) -> None:
    other = client_factory(sim)
    key = other.content.sessionManager.currentSession.key
    other.content.sessionManager.Logout()
    manager = si.content.eventManager
    [login] = [e for e in manager.QueryEvents(filter=EF(eventTypeId=["UserLoginSessionEvent"]))
               if e.sessionId == key]
    assert login.userName == sim.user and login.fullFormattedMessage.startswith(f"User {sim.user}@")
    [logout] = [e for e in manager.QueryEvents(filter=EF(eventTypeId=["UserLogoutSessionEvent"]))
                if e.sessionId == key]
    assert logout.callCount >= 1 and "logged out" in logout.fullFormattedMessage

    vm = vm_by_name(si, "linux-template")
    manager.LogUserEvent(entity=vm, msg="checked by a test")
    [note] = _about(si, vm, eventTypeId=["GeneralUserEvent"])
    assert note.message == "checked by a test" and note.fullFormattedMessage == "User logged event: checked by a test"
    manager.PostEvent(eventToPost=vim.event.GeneralUserEvent(
        key=0, chainId=0, createdTime=note.createdTime, userName="", message="posted",
        vm=vim.event.VmEventArgument(name=vm.name, vm=vm)))
    posted = _about(si, vm, eventTypeId=["GeneralUserEvent"])[0]
    assert posted.message == "posted" and posted.key > note.key and posted.chainId == posted.key
    assert manager.description.eventInfo and manager.maxCollector == 32
    assert "sourceVm" in [a.name for a in manager.RetrieveArgumentDescription(eventTypeId="VmClonedEvent")]


def test_collector_pages_and_scrolls(sim: Simulator, si: Any) -> None:
    manager = si.content.eventManager
    vm = vm_by_name(si, "linux-template")
    for _ in range(3):
        wait(vm.PowerOnVM_Task())
        wait(vm.PowerOffVM_Task())
    every = list(reversed(_about(si, vm)))  # oldest first: created, then 3 x (task, starting, on, task, ...)
    assert len(every) == 19
    collector = manager.CreateCollectorForEvents(filter=EF(entity=EF.ByEntity(entity=vm, recursion="self")))
    assert collector.initialized is True
    page = collector.latestPage
    assert [e.key for e in page] == [e.key for e in reversed(every)][:10]  # default page: the 10 newest
    collector.SetCollectorPageSize(maxCount=3)
    assert [e.key for e in collector.latestPage] == [e.key for e in every[-3:]][::-1]

    # A new collector reads from the oldest event (RewindCollector is the default position).
    assert [e.key for e in collector.ReadNextEvents(maxCount=5)] == [e.key for e in every[:5]]
    assert [e.key for e in collector.ReadNextEvents(maxCount=5)] == [e.key for e in every[5:10]]
    assert [e.key for e in collector.ReadPreviousEvents(maxCount=2)] == [every[9].key, every[8].key]
    collector.RewindCollector()
    assert collector.ReadPreviousEvents(maxCount=5) == []
    assert collector.ReadNextEvents(maxCount=1)[0].key == every[0].key
    collector.ResetCollector()  # just before the latest page: reading back gives what precedes it
    assert [e.key for e in collector.ReadPreviousEvents(maxCount=2)] == [every[-4].key, every[-5].key]
    collector.ResetCollector()
    assert [e.key for e in collector.ReadNextEvents(maxCount=10)] == [e.key for e in every[-3:]]
    assert collector.ReadNextEvents(maxCount=10) == []
    with pytest.raises(vmodl.fault.InvalidArgument):
        collector.ReadNextEvents(maxCount=0)

    wait(vm.PowerOnVM_Task())
    assert type(collector.latestPage[0]).__name__.endswith("VmPoweredOnEvent")
    assert len(collector.ReadNextEvents(maxCount=10)) == 3  # the new task, starting and powered on
    collector.DestroyCollector()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        collector.ReadNextEvents(maxCount=1)


def test_collector_latest_page_reaches_a_property_filter(sim: Simulator, si: Any) -> None:
    manager = si.content.eventManager
    collector = manager.CreateCollectorForEvents(filter=EF(eventTypeId=["VmPoweredOnEvent"]))
    pc = vmodl.query.PropertyCollector
    collector_pc = si.content.propertyCollector.CreatePropertyCollector()
    collector_pc.CreateFilter(pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=collector)],
                                            propSet=[pc.PropertySpec(type=vim.event.EventHistoryCollector,
                                                                     pathSet=["latestPage"])]), False)
    first = collector_pc.WaitForUpdatesEx(version="", options=pc.WaitOptions(maxWaitSeconds=5))
    [initial] = [c.val for f in first.filterSet for o in f.objectSet for c in o.changeSet]
    assert list(initial) == []
    wait(vm_by_name(si, "linux-template").PowerOnVM_Task())
    update = collector_pc.WaitForUpdatesEx(version=first.version, options=pc.WaitOptions(maxWaitSeconds=10))
    assert update is not None
    [page] = [c.val for f in update.filterSet for o in f.objectSet for c in o.changeSet]
    assert [type(e).__name__.rsplit(".", 1)[-1] for e in page] == ["VmPoweredOnEvent"]
    collector_pc.DestroyPropertyCollector()


def test_collectors_belong_to_their_session(sim: Simulator, si: Any, client_factory: Callable[..., Any]) -> None:
    collector = si.content.eventManager.CreateCollectorForEvents(filter=EF())
    other = client_factory(sim)
    stranger = vim.event.EventHistoryCollector(collector._moId, other._stub)
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        stranger.ReadNextEvents(maxCount=1)
    assert collector.ReadNextEvents(maxCount=1)
