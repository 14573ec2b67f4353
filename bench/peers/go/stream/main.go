// SPDX-License-Identifier: Apache-2.0

// Command stream is the Go peer of goro's stream program (bench/net/stream.cpp; WORKLOADS.md,
// "Network workloads"): bulk transfer over one loopback TCP connection, in two roles.
//
//	stream --listen HOST:PORT [--workers N] [--lifetime SECONDS]
//	    the server: one goroutine per connection reads into a 64 KiB buffer and discards, until
//	    end of stream, then closes. Prints the bound address first.
//	stream --connect HOST:PORT [--seconds S] [--block BYTES] [--workers N]
//	    the client: writes --block bytes (default 64 KiB) at a time for S seconds, shuts its
//	    side down, waits for the server to close, and prints
//	    "stream impl=go bytes=N seconds=T mib_s=X".
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"goro/peers/internal/netflags"
)

func drain(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64*1024)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func sendFor(address string, seconds float64, block int) error {
	c, err := net.Dial("tcp", address)
	if err != nil {
		return err
	}
	defer c.Close()
	data := make([]byte, block)
	for i := range data {
		data[i] = 0x5a
	}
	var bytes int64
	start := time.Now()
	end := start.Add(time.Duration(seconds * float64(time.Second)))
	for time.Now().Before(end) {
		if _, err := c.Write(data); err != nil {
			return err
		}
		bytes += int64(block)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	fmt.Printf("stream impl=go bytes=%d seconds=%.3f mib_s=%.1f\n", bytes, elapsed,
		float64(bytes)/elapsed/(1024*1024))
	return nil
}

func main() {
	connect := flag.String("connect", "", "run the client against this address")
	seconds := flag.Float64("seconds", 5, "client: seconds of writing")
	block := flag.Int("block", 64*1024, "client: bytes per write")
	s := netflags.Parse()
	if *connect != "" {
		if err := sendFor(*connect, *seconds, *block); err != nil {
			fmt.Fprintf(os.Stderr, "stream: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ln := s.Listen()
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		go drain(c)
	}
}
