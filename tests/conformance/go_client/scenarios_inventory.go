package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// The default inventory's virtual machines (src/pytest_vsphere_clone/simulator/inventory.py).
var defaultVMs = []string{"linux-frozen", "linux-template", "windows-frozen", "windows-template"}

// scenarioFind: find.Finder and SearchIndex resolve inventory paths as govc does.
func scenarioFind(r *run) {
	r.login()
	r.check("vm by path", func() (string, error) {
		vm, err := r.finder.VirtualMachine(r.ctx, "/dc1/vm/linux-template")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s is %s", vm.InventoryPath, vm.Reference()), nil
	})
	r.check("vm list", func() (string, error) {
		vms, err := r.finder.VirtualMachineList(r.ctx, "*")
		if err != nil {
			return "", err
		}
		names := make([]string, 0, len(vms))
		for _, vm := range vms {
			names = append(names, vm.Name())
		}
		sort.Strings(names)
		if strings.Join(names, ",") != strings.Join(defaultVMs, ",") {
			return "", fmt.Errorf("VMs %v, want %v", names, defaultVMs)
		}
		return strings.Join(names, ", "), nil
	})
	r.check("missing path", func() (string, error) {
		_, err := r.finder.VirtualMachine(r.ctx, "/dc1/vm/no-such-vm")
		if _, ok := err.(*find.NotFoundError); !ok {
			return "", fmt.Errorf("want find.NotFoundError, got %v", err)
		}
		return "not found", nil
	})
	r.check("hosts", func() (string, error) {
		hosts, err := r.finder.HostSystemList(r.ctx, "*/*")
		if err != nil {
			return "", err
		}
		if len(hosts) != 2 {
			return "", fmt.Errorf("%d hosts, want 2", len(hosts))
		}
		host, err := r.finder.HostSystem(r.ctx, "/dc1/host/cluster1/esx1")
		if err != nil {
			return "", err
		}
		return host.InventoryPath, nil
	})
	r.check("cluster", func() (string, error) {
		cluster, err := r.finder.ClusterComputeResource(r.ctx, "cluster1")
		if err != nil {
			return "", err
		}
		return cluster.InventoryPath, nil
	})
	r.check("resource pool", func() (string, error) {
		pool, err := r.finder.ResourcePool(r.ctx, "/dc1/host/cluster1/Resources")
		if err != nil {
			return "", err
		}
		def, err := r.finder.DefaultResourcePool(r.ctx)
		if err != nil {
			return "", err
		}
		if def.Reference() != pool.Reference() {
			return "", fmt.Errorf("default pool %s differs from cluster1's %s", def.Reference(), pool.Reference())
		}
		return pool.InventoryPath, nil
	})
	r.check("datastore", func() (string, error) {
		ds, err := r.finder.Datastore(r.ctx, "datastore1")
		if err != nil {
			return "", err
		}
		return ds.InventoryPath, nil
	})
	r.check("network", func() (string, error) {
		network, err := r.finder.Network(r.ctx, "VM Network")
		if err != nil {
			return "", err
		}
		return network.GetInventoryPath(), nil
	})
	r.check("vm folder", func() (string, error) {
		folder, err := r.finder.Folder(r.ctx, "/dc1/vm")
		if err != nil {
			return "", err
		}
		return folder.InventoryPath, nil
	})
	r.check("SearchIndex.FindByInventoryPath", func() (string, error) {
		ref, err := object.NewSearchIndex(r.c).FindByInventoryPath(r.ctx, "dc1/vm/linux-frozen")
		if err != nil {
			return "", err
		}
		if ref == nil {
			return "", fmt.Errorf("dc1/vm/linux-frozen not found")
		}
		return ref.Reference().String(), nil
	})
}

