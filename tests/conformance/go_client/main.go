// Command conformance runs one named scenario of everyday govmomi calls against a vCenter.
//
// It is a client conformance check for the bundled simulator: the calls are the ones govc, Terraform's
// vSphere provider and Packer make, through Debian's govmomi library. Every step prints one line,
// "PASS <step>: <detail>" or "FAIL <step>: <reason>", and the program exits 1 when any step failed.
//
// Connection facts come from the environment: VSPHERE_URL, VSPHERE_USER, VSPHERE_PASSWORD, VSPHERE_CA_FILE
// (a PEM file the server certificate must chain to; empty for plain HTTP), GUEST_USER and GUEST_PASSWORD,
// WINDOWS_GUEST_USER and WINDOWS_GUEST_PASSWORD.
// A scenario that needs the test harness to act (expire every session) prints "WAIT <action>" and reads
// one line from standard input once the action is done.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/debug"
	"github.com/vmware/govmomi/vim25/soap"
)

// config holds the connection facts a scenario needs.
type config struct {
	url           *url.URL
	user          string
	password      string
	caFile        string
	guestUser     string
	guestPassword string
	// Windows guests have an account of their own (WINDOWS_GUEST_USER, WINDOWS_GUEST_PASSWORD).
	windowsGuestUser     string
	windowsGuestPassword string
}

// stepFailed unwinds a scenario after a step that later steps depend on failed.
type stepFailed struct{}

// run is one scenario's state: its connection and whether any step failed.
type run struct {
	ctx    context.Context
	cfg    config
	c      *vim25.Client
	finder *find.Finder
	failed bool
	stdin  *bufio.Reader
}

// scenarios maps each scenario name to its steps.
var scenarios = map[string]func(*run){
	"login":                    scenarioLogin,
	"find":                     scenarioFind,
	"properties_classic":       scenarioPropertiesClassic,
	"properties_ex":            scenarioPropertiesEx,
	"linked_clone":             scenarioLinkedClone,
	"instant_clone":            scenarioInstantClone,
	"power":                    scenarioPower,
	"guest_operations":         scenarioGuestOperations,
	"guest_operations_windows": scenarioGuestOperationsWindows,
	"custom_fields":            scenarioCustomFields,
	"events":                   scenarioEvents,
	"destroy":                  scenarioDestroy,
	"logout":                   scenarioLogout,
	"session_expiry":           scenarioSessionExpiry,
}

func main() {
	list := flag.Bool("list", false, "print the scenario names and exit")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up on the scenario after this long")
	trace := flag.String("trace", "", "write every SOAP request and response to files in this directory")
	flag.Parse()
	if *list {
		names := make([]string, 0, len(scenarios))
		for name := range scenarios {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Println(strings.Join(names, "\n"))
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: conformance [-timeout D] SCENARIO | -list")
		os.Exit(2)
	}
	scenario, ok := scenarios[flag.Arg(0)]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", flag.Arg(0))
		os.Exit(2)
	}
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *trace != "" {
		if err := os.MkdirAll(*trace, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		debug.SetProvider(&debug.FileProvider{Path: *trace})
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r := &run{ctx: ctx, cfg: cfg, stdin: bufio.NewReader(os.Stdin)}
	r.execute(scenario)
	if *trace != "" {
		debug.Flush()
	}
	if r.failed {
		os.Exit(1)
	}
}

func configFromEnv() (config, error) {
	raw := os.Getenv("VSPHERE_URL")
	if raw == "" {
		return config{}, fmt.Errorf("VSPHERE_URL is not set")
	}
	u, err := soap.ParseURL(raw)
	if err != nil {
		return config{}, fmt.Errorf("VSPHERE_URL: %w", err)
	}
	u.User = nil // credentials come from VSPHERE_USER/VSPHERE_PASSWORD only
	return config{
		url: u, user: os.Getenv("VSPHERE_USER"), password: os.Getenv("VSPHERE_PASSWORD"),
		caFile: os.Getenv("VSPHERE_CA_FILE"), guestUser: os.Getenv("GUEST_USER"),
		guestPassword: os.Getenv("GUEST_PASSWORD"), windowsGuestUser: os.Getenv("WINDOWS_GUEST_USER"),
		windowsGuestPassword: os.Getenv("WINDOWS_GUEST_PASSWORD"),
	}, nil
}

// execute runs a scenario, turning an unwinding failed step into the scenario's end.
func (r *run) execute(scenario func(*run)) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stepFailed); !ok {
				r.failed = true
				fmt.Printf("FAIL scenario: panic: %v\n", v)
			}
		}
	}()
	scenario(r)
}

// check runs one step and reports it; a failure marks the scenario failed but lets it go on.
func (r *run) check(name string, step func() (string, error)) bool {
	detail, err := recovered(step)
	if err != nil {
		r.failed = true
		fmt.Printf("FAIL %s: %s\n", name, oneLine(err.Error()))
		return false
	}
	fmt.Printf("PASS %s: %s\n", name, oneLine(detail))
	return true
}

// recovered runs a step, turning a panic inside govmomi (a value of an unexpected type) into its error.
func recovered(step func() (string, error)) (detail string, err error) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stepFailed); ok {
				panic(v)
			}
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return step()
}

// must runs one step that later steps depend on; a failure ends the scenario.
func (r *run) must(name string, step func() (string, error)) {
	if !r.check(name, step) {
		panic(stepFailed{})
	}
}

// await asks the harness to do something (print "WAIT <action>") and blocks until it answers.
func (r *run) await(action string) error {
	fmt.Printf("WAIT %s\n", action)
	if _, err := r.stdin.ReadString('\n'); err != nil {
		return fmt.Errorf("no answer from the harness to %q: %w", action, err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// newSoapClient is a SOAP client that trusts only the given CA file (no insecure mode).
func (r *run) newSoapClient() (*soap.Client, error) {
	sc := soap.NewClient(r.cfg.url, false)
	if r.cfg.caFile != "" {
		if err := sc.SetRootCAs(r.cfg.caFile); err != nil {
			return nil, fmt.Errorf("CA file %s: %w", r.cfg.caFile, err)
		}
	}
	return sc, nil
}

// connect makes a vim25 client (RetrieveServiceContent) without logging in.
func (r *run) connect() (*vim25.Client, error) {
	sc, err := r.newSoapClient()
	if err != nil {
		return nil, err
	}
	return vim25.NewClient(r.ctx, sc)
}

// login connects and logs in with the configured user, leaving the client and a finder in r.
func (r *run) login() {
	r.must("connect", func() (string, error) {
		c, err := r.connect()
		if err != nil {
			return "", err
		}
		r.c = c
		about := c.ServiceContent.About
		return fmt.Sprintf("%s, API %s (%s)", about.FullName, about.ApiVersion, about.ApiType), nil
	})
	r.must("login", func() (string, error) {
		if err := session.NewManager(r.c).Login(r.ctx, url.UserPassword(r.cfg.user, r.cfg.password)); err != nil {
			return "", err
		}
		return "logged in as " + r.cfg.user, nil
	})
	r.finder = find.NewFinder(r.c, true)
	r.must("datacenter", func() (string, error) {
		dc, err := r.finder.Datacenter(r.ctx, "dc1")
		if err != nil {
			return "", err
		}
		r.finder.SetDatacenter(dc)
		return dc.InventoryPath, nil
	})
}
