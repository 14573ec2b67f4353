// SPDX-License-Identifier: Apache-2.0

// Command pingpong is the Go peer of goro's pingpong workload (WORKLOADS.md): two goroutines
// bounce an int over two unbuffered channels n times. The pinger sends its last received value
// and the ponger sends it back incremented, so after n round trips the pinger holds n. The
// result is the mean time of one round trip.
package main

import (
	"sync"

	"goro/peers/internal/workload"
)

func main() {
	procs := workload.Procs()
	n := workload.Size(1000000)

	ping := make(chan int)
	pong := make(chan int)
	last := 0
	var wg sync.WaitGroup
	wg.Add(2)

	timer := workload.Start()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			ping <- last
			last = <-pong
		}
		close(ping)
	}()
	go func() {
		defer wg.Done()
		for v := range ping {
			pong <- v + 1
		}
	}()
	wg.Wait()
	elapsed := timer.Elapsed()

	workload.Report("pingpong", procs, n, workload.NanosPer(elapsed, n), "ns", last == n)
}