// scenarioPropertiesClassic: property reads through PropertyCollector.RetrieveProperties, the call govmomi
// 0.24's property.Collector.Retrieve and its finder make.
func scenarioPropertiesClassic(r *run) {
	r.login()
	pc := property.DefaultCollector(r.c)
	var refs []types.ManagedObjectReference
	r.must("vm references", func() (string, error) {
		vms, err := r.finder.VirtualMachineList(r.ctx, "*")
		if err != nil {
			return "", err
		}
		for _, vm := range vms {
			refs = append(refs, vm.Reference())
		}
		return fmt.Sprintf("%d VMs", len(refs)), nil
	})
	r.check("RetrieveProperties of vms", func() (string, error) {
		var vms []mo.VirtualMachine
		props := []string{"name", "parent", "runtime", "config.guestId", "config.template", "snapshot", "summary"}
		if err := pc.Retrieve(r.ctx, refs, props, &vms); err != nil {
			return "", err
		}
		if len(vms) != len(refs) {
			return "", fmt.Errorf("%d objects returned, want %d", len(vms), len(refs))
		}
		return checkVMs(vms)
	})
	r.check("RetrieveProperties with traversal", func() (string, error) {
		// The shape the classic scripts use: a container view and a traversal spec over its "view".
		v, err := view.NewManager(r.c).CreateContainerView(r.ctx, r.c.ServiceContent.RootFolder,
			[]string{"HostSystem"}, true)
		if err != nil {
			return "", err
		}
		defer func() { _ = v.Destroy(r.ctx) }()
		req := types.RetrieveProperties{
			This: pc.Reference(),
			SpecSet: []types.PropertyFilterSpec{{
				ObjectSet: []types.ObjectSpec{{
					Obj: v.Reference(), Skip: types.NewBool(true),
					SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}},
				}},
				PropSet: []types.PropertySpec{{Type: "HostSystem", PathSet: []string{"name", "parent"}}},
			}},
		}
		res, err := methods.RetrieveProperties(r.ctx, r.c, &req)
		if err != nil {
			return "", err
		}
		var hosts []mo.HostSystem
		if err := mo.LoadObjectContent(res.Returnval, &hosts); err != nil {
			return "", err
		}
		if len(hosts) != 2 {
			return "", fmt.Errorf("%d hosts through the view, want 2", len(hosts))
		}
		for _, host := range hosts {
			if host.Parent == nil || host.Parent.Type != "ClusterComputeResource" {
				return "", fmt.Errorf("host %s parent is %v, want its ClusterComputeResource", host.Name, host.Parent)
			}
		}
		return fmt.Sprintf("%d hosts, parents set", len(hosts)), nil
	})
	r.check("datacenter folders", func() (string, error) {
		dc, err := r.finder.Datacenter(r.ctx, "dc1")
		if err != nil {
			return "", err
		}
		var m mo.Datacenter
		if err := pc.RetrieveOne(r.ctx, dc.Reference(), []string{"vmFolder", "hostFolder", "datastore",
			"network"}, &m); err != nil {
			return "", err
		}
		if m.VmFolder.Value == "" || m.HostFolder.Value == "" {
			return "", fmt.Errorf("vmFolder %v, hostFolder %v: want both set", m.VmFolder, m.HostFolder)
		}
		if len(m.Datastore) == 0 || len(m.Network) == 0 {
			return "", fmt.Errorf("datastore %v, network %v: want both non-empty", m.Datastore, m.Network)
		}
		return fmt.Sprintf("vmFolder %s, %d datastores, %d networks", m.VmFolder.Value, len(m.Datastore),
			len(m.Network)), nil
	})
	r.check("host hardware", func() (string, error) {
		host, err := r.finder.HostSystem(r.ctx, "/dc1/host/cluster1/esx1")
		if err != nil {
			return "", err
		}
		var m mo.HostSystem
		if err := pc.RetrieveOne(r.ctx, host.Reference(), []string{"summary.hardware", "runtime.connectionState",
			"parent"}, &m); err != nil {
			return "", err
		}
		if m.Summary.Hardware == nil || m.Summary.Hardware.NumCpuCores == 0 || m.Summary.Hardware.MemorySize == 0 {
			return "", fmt.Errorf("summary.hardware is %+v, want CPU cores and memory (govc host.info reads them)",
				m.Summary.Hardware)
		}
		return fmt.Sprintf("%d cores, %d MB, %s", m.Summary.Hardware.NumCpuCores,
			m.Summary.Hardware.MemorySize>>20, m.Runtime.ConnectionState), nil
	})
	r.check("invalid property", func() (string, error) {
		err := pc.RetrieveOne(r.ctx, refs[0], []string{"no.such.property"}, &mo.VirtualMachine{})
		// RetrieveProperties faults InvalidProperty "if a property is not valid for the object type".
		return expectFault(err, "InvalidProperty")
	})
}

// checkVMs checks the properties every default VM has, the single MoRefs among them in particular.
func checkVMs(vms []mo.VirtualMachine) (string, error) {
	for _, vm := range vms {
		if vm.Name == "" {
			return "", fmt.Errorf("%s: name unset", vm.Self)
		}
		// A lone MoRef in a property value is xsi:type="ManagedObjectReference"; another type name leaves it nil.
		if vm.Parent == nil || vm.Parent.Type != "Folder" {
			return "", fmt.Errorf("%s: parent is %v, want its Folder", vm.Name, vm.Parent)
		}
		if vm.Runtime.Host == nil || vm.Runtime.Host.Type != "HostSystem" {
			return "", fmt.Errorf("%s: runtime.host is %v, want a HostSystem", vm.Name, vm.Runtime.Host)
		}
		if vm.Config == nil || vm.Config.GuestId == "" {
			return "", fmt.Errorf("%s: config.guestId unset", vm.Name)
		}
		if vm.Summary.Config.Name != vm.Name {
			return "", fmt.Errorf("%s: summary.config.name is %q", vm.Name, vm.Summary.Config.Name)
		}
		if strings.HasSuffix(vm.Name, "-template") && (vm.Snapshot == nil || vm.Snapshot.CurrentSnapshot == nil) {
			return "", fmt.Errorf("%s: snapshot.currentSnapshot unset, want its snapshot base", vm.Name)
		}
		if strings.HasSuffix(vm.Name, "-frozen") && vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			return "", fmt.Errorf("%s: runtime.powerState %s, want poweredOn", vm.Name, vm.Runtime.PowerState)
		}
	}
	return fmt.Sprintf("%d VMs: name, parent, runtime.host, config, summary, snapshot set", len(vms)), nil
}

