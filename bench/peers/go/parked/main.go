// SPDX-License-Identifier: Apache-2.0

// Command parked is the Go peer of goro's parked workload (WORKLOADS.md): it measures the
// resident memory that one goroutine costs while it is blocked. It reads VmRSS, spawns n
// goroutines that all block receiving from one channel, reads VmRSS again once all are parked,
// and reports the growth divided by n. Then it closes the channel; the check is that every
// goroutine saw the close and was joined.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"goro/peers/internal/workload"
)

// settle is how long main sleeps after the last goroutine has announced itself. A goroutine
// calls parked.Done just before its receive, so when parked.Wait returns the last few may still
// be between the two; this sleep lets them reach the receive and block. It only has to be long
// enough for a handful of goroutines to run a few instructions, and it is not timed.
const settle = 20 * time.Millisecond

// residentBytes returns the VmRSS line of /proc/self/status, in bytes.
func residentBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "parked:", err)
		os.Exit(2)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 3 && fields[0] == "VmRSS:" && fields[2] == "kB" {
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kib * 1024
			}
		}
	}
	fmt.Fprintln(os.Stderr, "parked: no VmRSS line in /proc/self/status")
	os.Exit(2)
	return 0
}

func main() {
	procs := workload.Procs()
	n := workload.Size(100000)

	gate := make(chan struct{})
	var parked, joined sync.WaitGroup
	var released atomic.Int64
	parked.Add(n)
	joined.Add(n)

	before := residentBytes()
	for i := 0; i < n; i++ {
		go func() {
			defer joined.Done()
			parked.Done()
			if _, ok := <-gate; !ok {
				released.Add(1)
			}
		}()
	}
	parked.Wait()
	time.Sleep(settle)
	after := residentBytes()

	close(gate)
	joined.Wait()

	perFiber := float64(after-before) / float64(n)
	workload.Report("parked", procs, n, perFiber, "bytes", released.Load() == int64(n))
}
