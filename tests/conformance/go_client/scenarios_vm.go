package main

import (
	"fmt"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// scenarioLinkedClone: CloneVM_Task from a snapshot with createNewChildDiskBacking.
func scenarioLinkedClone(r *run) {
	r.login()
	var clone *object.VirtualMachine
	r.must("CloneVM_Task", func() (string, error) {
		var err error
		clone, err = r.linkedClone("linux-template", "go-linked")
		if err != nil {
			return "", err
		}
		return "clone " + clone.Reference().Value, nil
	})
	r.check("clone by path", func() (string, error) {
		found, err := r.vm("go-linked")
		if err != nil {
			return "", err
		}
		if found.Reference() != clone.Reference() {
			return "", fmt.Errorf("/dc1/vm/go-linked is %s, the task made %s", found.Reference(), clone.Reference())
		}
		return found.InventoryPath, nil
	})
	r.check("clone properties", func() (string, error) {
		var m mo.VirtualMachine
		err := clone.Properties(r.ctx, clone.Reference(), []string{"name", "parent", "config", "runtime",
			"snapshot", "resourcePool", "datastore"}, &m)
		if err != nil {
			return "", err
		}
		switch {
		case m.Name != "go-linked":
			return "", fmt.Errorf("name %q", m.Name)
		case m.Parent == nil || m.Parent.Type != "Folder":
			return "", fmt.Errorf("parent %v, want the vm folder", m.Parent)
		case m.Config == nil || m.Config.Template:
			return "", fmt.Errorf("config %v: want a VM, not a template", m.Config)
		case m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff:
			// CloneSpec.powerOn: "Specifies whether or not the new VirtualMachine should be powered on".
			return "", fmt.Errorf("runtime.powerState %s, want poweredOff (powerOn false)", m.Runtime.PowerState)
		case m.Runtime.Host == nil:
			return "", fmt.Errorf("runtime.host unset")
		case m.ResourcePool == nil:
			return "", fmt.Errorf("resourcePool unset")
		case len(m.Datastore) == 0:
			return "", fmt.Errorf("datastore empty")
		case m.Snapshot != nil:
			return "", fmt.Errorf("a clone from a snapshot has snapshots of its own: %+v", m.Snapshot)
		}
		return fmt.Sprintf("poweredOff VM on %s in %s", m.Runtime.Host.Value, m.Parent.Value), nil
	})
	r.check("child disk", func() (string, error) {
		devices, err := clone.Device(r.ctx)
		if err != nil {
			return "", err
		}
		disks := devices.SelectByType((*types.VirtualDisk)(nil))
		if len(disks) == 0 {
			return "", fmt.Errorf("the clone has no virtual disk")
		}
		disk := disks[0].(*types.VirtualDisk)
		backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			return "", fmt.Errorf("disk backing is %T", disk.Backing)
		}
		// createNewChildDiskBacking: "Create a new child disk backing on the destination datastore. None of the
		// virtual disk's existing files should be moved from their current locations."
		if backing.Parent == nil {
			return "", fmt.Errorf("disk %s has no parent backing: a full copy, not a linked clone", backing.FileName)
		}
		return fmt.Sprintf("%s -> %s", backing.FileName, backing.Parent.FileName), nil
	})
	r.check("source unchanged", func() (string, error) {
		src, err := r.vm("linux-template")
		if err != nil {
			return "", err
		}
		snapshot, err := src.FindSnapshot(r.ctx, "base")
		if err != nil {
			return "", err
		}
		return "snapshot base " + snapshot.Value, nil
	})
}

// scenarioInstantClone: InstantClone_Task of the frozen source linux-frozen.
func scenarioInstantClone(r *run) {
	r.login()
	var clone *object.VirtualMachine
	r.must("InstantClone_Task", func() (string, error) {
		var err error
		clone, err = r.instantClone("linux-frozen", "go-instant")
		if err != nil {
			return "", err
		}
		return "clone " + clone.Reference().Value, nil
	})
	r.check("running", func() (string, error) {
		// An instant clone "is powered on and resumes from the same running point as the source".
		return r.expectPowerState(clone, types.VirtualMachinePowerStatePoweredOn)
	})
	r.check("same host", func() (string, error) {
		src, err := r.vm("linux-frozen")
		if err != nil {
			return "", err
		}
		srcHost, err := src.HostSystem(r.ctx)
		if err != nil {
			return "", err
		}
		host, err := clone.HostSystem(r.ctx)
		if err != nil {
			return "", err
		}
		if host.Reference() != srcHost.Reference() {
			return "", fmt.Errorf("clone on %s, source on %s", host.Reference(), srcHost.Reference())
		}
		return "on " + host.Reference().Value, nil
	})
	r.check("tools", func() (string, error) {
		return r.waitToolsRunning(clone)
	})
	r.check("guest address", func() (string, error) {
		ip, err := clone.WaitForIP(r.ctx, true)
		if err != nil {
			return "", err
		}
		return "guest.ipAddress " + ip, nil
	})
	r.check("source still frozen", func() (string, error) {
		src, err := r.vm("linux-frozen")
		if err != nil {
			return "", err
		}
		return r.expectPowerState(src, types.VirtualMachinePowerStatePoweredOn)
	})
	r.check("power off and destroy", func() (string, error) {
		if _, err := r.waitTask(clone.PowerOff(r.ctx)); err != nil {
			return "", fmt.Errorf("PowerOffVM_Task: %w", err)
		}
		if _, err := r.waitTask(clone.Destroy(r.ctx)); err != nil {
			return "", fmt.Errorf("Destroy_Task: %w", err)
		}
		return "gone", nil
	})
}

