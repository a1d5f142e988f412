package main

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// scenarioCustomFields: custom attributes as govc fields.* and Terraform's custom_attributes use them.
func scenarioCustomFields(r *run) {
	r.login()
	var m *object.CustomFieldsManager
	r.must("CustomFieldsManager", func() (string, error) {
		var err error
		m, err = object.GetCustomFieldsManager(r.c)
		if err != nil {
			return "", err
		}
		return m.Reference().Value, nil
	})
	var key int32
	r.must("AddCustomFieldDef", func() (string, error) {
		def, err := m.Add(r.ctx, "go-owner", "VirtualMachine", nil, nil)
		if err != nil {
			return "", err
		}
		if def.Name != "go-owner" || def.ManagedObjectType != "VirtualMachine" {
			return "", fmt.Errorf("definition %+v", def)
		}
		key = def.Key
		return fmt.Sprintf("key %d", key), nil
	})
	r.check("AddCustomFieldDef twice", func() (string, error) {
		// AddCustomFieldDef faults DuplicateName "if a custom field with the name already exists".
		_, err := m.Add(r.ctx, "go-owner", "VirtualMachine", nil, nil)
		return expectFault(err, "DuplicateName")
	})
	r.check("field list", func() (string, error) {
		found, err := m.FindKey(r.ctx, "go-owner")
		if err != nil {
			return "", err
		}
		if found != key {
			return "", fmt.Errorf("go-owner has key %d, AddCustomFieldDef answered %d", found, key)
		}
		return "go-owner listed", nil
	})
	var vm *object.VirtualMachine
	r.must("vm", func() (string, error) {
		var err error
		vm, err = r.vm("linux-template")
		return "linux-template", err
	})
	r.check("SetField", func() (string, error) {
		if err := m.Set(r.ctx, vm.Reference(), key, "alice"); err != nil {
			return "", err
		}
		return expectCustomValue(r, vm, key, "alice")
	})
	r.check("availableField", func() (string, error) {
		var o mo.VirtualMachine
		if err := vm.Properties(r.ctx, vm.Reference(), []string{"availableField"}, &o); err != nil {
			return "", err
		}
		for _, def := range o.AvailableField {
			if def.Key == key {
				return "go-owner available on the VM", nil
			}
		}
		return "", fmt.Errorf("availableField %+v lacks key %d", o.AvailableField, key)
	})
	r.check("setCustomValue", func() (string, error) {
		// ExtensibleManagedObject.setCustomValue: "Assigns a value to a custom field" by the field's name.
		if err := vm.SetCustomValue(r.ctx, "go-owner", "bob"); err != nil {
			return "", err
		}
		return expectCustomValue(r, vm, key, "bob")
	})
	r.check("RenameCustomFieldDef", func() (string, error) {
		if err := m.Rename(r.ctx, key, "go-team"); err != nil {
			return "", err
		}
		found, err := m.FindKey(r.ctx, "go-team")
		if err != nil {
			return "", err
		}
		if found != key {
			return "", fmt.Errorf("go-team has key %d, want %d", found, key)
		}
		return "renamed to go-team", nil
	})
	r.check("RemoveCustomFieldDef", func() (string, error) {
		if err := m.Remove(r.ctx, key); err != nil {
			return "", err
		}
		if _, err := m.FindKey(r.ctx, "go-team"); err != object.ErrKeyNameNotFound {
			return "", fmt.Errorf("go-team still found after removal (%v)", err)
		}
		var o mo.VirtualMachine
		if err := vm.Properties(r.ctx, vm.Reference(), []string{"customValue"}, &o); err != nil {
			return "", err
		}
		for _, v := range o.CustomValue {
			if v.GetCustomFieldValue().Key == key {
				return "", fmt.Errorf("customValue still holds removed key %d", key)
			}
		}
		return "removed, and gone from the VM's customValue", nil
	})
}

func expectCustomValue(r *run, vm *object.VirtualMachine, key int32, want string) (string, error) {
	var o mo.VirtualMachine
	if err := vm.Properties(r.ctx, vm.Reference(), []string{"customValue"}, &o); err != nil {
		return "", err
	}
	for _, v := range o.CustomValue {
		if s, ok := v.(*types.CustomFieldStringValue); ok && s.Key == key {
			if s.Value != want {
				return "", fmt.Errorf("customValue[%d] is %q, want %q", key, s.Value, want)
			}
			return fmt.Sprintf("customValue[%d] = %q", key, s.Value), nil
		}
	}
	return "", fmt.Errorf("customValue %+v lacks key %d", o.CustomValue, key)
}

