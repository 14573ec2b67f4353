// SPDX-License-Identifier: Apache-2.0

// Package netflags holds what the Go peers of goro's network workloads (WORKLOADS.md, "Network
// workloads") share: the flags --listen HOST:PORT, --workers N (applied as GOMAXPROCS) and
// --lifetime SECONDS (the server exits by itself after that long, so a benchmark script that
// dies cannot leave it running), and printing the bound address as the first line of stdout.
package netflags

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"
)

// Server is the parsed command line of a network peer.
type Server struct {
	Address string
	Workers int
}

// Parse reads the common flags (and any the caller defined on flag.CommandLine before), sets
// GOMAXPROCS and arms the lifetime.
func Parse() Server {
	var s Server
	var lifetime float64
	flag.StringVar(&s.Address, "listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	flag.IntVar(&s.Workers, "workers", 1, "GOMAXPROCS")
	flag.Float64Var(&lifetime, "lifetime", 0, "exit after this many seconds (0: never)")
	flag.Parse()
	if s.Workers <= 0 {
		fmt.Fprintf(os.Stderr, "--workers must be a positive integer\n")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(s.Workers)
	if lifetime > 0 {
		time.AfterFunc(time.Duration(lifetime*float64(time.Second)), func() { os.Exit(0) })
	}
	return s
}

// Listen listens on s.Address over TCP and prints the bound address as stdout's first line.
func (s Server) Listen() net.Listener {
	ln, err := net.Listen("tcp", s.Address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen %s: %v\n", s.Address, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	return ln
}