// scenarioPower: power operations on a linked clone, as govc vm.power runs them.
func scenarioPower(r *run) {
	r.login()
	var vm *object.VirtualMachine
	r.must("linked clone", func() (string, error) {
		var err error
		vm, err = r.linkedClone("linux-template", "go-power")
		if err != nil {
			return "", err
		}
		return vm.Reference().Value, nil
	})
	r.must("PowerOnVM_Task", func() (string, error) {
		if _, err := r.waitTask(vm.PowerOn(r.ctx)); err != nil {
			return "", err
		}
		return r.expectPowerState(vm, types.VirtualMachinePowerStatePoweredOn)
	})
	r.check("tools after boot", func() (string, error) {
		return r.waitToolsRunning(vm)
	})
	r.check("guest address", func() (string, error) {
		ip, err := vm.WaitForIP(r.ctx, true)
		if err != nil {
			return "", err
		}
		return "guest.ipAddress " + ip, nil
	})
	r.check("PowerOnVM_Task when on", func() (string, error) {
		// PowerOnVM_Task faults InvalidPowerState "if the power state is poweredOn".
		_, err := r.waitTask(vm.PowerOn(r.ctx))
		return expectFault(err, "InvalidPowerState")
	})
	r.check("RebootGuest", func() (string, error) {
		if err := vm.RebootGuest(r.ctx); err != nil {
			return "", err
		}
		if _, err := r.expectPowerState(vm, types.VirtualMachinePowerStatePoweredOn); err != nil {
			return "", err
		}
		return r.waitToolsRunning(vm)
	})
	r.check("ResetVM_Task", func() (string, error) {
		before, err := bootTime(r, vm)
		if err != nil {
			return "", err
		}
		if _, err := r.waitTask(vm.Reset(r.ctx)); err != nil {
			return "", err
		}
		after, err := bootTime(r, vm)
		if err != nil {
			return "", err
		}
		if !after.After(before) {
			return "", fmt.Errorf("runtime.bootTime %s after reset, %s before: want later", after, before)
		}
		if _, err := r.expectPowerState(vm, types.VirtualMachinePowerStatePoweredOn); err != nil {
			return "", err
		}
		return r.waitToolsRunning(vm)
	})
	r.check("ShutdownGuest", func() (string, error) {
		if err := vm.ShutdownGuest(r.ctx); err != nil {
			return "", err
		}
		// ShutdownGuest returns once the request is issued; the guest powers off in its own time.
		if err := vm.WaitForPowerState(r.ctx, types.VirtualMachinePowerStatePoweredOff); err != nil {
			return "", err
		}
		return "poweredOff", nil
	})
	r.check("PowerOffVM_Task", func() (string, error) {
		// Independent of the step before: the guest's shutdown ends first (read by polling, not by govmomi's
		// update-based wait), then the VM is powered on again for PowerOffVM_Task.
		if err := r.pollPowerState(vm, types.VirtualMachinePowerStatePoweredOff); err != nil {
			return "", fmt.Errorf("after ShutdownGuest: %w", err)
		}
		if _, err := r.waitTask(vm.PowerOn(r.ctx)); err != nil {
			return "", fmt.Errorf("PowerOnVM_Task: %w", err)
		}
		if _, err := r.waitTask(vm.PowerOff(r.ctx)); err != nil {
			return "", err
		}
		return r.expectPowerState(vm, types.VirtualMachinePowerStatePoweredOff)
	})
	r.check("PowerOffVM_Task when off", func() (string, error) {
		// PowerOffVM_Task faults InvalidPowerState "if the power state is not poweredOn".
		_, err := r.waitTask(vm.PowerOff(r.ctx))
		return expectFault(err, "InvalidPowerState")
	})
}

func bootTime(r *run, vm *object.VirtualMachine) (time.Time, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(r.ctx, vm.Reference(), []string{"runtime.bootTime"}, &m); err != nil {
		return time.Time{}, err
	}
	if m.Runtime.BootTime == nil {
		return time.Time{}, fmt.Errorf("runtime.bootTime unset on a running VM")
	}
	return *m.Runtime.BootTime, nil
}

// scenarioDestroy: Destroy_Task removes a VM from the inventory and its reference goes stale.
func scenarioDestroy(r *run) {
	r.login()
	var vm *object.VirtualMachine
	r.must("linked clone", func() (string, error) {
		var err error
		vm, err = r.linkedClone("linux-template", "go-destroy")
		if err != nil {
			return "", err
		}
		return vm.Reference().Value, nil
	})
	r.must("Destroy_Task", func() (string, error) {
		if _, err := r.waitTask(vm.Destroy(r.ctx)); err != nil {
			return "", err
		}
		return "done", nil
	})
	r.check("gone from inventory", func() (string, error) {
		_, err := r.vm("go-destroy")
		if _, ok := err.(*find.NotFoundError); !ok {
			return "", fmt.Errorf("want find.NotFoundError for /dc1/vm/go-destroy, got %v", err)
		}
		vms, err := r.finder.VirtualMachineList(r.ctx, "*")
		if err != nil {
			return "", err
		}
		if len(vms) != len(defaultVMs) {
			return "", fmt.Errorf("%d VMs left, want %d", len(vms), len(defaultVMs))
		}
		return "not found", nil
	})
	r.check("stale reference", func() (string, error) {
		// RetrieveProperties of a destroyed object faults ManagedObjectNotFound.
		err := property.DefaultCollector(r.c).RetrieveOne(r.ctx, vm.Reference(), []string{"name"},
			&mo.VirtualMachine{})
		return expectFault(err, "ManagedObjectNotFound")
	})
	r.check("Destroy_Task of a destroyed VM", func() (string, error) {
		_, err := r.waitTask(vm.Destroy(r.ctx))
		return expectFault(err, "ManagedObjectNotFound")
	})
}