// scenarioEvents: EventManager.QueryEvents and an event history collector see a clone's life.
func scenarioEvents(r *run) {
	r.login()
	var m *event.Manager
	r.must("EventManager", func() (string, error) {
		if r.c.ServiceContent.EventManager == nil {
			return "", fmt.Errorf("ServiceContent.eventManager is unset")
		}
		m = event.NewManager(r.c)
		return r.c.ServiceContent.EventManager.Value, nil
	})
	var vm *object.VirtualMachine
	r.must("clone, power on, power off", func() (string, error) {
		var err error
		if vm, err = r.linkedClone("linux-template", "go-events"); err != nil {
			return "", err
		}
		if _, err = r.waitTask(vm.PowerOn(r.ctx)); err != nil {
			return "", fmt.Errorf("PowerOnVM_Task: %w", err)
		}
		if _, err = r.waitTask(vm.PowerOff(r.ctx)); err != nil {
			return "", fmt.Errorf("PowerOffVM_Task: %w", err)
		}
		return vm.Reference().Value, nil
	})
	byEntity := types.EventFilterSpec{Entity: &types.EventFilterSpecByEntity{
		Entity: vm.Reference(), Recursion: types.EventFilterSpecRecursionOptionSelf}}
	r.check("QueryEvents by entity", func() (string, error) {
		events, err := m.QueryEvents(r.ctx, byEntity)
		if err != nil {
			return "", err
		}
		found, err := expectEvents(events, vm.Reference(), "VmClonedEvent", "VmPoweredOnEvent", "VmPoweredOffEvent")
		if err != nil {
			return "", err
		}
		// VmClonedEvent "records the completion of a virtual machine cloning operation": its vm is the new VM
		// and sourceVm "The source virtual machine for the clone operation".
		for _, e := range events {
			if cloned, ok := e.(*types.VmClonedEvent); ok && cloned.Vm != nil && cloned.Vm.Vm == vm.Reference() {
				if cloned.SourceVm.Name != "linux-template" {
					return "", fmt.Errorf("VmClonedEvent.sourceVm is %q, want linux-template", cloned.SourceVm.Name)
				}
			}
		}
		return found, nil
	})
	r.check("event history collector", func() (string, error) {
		collector, err := m.CreateCollectorForEvents(r.ctx, byEntity)
		if err != nil {
			return "", err
		}
		defer func() { _ = collector.Destroy(r.ctx) }()
		latest, err := collector.LatestPage(r.ctx)
		if err != nil {
			return "", fmt.Errorf("latestPage: %w", err)
		}
		if _, err := expectEvents(latest, vm.Reference(), "VmPoweredOffEvent"); err != nil {
			return "", fmt.Errorf("latestPage: %w", err)
		}
		// RewindCollector: "Moves the 'scrollable view' to the oldest item"; ReadNextEvents then reads forward.
		if err := collector.Rewind(r.ctx); err != nil {
			return "", fmt.Errorf("RewindCollector: %w", err)
		}
		var all []types.BaseEvent
		for i := 0; i < 100; i++ {
			page, err := collector.ReadNextEvents(r.ctx, 10)
			if err != nil {
				return "", fmt.Errorf("ReadNextEvents: %w", err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
		}
		return expectEvents(all, vm.Reference(), "VmClonedEvent", "VmPoweredOnEvent", "VmPoweredOffEvent")
	})
	r.check("destroy event", func() (string, error) {
		if _, err := r.waitTask(vm.Destroy(r.ctx)); err != nil {
			return "", fmt.Errorf("Destroy_Task: %w", err)
		}
		dc, err := r.finder.Datacenter(r.ctx, "dc1")
		if err != nil {
			return "", err
		}
		events, err := m.QueryEvents(r.ctx, types.EventFilterSpec{
			Entity: &types.EventFilterSpecByEntity{Entity: dc.Reference(),
				Recursion: types.EventFilterSpecRecursionOptionAll},
			EventTypeId: []string{"VmRemovedEvent"}})
		if err != nil {
			return "", err
		}
		return expectEvents(events, vm.Reference(), "VmRemovedEvent")
	})
}

// expectEvents passes when, among the events about vm, there is one of each wanted type.
func expectEvents(events []types.BaseEvent, vm types.ManagedObjectReference, want ...string) (string, error) {
	seen := map[string]bool{}
	var all []string
	for _, e := range events {
		name := reflect.TypeOf(e).Elem().Name()
		all = append(all, name)
		if v := e.GetEvent().Vm; v != nil && v.Vm == vm {
			seen[name] = true
		}
	}
	var missing []string
	for _, name := range want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("no %s for %s among %d events %v", strings.Join(missing, ", "), vm.Value, len(events),
			all)
	}
	return strings.Join(want, ", "), nil
}
