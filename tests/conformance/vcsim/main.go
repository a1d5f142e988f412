// Command vcsim-conformance serves govmomi's vCenter simulator for the conformance tier.
//
// Debian's golang-github-vmware-govmomi-dev ships the simulator library but not the vcsim
// command, so the tier builds this small main instead. It serves the library's stock VPX
// inventory (DC0, cluster DC0_C0, hosts, LocalDS_0, VMs DC0_*_VM*) unchanged: whatever a test
// needs on top of it (a template, a snapshot) it makes through the vSphere API, as a user would.
//
// Protocol with the Python side: one line "VCSIM_URL=<url>" on stdout once the server listens;
// the process stops when stdin is closed or on SIGTERM/SIGINT, so it never outlives its test run.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	user := flag.String("user", "user", "the one user name Login accepts")
	password := flag.String("password", "pass", "the one password Login accepts")
	plain := flag.Bool("http", false, "serve plain HTTP instead of HTTPS")
	certFile := flag.String("cert", "", "TLS certificate (PEM) to serve; required unless -http")
	keyFile := flag.String("key", "", "private key (PEM) of the -cert certificate")
	flag.Parse()

	var tlsConfig *tls.Config
	if !*plain {
		// The caller's certificate, never the library's built-in test certificate: that one has a
		// 1024-bit RSA key, which OpenSSL's default security level refuses ("EE certificate key too weak").
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("loading -cert/-key: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("creating the VPX model: %v", err)
	}
	defer model.Remove()

	// A Listen URL with a user makes Login accept exactly these credentials (without one, vcsim
	// accepts any non-empty user and password, and a wrong-password test would prove nothing).
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	if tlsConfig != nil {
		model.Service.TLS = tlsConfig
	}
	server := model.Service.NewServer()
	defer server.Close()

	shown := *server.URL
	shown.User = nil // credentials are the caller's to know, not the log's
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "VCSIM_URL=%s\n", shown.String())
	if err := out.Flush(); err != nil {
		log.Fatalf("stdout: %v", err)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(ioutil.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	}
}
