package main

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// faultName is the vSphere fault type an error carries ("NotAuthenticated"), or "" for other errors.
func faultName(err error) string {
	for ; err != nil; err = errors.Unwrap(err) {
		var fault interface{}
		if soap.IsSoapFault(err) {
			fault = soap.ToSoapFault(err).VimFault()
		} else if f, ok := err.(types.HasFault); ok {
			fault = f.Fault()
		}
		if fault != nil {
			t := reflect.TypeOf(fault)
			for t.Kind() == reflect.Ptr {
				t = t.Elem()
			}
			return t.Name()
		}
	}
	return ""
}

// expectFault passes when err carries the named fault and explains what came instead otherwise.
func expectFault(err error, want string) (string, error) {
	if err == nil {
		return "", fmt.Errorf("call succeeded, want fault %s", want)
	}
	if got := faultName(err); got != want {
		return "", fmt.Errorf("want fault %s, got %q (%v)", want, got, err)
	}
	return "fault " + want, nil
}

// currentSession reads SessionManager.currentSession with the plain property collector.
//
// govmomi's session.Manager.UserSession hides a NotAuthenticated fault; this read does not, so it shows
// what the server answers. SessionManager.currentSession (API reference): "This property will be unset if
// there is no current session."
func (r *run) currentSession() (*types.UserSession, error) {
	var m mo.SessionManager
	err := property.DefaultCollector(r.c).RetrieveOne(r.ctx, *r.c.ServiceContent.SessionManager,
		[]string{"currentSession"}, &m)
	return m.CurrentSession, err
}

// vm finds a virtual machine by inventory path under /dc1/vm.
func (r *run) vm(name string) (*object.VirtualMachine, error) {
	return r.finder.VirtualMachine(r.ctx, "/dc1/vm/"+name)
}

// waitTask waits for a task with govmomi's property-collector wait and returns its info.
func (r *run) waitTask(task *object.Task, err error) (*types.TaskInfo, error) {
	if err != nil {
		return nil, err
	}
	return task.WaitForResult(r.ctx, nil)
}

// taskResultVM is the VirtualMachine a clone task's info.result names.
func (r *run) taskResultVM(info *types.TaskInfo) (*object.VirtualMachine, error) {
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return nil, fmt.Errorf("task result is %T, want a VirtualMachine reference", info.Result)
	}
	if ref.Type != "VirtualMachine" {
		return nil, fmt.Errorf("task result is a %s, want a VirtualMachine", ref.Type)
	}
	return object.NewVirtualMachine(r.c, ref), nil
}

// linkedClone clones /dc1/vm/<source> from its snapshot "base" into /dc1/vm as a linked clone.
func (r *run) linkedClone(source, name string) (*object.VirtualMachine, error) {
	src, err := r.vm(source)
	if err != nil {
		return nil, err
	}
	snapshot, err := src.FindSnapshot(r.ctx, "base")
	if err != nil {
		return nil, fmt.Errorf("snapshot base of %s: %w", source, err)
	}
	folder, err := r.finder.Folder(r.ctx, "/dc1/vm")
	if err != nil {
		return nil, err
	}
	spec := types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{
			DiskMoveType: string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking),
		},
		Snapshot: snapshot,
	}
	info, err := r.waitTask(src.Clone(r.ctx, folder, name, spec))
	if err != nil {
		return nil, err
	}
	return r.taskResultVM(info)
}

// instantClone makes an instant clone of /dc1/vm/<source> (a running or frozen VM) next to it.
func (r *run) instantClone(source, name string) (*object.VirtualMachine, error) {
	src, err := r.vm(source)
	if err != nil {
		return nil, err
	}
	// VirtualMachineInstantCloneSpec.location is required; an empty RelocateSpec keeps the source's
	// host, pool and datastore ("Instant clone will be created on the same host as the source").
	spec := types.VirtualMachineInstantCloneSpec{Name: name, Location: types.VirtualMachineRelocateSpec{}}
	info, err := r.waitTask(src.InstantClone(r.ctx, spec))
	if err != nil {
		return nil, err
	}
	return r.taskResultVM(info)
}

// waitToolsRunning waits until guest.toolsRunningStatus reads guestToolsRunning.
func (r *run) waitToolsRunning(vm *object.VirtualMachine) (string, error) {
	start := time.Now()
	err := property.Wait(r.ctx, property.DefaultCollector(r.c), vm.Reference(),
		[]string{"guest.toolsRunningStatus"}, func(changes []types.PropertyChange) bool {
			for _, change := range changes {
				if change.Val == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
					return true
				}
			}
			return false
		})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Tools running after %s", time.Since(start).Round(time.Millisecond)), nil
}

// powerState reads runtime.powerState.
func (r *run) powerState(vm *object.VirtualMachine) (types.VirtualMachinePowerState, error) {
	return vm.PowerState(r.ctx)
}

// pollPowerState reads runtime.powerState every 100 ms until it is want.
func (r *run) pollPowerState(vm *object.VirtualMachine, want types.VirtualMachinePowerState) error {
	for {
		state, err := r.powerState(vm)
		if err != nil {
			return err
		}
		if state == want {
			return nil
		}
		select {
		case <-r.ctx.Done():
			return fmt.Errorf("runtime.powerState still %s, want %s: %w", state, want, r.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// expectPowerState passes when the VM's runtime.powerState reads want.
func (r *run) expectPowerState(vm *object.VirtualMachine, want types.VirtualMachinePowerState) (string, error) {
	state, err := r.powerState(vm)
	if err != nil {
		return "", err
	}
	if state != want {
		return "", fmt.Errorf("runtime.powerState is %s, want %s", state, want)
	}
	return "runtime.powerState " + string(state), nil
}
