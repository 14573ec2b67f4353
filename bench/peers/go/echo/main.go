// SPDX-License-Identifier: Apache-2.0

// Command echo is the Go peer of goro's echo server (bench/net/echo_server.cpp; WORKLOADS.md,
// "Network workloads"): a TCP server that writes back whatever it reads, one goroutine per
// connection, with a 4 KiB buffer as goro's uses. Flags: --listen HOST:PORT, --workers N
// (GOMAXPROCS), --lifetime SECONDS. Prints the bound address first. bench/echo drives it with
// bench/net/echo_load.
package main

import (
	"net"
	"time"

	"goro/peers/internal/netflags"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	ln := netflags.Parse().Listen()
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		go serve(c)
	}
}