// scenarioPropertiesEx: RetrievePropertiesEx with paging (maxObjects, ContinueRetrievePropertiesEx).
func scenarioPropertiesEx(r *run) {
	r.login()
	pc := property.DefaultCollector(r.c)
	var v *view.ContainerView
	r.must("container view", func() (string, error) {
		var err error
		v, err = view.NewManager(r.c).CreateContainerView(r.ctx, r.c.ServiceContent.RootFolder,
			[]string{"VirtualMachine"}, true)
		if err != nil {
			return "", err
		}
		return v.Reference().String(), nil
	})
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{
			Obj: v.Reference(), Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}},
		}},
		PropSet: []types.PropertySpec{{Type: "VirtualMachine",
			PathSet: []string{"name", "parent", "runtime", "config.guestId", "config.template", "snapshot", "summary"}}},
	}
	r.check("RetrievePropertiesEx in one page", func() (string, error) {
		res, err := methods.RetrievePropertiesEx(r.ctx, r.c, &types.RetrievePropertiesEx{
			This: pc.Reference(), SpecSet: []types.PropertyFilterSpec{spec}})
		if err != nil {
			return "", err
		}
		if res.Returnval == nil {
			return "", fmt.Errorf("no result")
		}
		if res.Returnval.Token != "" {
			return "", fmt.Errorf("a token for %d objects without maxObjects", len(res.Returnval.Objects))
		}
		var vms []mo.VirtualMachine
		if err := mo.LoadObjectContent(res.Returnval.Objects, &vms); err != nil {
			return "", err
		}
		if len(vms) != len(defaultVMs) {
			return "", fmt.Errorf("%d VMs, want %d", len(vms), len(defaultVMs))
		}
		return checkVMs(vms)
	})
	r.check("RetrievePropertiesEx paged", func() (string, error) {
		res, err := methods.RetrievePropertiesEx(r.ctx, r.c, &types.RetrievePropertiesEx{
			This: pc.Reference(), SpecSet: []types.PropertyFilterSpec{spec},
			Options: types.RetrieveOptions{MaxObjects: 1}})
		if err != nil {
			return "", err
		}
		if res.Returnval == nil {
			return "", fmt.Errorf("no result")
		}
		result := res.Returnval
		objects := append([]types.ObjectContent(nil), result.Objects...)
		pages := 1
		for result.Token != "" {
			// RetrieveOptions.maxObjects: "the server may return fewer or more"; only the token ends the loop.
			next, err := methods.ContinueRetrievePropertiesEx(r.ctx, r.c, &types.ContinueRetrievePropertiesEx{
				This: pc.Reference(), Token: result.Token})
			if err != nil {
				return "", err
			}
			result = &next.Returnval
			objects = append(objects, result.Objects...)
			pages++
			if pages > 100 {
				return "", fmt.Errorf("more than 100 pages for %d VMs", len(defaultVMs))
			}
		}
		var vms []mo.VirtualMachine
		if err := mo.LoadObjectContent(objects, &vms); err != nil {
			return "", err
		}
		if len(vms) != len(defaultVMs) {
			return "", fmt.Errorf("%d VMs over %d pages, want %d", len(vms), pages, len(defaultVMs))
		}
		if _, err := checkVMs(vms); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d VMs in %d pages", len(vms), pages), nil
	})
	r.check("RetrievePropertiesEx of one object", func() (string, error) {
		// property.Collector.RetrieveOne goes through RetrieveProperties; this is the Ex form for one object.
		vm, err := r.vm("linux-frozen")
		if err != nil {
			return "", err
		}
		res, err := methods.RetrievePropertiesEx(r.ctx, r.c, &types.RetrievePropertiesEx{
			This: pc.Reference(), SpecSet: []types.PropertyFilterSpec{{
				ObjectSet: []types.ObjectSpec{{Obj: vm.Reference()}},
				PropSet:   []types.PropertySpec{{Type: "VirtualMachine", PathSet: []string{"runtime.host", "guest"}}},
			}}})
		if err != nil {
			return "", err
		}
		if res.Returnval == nil || len(res.Returnval.Objects) != 1 {
			return "", fmt.Errorf("want exactly one object, got %+v", res.Returnval)
		}
		for _, prop := range res.Returnval.Objects[0].PropSet {
			if prop.Name == "runtime.host" {
				host, ok := prop.Val.(types.ManagedObjectReference)
				if !ok || host.Type != "HostSystem" {
					return "", fmt.Errorf("runtime.host decoded as %T %v, want a HostSystem reference", prop.Val,
						prop.Val)
				}
				return "runtime.host " + host.Value, nil
			}
		}
		return "", fmt.Errorf("runtime.host missing from %+v", res.Returnval.Objects[0].PropSet)
	})
	r.check("destroy view", func() (string, error) {
		return "destroyed", v.Destroy(r.ctx)
	})
}
